//! Getting into a member account: AssumeRole into its member role, with the session name
//! `iamwatchd` and the configured external ID. The first call is made by hand ([`probe`]) so
//! its failure can be read and named; its credentials are then the first the account's
//! [`MemberRole`] provider serves ([`member_sdk`]), and the SDK's identity cache keeps them and
//! asks the provider again before they expire, for every client of the account. [`readable`]
//! then reads one event, so a role that may not read the event history is named as clearly as
//! one that cannot be assumed.
//!
//! The provider is ours rather than the SDK's `AssumeRoleProvider`, which builds an STS client
//! of its own for each role (17 KB each, the largest part of a member account's memory): every
//! account's provider asks the one STS client of the daemon, made with its own credentials.

use std::sync::Mutex;
use std::time::SystemTime;

use aws_config::identity::IdentityCache;
use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;

use crate::aws::errors::{AwsError, Kind};

/// The AWS actions this file calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// allows them; `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &["sts:AssumeRole", "cloudtrail:LookupEvents"];

/// The session name of every assumed role: CloudTrail records it as the caller, so the
/// daemon's own reads are recognisable in every account.
pub(crate) const SESSION_NAME: &str = "iamwatchd";

/// Why a role could not be assumed, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// What AWS said.
    pub error: String,
    /// The fix, in one sentence.
    pub fix: String,
    /// Whether trying again without anyone changing anything may work.
    pub retryable: bool,
}

/// Assumes `role_arn` once with the daemon's own STS client, to find out whether it can be:
/// the credentials, or why not.
pub(crate) async fn probe(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    external_id: Option<&str>,
) -> Result<Credentials, Refusal> {
    let answer = assume(sts, role_arn, external_id).await;
    let answer = answer.map_err(|error| refusal(&AwsError::read(&error), role_arn))?;
    credentials_of(answer).map_err(|error| Refusal {
        error,
        fix: "STS answered AssumeRole without usable credentials: retrying".to_owned(),
        retryable: true,
    })
}

async fn assume(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    external_id: Option<&str>,
) -> Result<
    AssumeRoleOutput,
    aws_sdk_sts::error::SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError>,
> {
    sts.assume_role()
        .role_arn(role_arn)
        .role_session_name(SESSION_NAME)
        .set_external_id(external_id.map(str::to_owned))
        .send()
        .await
}

/// The credentials in an AssumeRole answer, with their expiry.
fn credentials_of(answer: AssumeRoleOutput) -> Result<Credentials, String> {
    let given = answer
        .credentials
        .ok_or("STS answered AssumeRole without credentials")?;
    let expiry = SystemTime::try_from(given.expiration)
        .map_err(|_| format!("STS gave credentials that expire at {}", given.expiration))?;
    Ok(Credentials::new(
        given.access_key_id,
        given.secret_access_key,
        Some(given.session_token),
        Some(expiry),
        PROVIDER_NAME,
    ))
}

/// The name the credentials carry (the SDK logs it).
const PROVIDER_NAME: &str = "iamwatchd-member-role";

/// Credentials from assuming one member role with the daemon's shared STS client. It does
/// not cache: the identity cache of the account's SDK configuration does, and asks again
/// shortly before the credentials expire.
#[derive(Debug)]
pub(crate) struct MemberRole {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    external_id: Option<String>,
    /// The probe's credentials, served first instead of assuming the role a second time.
    first: Mutex<Option<Credentials>>,
}

impl MemberRole {
    async fn credentials(&self) -> provider::Result {
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(first) = first {
            if first.expiry().is_none_or(|at| at > SystemTime::now()) {
                return Ok(first);
            }
        }
        let external_id = self.external_id.as_deref();
        match assume(&self.sts, &self.role_arn, external_id).await {
            Ok(answer) => credentials_of(answer).map_err(CredentialsError::unhandled),
            // As the SDK's provider does: the request that wanted the credentials fails with
            // this, and the poller's budget and retries take it from there.
            Err(error) => Err(CredentialsError::provider_error(
                AwsError::read(&error).to_string(),
            )),
        }
    }
}

impl ProvideCredentials for MemberRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.credentials())
    }
}

/// What `error` means for assuming `role_arn`.
pub(crate) fn refusal(error: &AwsError, role_arn: &str) -> Refusal {
    let role = crate::aws::arn::last_segment(role_arn);
    let fix = match error.kind {
        // AWS says the same whether the role is missing or does not trust us.
        Kind::Denied | Kind::NotFound => format!(
            "role {role} missing in the account or not trusting this daemon: deploy the \
             member-role template (iamwatchd deploy --member-roles, or iamwatchd template \
             --member-role), and check accounts.member_role and accounts.external_id"
        ),
        Kind::Credentials => "the daemon's own credentials are missing or expired: fix them \
             (the member roles are assumed with them)"
            .to_owned(),
        Kind::Throttled | Kind::Transient | Kind::Unreachable => {
            "STS did not answer: retrying".to_owned()
        }
        Kind::Rejected => format!(
            "STS refused the request for {role}: check accounts.member_role and \
             accounts.external_id"
        ),
    };
    Refusal {
        error: error.to_string(),
        fix,
        retryable: error.kind.is_retryable(),
    }
}

