//! What counts: the IAM operations that change something (every IAM API that is not a read),
//! and the calls that blind the monitoring. CIS 4.4's exact filter text lives here too.

use crate::event::Record;

/// The event source of every IAM API call.
pub(crate) const IAM_EVENT_SOURCE: &str = "iam.amazonaws.com";

/// Name prefixes of the IAM operations that only read. Everything else on
/// [`IAM_EVENT_SOURCE`] is a mutation (109 of 181 operations in botocore's IAM model of 2026;
/// the unit test `every_iam_operation_in_botocore_is_a_read_or_a_mutation` re-checks it).
pub(crate) const READ_PREFIXES: [&str; 4] = ["Get", "List", "Generate", "Simulate"];

/// The calls that blind the monitoring (the facts are in [`crate::aws`]'s docs). They happen in
/// the stack's region, not in us-east-1 like IAM.
pub(crate) const TAMPERING_EVENTS: &[(&str, &str)] = &[
    ("cloudtrail.amazonaws.com", "StopLogging"),
    ("cloudtrail.amazonaws.com", "DeleteTrail"),
    ("cloudtrail.amazonaws.com", "UpdateTrail"),
    ("cloudtrail.amazonaws.com", "PutEventSelectors"),
    ("logs.amazonaws.com", "DeleteMetricFilter"),
    ("logs.amazonaws.com", "DeleteLogGroup"),
    ("monitoring.amazonaws.com", "DeleteAlarms"),
    ("monitoring.amazonaws.com", "DisableAlarmActions"),
    ("sns.amazonaws.com", "DeleteTopic"),
    ("sns.amazonaws.com", "Unsubscribe"),
];

/// The exact CIS AWS Foundations Benchmark 4.4 (v1.2.0: 3.4) filter pattern that Security Hub's
/// control CloudWatch.4 ("Ensure a log metric filter and alarm exist for IAM policy changes",
/// <https://docs.aws.amazon.com/securityhub/latest/userguide/cloudwatch-controls.html#cloudwatch-4>)
/// looks for. Security Hub compares the text, not the meaning, so this must stay byte for byte
/// as published (the same text appears in the CIS remediation steps); it covers only 16 policy
/// operations and is offered as an *extra* filter beside [`iam_metric_filter_pattern`](super::iam_metric_filter_pattern).
pub const CIS_4_4_FILTER_PATTERN: &str = "{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||($.eventName=DeleteUserPolicy)||($.eventName=PutGroupPolicy)||($.eventName=PutRolePolicy)||($.eventName=PutUserPolicy)||($.eventName=CreatePolicy)||($.eventName=DeletePolicy)||($.eventName=CreatePolicyVersion)||($.eventName=DeletePolicyVersion)||($.eventName=AttachRolePolicy)||($.eventName=DetachRolePolicy)||($.eventName=AttachUserPolicy)||($.eventName=DetachUserPolicy)||($.eventName=AttachGroupPolicy)||($.eventName=DetachGroupPolicy)}";

/// Whether the record is a call to a mutating IAM API, successful or not. Exactly what
/// [`iam_metric_filter_pattern`](super::iam_metric_filter_pattern) matches.
pub fn is_iam_mutation(record: &Record) -> bool {
    is_iam_mutation_name(&record.event_source, &record.event_name)
}

/// [`is_iam_mutation`] on the two fields it reads, for callers that have not parsed a record
/// (`scan` looks at these before paying for the full parse).
pub(crate) fn is_iam_mutation_name(event_source: &str, event_name: &str) -> bool {
    event_source == IAM_EVENT_SOURCE
        && !READ_PREFIXES
            .iter()
            .any(|prefix| event_name.starts_with(prefix))
}

/// Whether the record is one of [`TAMPERING_EVENTS`], successful or not. Exactly what
/// [`tampering_metric_filter_pattern`](super::tampering_metric_filter_pattern) matches.
pub fn is_tampering(record: &Record) -> bool {
    is_tampering_name(&record.event_source, &record.event_name)
}

/// [`is_tampering`] on the two fields it reads.
pub(crate) fn is_tampering_name(event_source: &str, event_name: &str) -> bool {
    TAMPERING_EVENTS
        .iter()
        .any(|(source, name)| event_source == *source && event_name == *name)
}

#[cfg(test)]
mod tests {
    use super::super::classify;
    use super::super::testing::iam;
    use super::*;
    use serde_json::{json, Value};

    /// Every operation in botocore's IAM model is a read or a mutation as the verb says, so the
    /// negative rule is complete today; a new verb fails this test until a human decides.
    #[test]
    fn every_iam_operation_in_botocore_is_a_read_or_a_mutation() {
        use std::io::Read as _;
        const READ_VERBS: [&str; 4] = ["Get", "List", "Generate", "Simulate"];
        const WRITE_VERBS: [&str; 23] = [
            "Accept",
            "Acquire",
            "Add",
            "Associate",
            "Attach",
            "Change",
            "Create",
            "Deactivate",
            "Delete",
            "Detach",
            "Disable",
            "Enable",
            "Put",
            "Reject",
            "Remove",
            "Reset",
            "Resync",
            "Send",
            "Set",
            "Tag",
            "Untag",
            "Update",
            "Upload",
        ];
        let venv = std::env::var_os("IAMWATCHD_VENV")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
        let lib = venv.join("lib");
        let model_dir = std::fs::read_dir(&lib)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|python| {
                python
                    .path()
                    .join("site-packages/botocore/data/iam/2010-05-08")
            })
            .find(|dir| dir.is_dir())
            .unwrap_or_else(|| {
                panic!(
                    "botocore's IAM model is not under {}: create the venv (./scripts/test does) \
                     or point IAMWATCHD_VENV at one with botocore installed",
                    lib.display()
                )
            });
        let plain = model_dir.join("service-2.json");
        let text = if plain.is_file() {
            std::fs::read_to_string(&plain).expect("read service-2.json")
        } else {
            let gz = model_dir.join("service-2.json.gz");
            let file = std::fs::File::open(&gz).unwrap_or_else(|e| panic!("{}: {e}", gz.display()));
            let mut text = String::new();
            flate2::read::GzDecoder::new(file)
                .read_to_string(&mut text)
                .expect("gunzip service-2.json.gz");
            text
        };
        let model: Value = serde_json::from_str(&text).expect("the IAM model is JSON");
        let operations = model["operations"].as_object().expect("operations");
        let (mut mutations, mut reads) = (0, 0);
        for name in operations.keys() {
            let verb_end = name[1..]
                .find(char::is_uppercase)
                .map_or(name.len(), |i| i + 1);
            let verb = &name[..verb_end];
            let intended_mutation = if READ_VERBS.contains(&verb) {
                false
            } else if WRITE_VERBS.contains(&verb) {
                true
            } else {
                panic!("{name}: the verb {verb:?} is new; decide whether it reads or writes")
            };
            let record = iam(name, json!({}));
            assert_eq!(is_iam_mutation(&record), intended_mutation, "{name}");
            assert_eq!(classify(&record).is_some(), intended_mutation, "{name}");
            if intended_mutation {
                mutations += 1;
            } else {
                reads += 1;
            }
        }
        println!("botocore IAM model: {mutations} mutating and {reads} read operations");
        assert!(mutations >= 106, "only {mutations} mutating IAM operations");
        assert_eq!(mutations + reads, operations.len());
    }
}
