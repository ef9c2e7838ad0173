//! AWS: where SDK configuration is built, the facts about AWS the code relies on, one reading
//! of SDK errors ([`errors`]) and one ARN parser ([`arn`]).
//!
//! Every client the daemon creates starts from [`loader`], i.e. `aws_config::defaults`: the
//! standard credential chain, the standard endpoint override (`AWS_ENDPOINT_URL`, which is how
//! the emulator is reached) and one retry policy. There is deliberately no emulator switch in
//! the code: the paths that run in tests are the paths that run against AWS.
//!
//! # Facts about AWS that shape the code
//!
//! Checked against AWS's documentation; each is a constant here or cited where it is used.
//!
//! - **CloudTrail `LookupEvents`** allows 2 requests per second per account and region, for
//!   every caller together ([`LOOKUP_EVENTS_REQUESTS_PER_SECOND`]); returns at most 50 events
//!   per page, newest first; keeps 90 days ([`LOOKUP_EVENTS_RETENTION`]); takes exactly one
//!   lookup attribute per call (so `readOnly` is filtered by the caller); and a `NextToken` is
//!   valid only with exactly the same parameters (a pagination run freezes its time range).
//! - **IAM and STS events** are recorded in us-east-1 only since November 2021
//!   ([`IAM_EVENTS_REGION`]): a poller in any other region sees no IAM change.
//! - **`eventID`**: LookupEvents' `EventId` equals the record's `eventID`, and the same record
//!   reaches the trail's CloudWatch Logs group, so `eventID` is the key that deduplicates the
//!   two paths.
//! - **Failed calls** (`errorCode` set, e.g. `AccessDenied`) are recorded too: not changes, but
//!   attempts worth a lower-priority line.
//! - **The CloudWatch alarm's SNS message** names no eventID: it says `AlarmName`,
//!   `NewStateValue`, `StateChangeTime` (`2015-06-03T17:43:27.123+0000`), `Trigger.Period` and
//!   so on. Delivered to SQS without raw delivery, it is a JSON string inside the SNS
//!   envelope's `Message`.
//! - **Tampering that blinds the monitor is regional**: `cloudtrail` StopLogging, DeleteTrail,
//!   UpdateTrail, PutEventSelectors; `logs` DeleteMetricFilter, DeleteLogGroup; `monitoring`
//!   DeleteAlarms, DisableAlarmActions; `sns` DeleteTopic, Unsubscribe — recorded in the region
//!   of the resource, not in us-east-1; so are the security services' (GuardDuty, Security
//!   Hub, Config, IAM Access Analyzer) and EC2, KMS, S3, SQS and CloudFormation calls.
//! - **Organizations** is a global service recorded in us-east-1; **IAM Identity Center**
//!   (`sso`, `sso-directory`, `identitystore`) records in its instance's region; console
//!   sign-ins (`signin` ConsoleLogin) in the region of the sign-in endpoint, us-east-1 for the
//!   global one (the root user's).
//! - **Data events** (S3 object calls, SNS `Publish`, SQS `SendMessage`/`ReceiveMessage`) are
//!   never in LookupEvents' event history.
//! - **Mutating IAM operations** are every IAM API not named `Get*`, `List*`, `Generate*` or
//!   `Simulate*` (more than 100 of them, `Tag*`, `Reset*` and `Resync*` included); CIS 4.4 /
//!   Security Hub CloudWatch.4 wants its own exact 16-name filter pattern.
//! - **CloudWatch Logs** refuses a filter pattern longer than 1,024 characters.
//! - **SNS** takes a subject of fewer than 100 ASCII characters without control characters and
//!   a message of at most 256 KB with its attributes.
//! - **CloudWatch's SDK** (`aws-sdk-cloudwatch`) speaks the Smithy RPC v2 CBOR protocol.

pub mod arn;
pub(crate) mod errors;

mod actions;

use std::sync::OnceLock;
use std::time::Duration;

use aws_config::{retry::RetryConfig, BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Since November 2021 CloudTrail records IAM (and STS) events in us-east-1 only: a poller
/// looking at any other region sees no IAM changes at all.
pub const IAM_EVENTS_REGION: &str = "us-east-1";

/// How far back CloudTrail's event history (LookupEvents) reaches.
pub const LOOKUP_EVENTS_RETENTION: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// LookupEvents' limit: requests per second per account and region, for every caller together
/// (the daemon, people in the console, other tools).
pub(crate) const LOOKUP_EVENTS_REQUESTS_PER_SECOND: f64 = 2.0;

/// Attempts per SDK call (the first try included) before an error reaches our code. The SDK's
/// standard mode backs off exponentially with jitter and knows which errors are transient
/// (throttling, 5xx, timeouts).
pub(crate) const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The configuration loader every client starts from: defaults, a region, the retry policy,
/// and one HTTPS client for everything built from the configuration.
///
/// Callers add nothing but what the standard chain cannot know (tests add the emulator's
/// endpoint and fixed credentials, exactly as `AWS_ENDPOINT_URL` and the environment would).
pub fn loader(region: &str, max_attempts: u32) -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts.max(1)))
        .http_client(https_client())
}

/// The SDK's default HTTPS client (hyper 1, rustls with aws-lc, the proxy from the
/// environment), made once per process: every service client, region and member account
/// share one connection pool and one set of trusted roots. Left to itself the SDK makes a
/// client, with its own roots (a few hundred KB once used), for each service client; with a
/// client per region and per member account that was most of the memory of a daemon
/// watching many accounts. (Connections are pooled per host; the daemon runs one runtime.)
fn https_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
            Builder::new().build_with_connector_fn(|settings, components| {
                let mut connector = ConnectorBuilder::default().tls_provider(
                    tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc),
                );
                connector.set_connector_settings(settings.cloned());
                if let Some(components) = components {
                    connector.set_sleep_impl(components.sleep_impl());
                }
                connector.set_proxy_config(Some(ProxyConfig::from_env()));
                connector.build()
            })
        })
        .clone()
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
        assert!(config.http_client().is_some(), "one HTTPS client for all");
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
