//! Getting into a member account: AssumeRole into its member role, with the session name
//! `iamwatchd` and the configured external ID. The first call is made by hand ([`probe`]) so
//! its failure can be read and named; after it the SDK's assume-role provider takes over
//! ([`member_sdk`]): its credentials are cached and refreshed before they expire, shared by
//! every client of the account. [`readable`] then reads one event, so a role that may not read
//! the event history is named as clearly as one that cannot be assumed.

use aws_config::identity::IdentityCache;
use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;

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

/// Assumes `role_arn` once with the daemon's own credentials (`home`), to find out whether
/// it can be.
pub(crate) async fn probe(
    home: &SdkConfig,
    role_arn: &str,
    external_id: Option<&str>,
) -> Result<(), Refusal> {
    let sts = aws_sdk_sts::Client::new(home);
    let answer = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(SESSION_NAME)
        .set_external_id(external_id.map(str::to_owned))
        .send()
        .await;
    match answer {
        Ok(_) => Ok(()),
        Err(error) => Err(refusal(&AwsError::read(&error), role_arn)),
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
                        "role {role} was assumed but may not read the event history: allow it                          cloudtrail:LookupEvents (the member-role template does)"
                    )
                },
                retryable: error.kind.is_retryable(),
            })
        }
    }
}

/// The SDK configuration of a member account: `home`'s (its HTTP client, so one connection
/// pool and one set of trusted roots serve every account), with credentials from assuming
/// `role_arn`, cached and refreshed before expiry by the SDK in a cache of the account's own.
///
/// The cache must be the account's own: `home`'s is shared by everything built from it and
/// keeps at most 64 credential providers, so past 64 accounts each pass would evict another
/// account's credentials and assume its role again (thousands of AssumeRole calls an hour).
pub(crate) async fn member_sdk(
    home: &SdkConfig,
    role_arn: &str,
    external_id: Option<&str>,
) -> SdkConfig {
    let mut provider = AssumeRoleProvider::builder(role_arn)
        .session_name(SESSION_NAME)
        .configure(home);
    if let Some(external_id) = external_id {
        provider = provider.external_id(external_id);
    }
    let provider = provider.build().await;
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

    fn refusal_of(error: &AwsError) -> Refusal {
        refusal(error, "arn:aws:iam::111122223333:role/iamwatchd-member")
    }
}
