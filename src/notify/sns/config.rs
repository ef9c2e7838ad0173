//! `[sns]`: the topic the notifier publishes to and its region (read from the ARN: SNS only
//! accepts a topic in the client's region).

use serde::Deserialize;

use crate::config::problem::Problems;
use crate::config::shapes::{check_region, is_account_id};

/// The SNS notifier's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsConfig {
    /// Topic to publish to.
    pub topic_arn: String,
    /// Region of the topic (taken from the ARN unless set).
    pub region: String,
}

/// `[sns]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawSns {
    /// Topic ARN (required).
    topic_arn: Option<String>,
    /// Topic region; default: the ARN's.
    region: Option<String>,
}

impl RawSns {
    /// Validates the section at key path `section` (`sns`).
    pub(crate) fn validate(&self, section: &str, problems: &mut Problems) -> SnsConfig {
        let raw = self;
        let Some(arn) = &raw.topic_arn else {
            problems.error(
                format!("{section}.topic_arn"),
                format!(
                    "is required when [{section}] is configured, e.g. \
                 \"arn:aws:sns:us-east-1:123456789012:iamwatchd\""
                ),
            );
            return SnsConfig {
                topic_arn: String::new(),
                region: raw.region.clone().unwrap_or_default(),
            };
        };
        let arn_region = match sns_topic_region(arn) {
            Ok(region) => Some(region),
            Err(e) => {
                problems.error(format!("{section}.topic_arn"), e);
                None
            }
        };
        let region = match (&raw.region, arn_region) {
            (Some(region), arn_region) => {
                if let Err(e) = check_region(region) {
                    problems.error(format!("{section}.region"), e);
                } else if arn_region.is_some_and(|a| a != region) {
                    problems.error(
                        format!("{section}.region"),
                        format!(
                            "is {region} but the topic ARN names {}; remove {section}.region \
                         (it defaults to the ARN's region)",
                            arn_region.unwrap_or_default()
                        ),
                    );
                }
                region.clone()
            }
            (None, arn_region) => arn_region.unwrap_or_default().to_owned(),
        };
        SnsConfig {
            topic_arn: arn.clone(),
            region,
        }
    }
}

/// `arn:<partition>:sns:<region>:<account>:<topic>`; returns the region.
fn sns_topic_region(topic_arn: &str) -> Result<&str, String> {
    let bad = || {
        format!(
            "must be an SNS topic ARN such as \"arn:aws:sns:us-east-1:123456789012:iamwatchd\", \
             got {topic_arn:?}"
        )
    };
    let arn = crate::aws::arn::Arn::parse(topic_arn).ok_or_else(bad)?;
    if !arn.partition.starts_with("aws") || arn.service != "sns" {
        return Err(bad());
    }
    check_region(arn.region).map_err(|_| bad())?;
    if !is_account_id(arn.account) {
        return Err(bad());
    }
    let name = arn.resource.strip_suffix(".fifo").unwrap_or(arn.resource);
    let name_ok = !name.is_empty()
        && arn.resource.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(bad());
    }
    Ok(arn.region)
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn sns_topic_arn_shape_and_region() {
        let found = problems("[sns]\ntopic_arn = \"arn:aws:sqs:us-east-1:123456789012:q\"\n");
        problem_at(&found, "sns.topic_arn");
        let found = problems(
            "[sns]\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:t\"\nregion = \"eu-west-1\"\n",
        );
        problem_at(&found, "sns.region");
        let config = load_str(
            "[sns]\ntopic_arn = \"arn:aws:sns:eu-west-1:123456789012:t.fifo\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.sns("sns").unwrap().region, "eu-west-1");
    }
}
