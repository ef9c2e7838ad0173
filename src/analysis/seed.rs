//! The seed: the account's inline policies, trust policies, permissions boundaries and
//! managed policies' default versions as IAM has them now (`GetAccountAuthorizationDetails`,
//! paged), so the first change to each has a previous version to compare with. Gentle on
//! IAM: pages of 100, at most `rate` requests a second and `max_requests` requests per run.

use std::time::Duration;

use aws_sdk_iam::types::EntityType;
use aws_sdk_iam::Client;
use serde_json::Value;

use super::{policy, SnapshotKey};
use crate::aws::errors::AwsError;

/// The AWS actions this module calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// must allow exactly the union of every module's list; `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &["iam:GetAccountAuthorizationDetails"];

/// Entries per page.
const PAGE_SIZE: i32 = 100;

/// What a seed read: the snapshots, and whether it read everything.
#[derive(Debug, Default)]
pub(crate) struct Seeded {
    /// The snapshots, with their documents (JSON text, an ARN, a version id).
    pub snapshots: Vec<(SnapshotKey, String)>,
    /// False when the request budget ran out before the last page.
    pub complete: bool,
    /// Pages read.
    pub requests: u32,
}

/// The account in an IAM ARN (`arn:aws:iam::111122223333:user/x`).
fn account_of(arn: Option<&str>) -> Option<String> {
    arn?.split(':')
        .nth(4)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
}

/// A document as IAM returns it (URL-encoded JSON) as JSON text.
fn decoded(text: &str) -> String {
    policy::parse(&Value::String(text.to_owned()))
        .map(|v| v.to_string())
        .unwrap_or_else(|| text.to_owned())
}

/// Reads the account's authorisation details, at most `max_requests` pages at `rate` per
/// second.
pub(crate) async fn read(
    client: &Client,
    rate: f64,
    max_requests: u32,
) -> Result<Seeded, AwsError> {
    let pause = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let mut seeded = Seeded::default();
    let mut marker: Option<String> = None;
    loop {
        if seeded.requests >= max_requests {
            return Ok(seeded);
        }
        if seeded.requests > 0 {
            tokio::time::sleep(pause).await;
        }
        let page = client
            .get_account_authorization_details()
            .filter(EntityType::User)
            .filter(EntityType::Group)
            .filter(EntityType::Role)
            .filter(EntityType::LocalManagedPolicy)
            .max_items(PAGE_SIZE)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| AwsError::read(&e))?;
        seeded.requests += 1;
        let out = &mut seeded.snapshots;
        let key = |account: &str, kind: &'static str, entity: &str, name: &str| SnapshotKey {
            account: account.to_owned(),
            kind,
            entity: entity.to_owned(),
            name: name.to_owned(),
        };
        for user in page.user_detail_list() {
            let (Some(account), Some(name)) = (account_of(user.arn()), user.user_name()) else {
                continue;
            };
            for p in user.user_policy_list() {
                if let (Some(n), Some(d)) = (p.policy_name(), p.policy_document()) {
                    out.push((key(&account, "user-policy", name, n), decoded(d)));
                }
            }
            if let Some(arn) = user
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
            {
                out.push((
                    key(&account, "boundary", &format!("user/{name}"), ""),
                    arn.to_owned(),
                ));
            }
        }
        for group in page.group_detail_list() {
            let (Some(account), Some(name)) = (account_of(group.arn()), group.group_name()) else {
                continue;
            };
            for p in group.group_policy_list() {
                if let (Some(n), Some(d)) = (p.policy_name(), p.policy_document()) {
                    out.push((key(&account, "group-policy", name, n), decoded(d)));
                }
            }
        }
        for role in page.role_detail_list() {
            let (Some(account), Some(name)) = (account_of(role.arn()), role.role_name()) else {
                continue;
            };
            if let Some(trust) = role.assume_role_policy_document() {
                out.push((key(&account, "trust", name, ""), decoded(trust)));
            }
            for p in role.role_policy_list() {
                if let (Some(n), Some(d)) = (p.policy_name(), p.policy_document()) {
                    out.push((key(&account, "role-policy", name, n), decoded(d)));
                }
            }
            if let Some(arn) = role
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
            {
                out.push((
                    key(&account, "boundary", &format!("role/{name}"), ""),
                    arn.to_owned(),
                ));
            }
        }
        for managed in page.policies() {
            let (Some(account), Some(arn), Some(id)) = (
                account_of(managed.arn()),
                managed.arn(),
                managed.default_version_id(),
            ) else {
                continue;
            };
            out.push((key(&account, "managed-default", arn, ""), id.to_owned()));
        }
        match page.marker().filter(|_| page.is_truncated()) {
            Some(next) => marker = Some(next.to_owned()),
            None => {
                seeded.complete = true;
                return Ok(seeded);
            }
        }
    }
}
