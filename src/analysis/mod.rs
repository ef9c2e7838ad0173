//! What an IAM change means: policy documents read by one parser ([`policy`]), for the rules'
//! verdicts and the messages.

pub mod policy;
