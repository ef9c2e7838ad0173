//! AWS SDK configuration, built in one place.
//!
//! Every client the daemon creates starts from [`loader`], i.e. `aws_config::defaults`: the
//! standard credential chain, the standard endpoint override (`AWS_ENDPOINT_URL`, which is how
//! the emulator is reached) and one retry policy. There is deliberately no emulator switch in
//! the code: the paths that run in tests are the paths that run against AWS.

use aws_config::{retry::RetryConfig, BehaviorVersion, ConfigLoader, Region, SdkConfig};

/// Since November 2021 CloudTrail records IAM (and STS) events in us-east-1 only: a poller
/// looking at any other region sees no IAM changes at all.
pub const IAM_EVENTS_REGION: &str = "us-east-1";

/// Attempts per SDK call (the first try included) before an error reaches our code. The SDK's
/// standard mode backs off exponentially with jitter and knows which errors are transient
/// (throttling, 5xx, timeouts).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The configuration loader every client starts from: defaults, a region, the retry policy.
///
/// Callers add nothing but what the standard chain cannot know (tests add the emulator's
/// endpoint and fixed credentials, exactly as `AWS_ENDPOINT_URL` and the environment would).
pub fn loader(region: &str, max_attempts: u32) -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts.max(1)))
}

/// Loads the SDK configuration for `region` from the environment.
pub async fn sdk_config(region: &str) -> SdkConfig {
    loader(region, DEFAULT_MAX_ATTEMPTS).load().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudtrail::config::Credentials;

    fn test_credentials() -> Credentials {
        Credentials::new("AKIDTEST", "secret", None, None, "unit-test")
    }

    #[tokio::test]
    async fn loader_sets_region_and_retries() {
        let config = loader("eu-west-1", 5)
            .credentials_provider(test_credentials())
            .load()
            .await;
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(5));
    }

    #[tokio::test]
    async fn zero_attempts_still_tries_once() {
        let config = loader(IAM_EVENTS_REGION, 0)
            .credentials_provider(test_credentials())
            .load()
            .await;
        assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(1));
    }
}