/// Reads one event of the account `sdk` acts in (its event history exists whether or not it
/// has a trail), to find out whether the role may.
pub(crate) async fn readable(sdk: &SdkConfig, role_arn: &str) -> Result<(), Refusal> {
    let cloudtrail = aws_sdk_cloudtrail::Client::new(sdk);
    match cloudtrail.lookup_events().max_results(1).send().await {
        Ok(_) => Ok(()),
        Err(error) => {
            let error = AwsError::read(&error);
            let role = crate::aws::arn::last_segment(role_arn);
            Err(Refusal {
                error: error.to_string(),
                fix: if error.kind.is_retryable() {
                    "CloudTrail did not answer: retrying".to_owned()
                } else {
                    format!(
                        "role {role} was assumed but may not read the event history: allow it \
                         cloudtrail:LookupEvents (the member-role template does)"
                    )
                },
                retryable: error.kind.is_retryable(),
            })
        }
    }
}

/// The SDK configuration of a member account: `home`'s (its HTTP client, so one connection
/// pool and one set of trusted roots serve every account), with credentials from assuming
/// `role_arn` through `sts` (`first` served first), cached and refreshed before expiry by the
/// SDK in a cache of the account's own.
///
/// The cache must be the account's own: `home`'s is shared by everything built from it and
/// keeps at most 64 credential providers, so past 64 accounts each pass would evict another
/// account's credentials and assume its role again (thousands of AssumeRole calls an hour).
pub(crate) fn member_sdk(
    home: &SdkConfig,
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    external_id: Option<&str>,
    first: Option<Credentials>,
) -> SdkConfig {
    let provider = MemberRole {
        sts: sts.clone(),
        role_arn: role_arn.to_owned(),
        external_id: external_id.map(str::to_owned),
        first: Mutex::new(first),
    };
    home.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .identity_cache(IdentityCache::lazy().build())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_role_names_the_template_and_the_keys() {
        let denied = AwsError::answered(
            Some("AccessDenied"),
            "User: arn:aws:iam::123456789012:user/d is not authorized to perform: \
             sts:AssumeRole on resource: arn:aws:iam::111122223333:role/iamwatchd-member",
            Some(403),
        );
        let refusal = refusal(&denied, "arn:aws:iam::111122223333:role/iamwatchd-member");
        assert!(
            refusal.fix.contains("iamwatchd-member missing"),
            "{}",
            refusal.fix
        );
        assert!(refusal.fix.contains("--member-roles"));
        assert!(refusal.error.starts_with("AccessDenied: User:"));
        assert!(!refusal.retryable);

        let throttled = AwsError::answered(Some("Throttling"), "Rate exceeded", Some(400));
        assert!(refusal_of(&throttled).retryable);
    }

    /// A member role whose STS client reaches nothing (nothing listens on port 1).
    fn unreachable_role(first: Option<Credentials>) -> MemberRole {
        let config = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(Credentials::for_tests())
            .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
            .build();
        MemberRole {
            sts: aws_sdk_sts::Client::from_conf(config),
            role_arn: "arn:aws:iam::111122223333:role/iamwatchd-member".to_owned(),
            external_id: None,
            first: Mutex::new(first),
        }
    }

    fn probed(expiry: SystemTime) -> Credentials {
        Credentials::new(
            "ASIAPROBE",
            "secret",
            Some("token".into()),
            Some(expiry),
            "t",
        )
    }

    #[tokio::test]
    async fn the_probes_credentials_are_served_once_without_asking_sts_again() {
        let in_an_hour = SystemTime::now() + std::time::Duration::from_secs(3600);
        let role = unreachable_role(Some(probed(in_an_hour)));
        let first = role
            .provide_credentials()
            .await
            .expect("the probe's credentials");
        assert_eq!(first.access_key_id(), "ASIAPROBE");
        // After them the role is assumed again; here STS cannot be reached, and that is the
        // provider's error (the identity cache asks again at the next request).
        let error = role.provide_credentials().await.unwrap_err();
        assert!(
            matches!(error, CredentialsError::ProviderError(_)),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn expired_probe_credentials_are_not_served() {
        let an_hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        let role = unreachable_role(Some(probed(an_hour_ago)));
        assert!(role.provide_credentials().await.is_err());
    }

    #[test]
    fn an_answer_without_credentials_is_an_error_not_a_panic() {
        let answer = AssumeRoleOutput::builder().build();
        let error = credentials_of(answer).unwrap_err();
        assert!(error.contains("without credentials"), "{error}");
    }

    fn refusal_of(error: &AwsError) -> Refusal {
        refusal(error, "arn:aws:iam::111122223333:role/iamwatchd-member")
    }
}
