//! What an IAM change means: policy documents read once ([`policy`]), for the rules' verdicts
//! and the messages.

pub mod policy;
