//! The SNS notifier: `Publish` to a topic, with message attributes subscribers can filter on.
//!
//! The topic's subscribers (e-mail, SQS, Lambda, chat bridges) all receive the text body; the
//! subject (used by e-mail subscriptions) follows SNS's rules (ASCII, < 100 characters). The
//! attributes `severity`, `event_name`, `account` and `category` let a subscription's filter
//! policy pick, say, only CRITICAL alerts for a pager.
//!
//! The client comes from [`crate::aws::loader`] like every AWS client of the daemon, in the
//! topic's own region (read from its ARN: SNS only accepts a topic in the client's region).

use async_trait::async_trait;
use aws_config::{Region, SdkConfig};
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};

use crate::aws::errors::{AwsError, Kind};
use aws_sdk_sns::types::MessageAttributeValue;

use super::{Message, Notifier, NotifyError};

mod config;

pub(crate) use config::RawSns;
pub use config::SnsConfig;

/// The AWS actions this module calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// must allow exactly the union of every module's list; `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &["sns:Publish", "sns:GetTopicAttributes"];

/// What SNS calls in KMS on the publisher's behalf: the stack's notifications topic is
/// encrypted with its KMS key, and Publish makes a data key with the caller's permissions. Not
/// SDK calls of this file (so not in `ACTIONS`); `src/aws/actions.rs` lists them among the
/// implied actions.
#[cfg(test)]
pub(crate) const KMS_ACTIONS: &[&str] = &["kms:GenerateDataKey", "kms:Decrypt"];

/// Publishes each alert to one SNS topic.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    name: String,
    topic_arn: String,
    client: aws_sdk_sns::Client,
}

impl SnsNotifier {
    /// A notifier for `topic_arn` with the AWS configuration the daemon already has (its
    /// region is replaced by the topic's).
    pub fn new(name: &str, topic_arn: &str, sdk_config: &SdkConfig) -> Result<Self, NotifyError> {
        let region =
            crate::aws::arn::topic_region(topic_arn).ok_or_else(|| NotifyError::Config {
                notifier: name.to_owned(),
                problem: format!(
                    "topic_arn {topic_arn:?} is not an SNS topic ARN: expected \
                 arn:aws:sns:REGION:ACCOUNT:NAME"
                ),
            })?;
        let config = aws_sdk_sns::config::Builder::from(sdk_config)
            .region(Region::new(region.to_owned()))
            .build();
        Ok(SnsNotifier {
            name: name.to_owned(),
            topic_arn: topic_arn.to_owned(),
            client: aws_sdk_sns::Client::from_conf(config),
        })
    }

    /// The ARN of the topic it publishes to.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        action: &str,
        error: SdkError<E, aws_sdk_sns::config::http::HttpResponse>,
    ) -> NotifyError {
        let failure = AwsError::read(&error);
        let problem = format!("{action} to {} failed: {failure}", self.topic_arn);
        verdict(&self.name, problem, &failure)
    }
}

/// The outbox's verdict on a failed SNS call, with the fix for a permanent one.
pub(crate) fn verdict(notifier: &str, problem: String, failure: &AwsError) -> NotifyError {
    let code = failure.code.as_deref().unwrap_or_default();
    let fix = match failure.kind {
        kind if kind.is_retryable() => return NotifyError::transient(notifier, problem),
        // The daemon's role credentials renew themselves: an expired token, or a provider
        // that failed to hand out credentials (no answer at all), is worth another try.
        Kind::Credentials if failure.status.is_none() || code.starts_with("ExpiredToken") => {
            return NotifyError::transient(notifier, problem)
        }
        _ if code.starts_with("KMS") => {
            "the topic's KMS key is unusable: enable it or allow kms:GenerateDataKey and \
             kms:Decrypt to the daemon's role"
        }
        Kind::NotFound => {
            "the topic does not exist: create it (iamwatchd deploy) or correct topic_arn"
        }
        Kind::Denied => {
            "allow sns:Publish and sns:GetTopicAttributes on the topic to the daemon's role \
             (and check the topic policy)"
        }
        Kind::Credentials => "the AWS credentials are invalid: check the daemon's credentials",
        _ if failure.status.is_none() => {
            "the request could not be built: check topic_arn and the message"
        }
        _ if matches!(
            code,
            "InvalidParameter" | "InvalidParameterValue" | "ValidationError"
        ) =>
        {
            "SNS rejected the request's parameters: check topic_arn; otherwise report a bug"
        }
        _ => "see the error code in the message and the topic's configuration",
    };
    NotifyError::permanent(notifier, problem, fix)
}

fn attribute(value: &str) -> MessageAttributeValue {
    // SNS refuses empty attribute values.
    let value = if value.trim().is_empty() {
        "unknown"
    } else {
        value
    };
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data_type is set")
}

#[async_trait]
impl Notifier for SnsNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<(), NotifyError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(message.sns_subject())
            .message(&message.text)
            .message_attributes("severity", attribute(&message.severity))
            .message_attributes("event_name", attribute(&message.event_name))
            .message_attributes("account", attribute(&message.account))
            .message_attributes("category", attribute(&message.category))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| self.classify("Publish", error))
    }

    async fn healthcheck(&self) -> Result<(), NotifyError> {
        self.client
            .get_topic_attributes()
            .topic_arn(&self.topic_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| self.classify("GetTopicAttributes", error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_malformed_topic_arn_is_a_configuration_error() {
        let config = crate::aws::loader("us-east-1", 1).load().await;
        let error = SnsNotifier::new("pager", "alerts", &config).expect_err("not an ARN");
        assert!(matches!(error, NotifyError::Config { .. }));
        assert!(error
            .to_string()
            .contains("arn:aws:sns:REGION:ACCOUNT:NAME"));
    }

    #[test]
    fn missing_topics_and_denied_access_are_permanent_throttling_is_not() {
        let verdict = |code: Option<&str>, status: Option<u16>| {
            verdict(
                "pager",
                "publish failed".to_owned(),
                &AwsError::answered(code, "", status),
            )
        };
        let missing = verdict(Some("NotFound"), Some(404));
        assert!(!missing.is_transient());
        assert!(missing.to_string().contains("create it"));
        let denied = verdict(Some("AuthorizationError"), Some(403));
        assert!(denied.to_string().contains("sns:Publish"));
        assert!(!denied.is_transient());
        assert!(verdict(Some("Throttled"), Some(400)).is_transient());
        assert!(verdict(Some("InternalError"), Some(500)).is_transient());
        assert!(verdict(Some("Weird"), Some(503)).is_transient());
        assert!(verdict(None, None).is_transient());
        assert!(!verdict(Some("Weird"), Some(400)).is_transient());
        assert!(verdict(Some("ExpiredToken"), Some(400)).is_transient());
        let invalid = verdict(Some("InvalidClientTokenId"), Some(403));
        assert!(!invalid.is_transient() && invalid.to_string().contains("credentials"));
        let provider_failed = AwsError {
            kind: Kind::Credentials,
            code: None,
            message: "failed to load credentials from IMDS".to_owned(),
            status: None,
        };
        assert!(
            super::verdict("pager", "publish failed".to_owned(), &provider_failed).is_transient()
        );
        let kms = verdict(Some("KMSDisabled"), Some(400));
        assert!(!kms.is_transient() && kms.to_string().contains("KMS key"));
    }
}
