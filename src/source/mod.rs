//! Where IAM changes come from: CloudTrail `LookupEvents` (the low-latency path) and the
//! CloudWatch alarm heard through SQS, reconciled against the trail's log group.

pub mod alarm;
pub mod budget;
pub mod lookup;
pub mod poller;
