//! Where IAM changes come from: CloudTrail `LookupEvents` (the low-latency path).

pub mod budget;
pub mod lookup;
pub mod poller;
