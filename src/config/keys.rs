//! The keys a configuration may have, read from the raw structs themselves (so the list cannot
//! drift from what serde accepts), and the suggestion for a key that is not one of them.

use super::deploy::RawDeploy;
pub(crate) use super::fields::fields_of;
use super::problem::{join, quote_key, Problem};
use super::raw::{RawAws, RawIdentityCenter, RawLog, RawMetrics};
use crate::accounts::config::{RawAccounts, RawOrganizations};
use crate::notify::digest::RawDigest;
use crate::notify::smtp::RawSmtp;
use crate::notify::sns::RawSns;
use crate::pipeline::delivery::RawDelivery;
use crate::rules::Ruleset;
use crate::source::alarm::RawAlarm;
use crate::source::cloudtrail::RawPoller;
use crate::store::RawStore;

/// The problem for an unknown key, suggesting the key probably meant: a close spelling among
/// its siblings, or the same name in another section (`region` at the top → `aws.region`).
pub(crate) fn unknown_key(path: &str, key: &str, siblings: &[&str]) -> Problem {
    let full = join(path, &quote_key(key));
    let what = if path.is_empty() { "section" } else { "key" };
    let close = siblings
        .iter()
        .map(|s| (levenshtein(&key.to_lowercase(), s), *s))
        .filter(|(d, _)| *d <= 2)
        .min();
    let suggestion = match close {
        Some((_, sibling)) => Some(join(path, sibling)),
        None => schema()
            .into_iter()
            .find(|(section, fields)| {
                *section != path && fields.contains(&key.to_lowercase().as_str())
            })
            .map(|(section, _)| join(section, key)),
    };
    let message = match suggestion {
        Some(s) => format!("unknown {what}; did you mean `{s}`?"),
        None => format!(
            "unknown {what}; known {what}s here: {}",
            siblings.join(", ")
        ),
    };
    Problem::new(full, message)
}

/// Edit distance between two keys (insertions, deletions, substitutions).
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Every table of the configuration and its keys, read from the raw structs themselves so the
/// list cannot drift from what serde accepts.
pub(crate) fn schema() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("aws", fields_of::<RawAws>()),
        ("deploy", fields_of::<RawDeploy>()),
        ("poller", fields_of::<RawPoller>()),
        ("rules", fields_of::<Ruleset>()),
        ("store", fields_of::<RawStore>()),
        ("smtp", fields_of::<RawSmtp>()),
        ("sns", fields_of::<RawSns>()),
        ("alarm", fields_of::<RawAlarm>()),
        ("log", fields_of::<RawLog>()),
        ("metrics", fields_of::<RawMetrics>()),
        ("delivery", fields_of::<RawDelivery>()),
        ("identity_center", fields_of::<RawIdentityCenter>()),
        ("digest", fields_of::<RawDigest>()),
        (
            "analysis",
            fields_of::<crate::analysis::config::RawAnalysis>(),
        ),
        ("accounts", fields_of::<RawAccounts>()),
        ("accounts.organizations", fields_of::<RawOrganizations>()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawConfig;
    use crate::store::RawStore;

    #[test]
    fn field_probe_lists_serde_fields() {
        assert_eq!(fields_of::<RawStore>(), ["state_directory", "retention"]);
        assert!(fields_of::<RawConfig>().contains(&"smtp"));
    }

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("poll_intervall", "poll_interval"), 1);
        assert_eq!(levenshtein("retension", "retention"), 1);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
