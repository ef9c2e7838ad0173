//! Which accounts the organization has: `organizations:ListAccounts` (management or
//! delegated-administrator account), the OUs `include` / `exclude` name read with
//! `ListAccountsForParent` and `ListOrganizationalUnitsForParent` (at any depth), and the
//! IAM alias of an account that has no other name (`iam:ListAccountAliases`).

use aws_config::SdkConfig;

use crate::aws::errors::AwsError;

/// The AWS actions this file calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// allows them; `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &[
    "organizations:ListAccounts",
    "organizations:ListAccountsForParent",
    "organizations:ListOrganizationalUnitsForParent",
    "iam:ListAccountAliases",
];

/// One account of the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Discovered {
    /// Its ID.
    pub id: String,
    /// Its name in Organizations.
    pub name: Option<String>,
    /// `ACTIVE` (suspended, pending-closure and closed accounts are not watched).
    pub active: bool,
    /// The OUs and roots named in `include` / `exclude` that hold it.
    pub parents: Vec<String>,
}

/// The Organizations client: `role_arn`'s credentials (assumed with the daemon's own), or the
/// daemon's own when there is no discovery role. Organizations answers in us-east-1.
pub(crate) async fn client(
    home: &SdkConfig,
    role_arn: Option<&str>,
) -> aws_sdk_organizations::Client {
    let home = home
        .to_builder()
        .region(aws_config::Region::new(crate::aws::IAM_EVENTS_REGION))
        .build();
    let sdk = match role_arn {
        Some(arn) => {
            let sts = aws_sdk_sts::Client::new(&home);
            super::credentials::member_sdk(&home, &sts, arn, None, None)
        }
        None => home,
    };
    aws_sdk_organizations::Client::new(&sdk)
}

/// Whether an account's state (or, from older answers, its status) is ACTIVE. `Status` is
/// being retired in favour of `State` (September 2026).
fn is_active(account: &aws_sdk_organizations::types::Account) -> bool {
    match (account.state(), account.status()) {
        (Some(state), _) => state.as_str() == "ACTIVE",
        (None, Some(status)) => status.as_str() == "ACTIVE",
        (None, None) => false,
    }
}

/// Every account of the organization, with the `parents` (OUs or roots) that hold each.
pub(crate) async fn list(
    client: &aws_sdk_organizations::Client,
    parents: &[&str],
) -> Result<Vec<Discovered>, AwsError> {
    let mut found = Vec::new();
    let mut pages = client.list_accounts().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::read(&e))?;
        for account in page.accounts() {
            if let Some(id) = account.id() {
                found.push(Discovered {
                    id: id.to_owned(),
                    name: account.name().map(str::to_owned),
                    active: is_active(account),
                    parents: Vec::new(),
                });
            }
        }
    }
    for parent in parents {
        for id in under(client, parent).await? {
            if let Some(account) = found.iter_mut().find(|a| a.id == id) {
                account.parents.push((*parent).to_owned());
            }
        }
    }
    Ok(found)
}

/// The IDs of the accounts under `parent`, in it and in every OU below it.
async fn under(
    client: &aws_sdk_organizations::Client,
    parent: &str,
) -> Result<Vec<String>, AwsError> {
    let mut ids = Vec::new();
    let mut parents = vec![parent.to_owned()];
    while let Some(parent) = parents.pop() {
        let mut pages = client
            .list_accounts_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::read(&e))?;
            ids.extend(
                page.accounts()
                    .iter()
                    .filter_map(|a| a.id().map(str::to_owned)),
            );
        }
        let mut pages = client
            .list_organizational_units_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::read(&e))?;
            parents.extend(
                page.organizational_units()
                    .iter()
                    .filter_map(|ou| ou.id().map(str::to_owned)),
            );
        }
    }
    Ok(ids)
}

/// The account's IAM alias, read with `sdk`'s credentials (the account's own); `None` when
/// it has none or it cannot be read (the ID is shown instead).
pub(crate) async fn alias(sdk: &SdkConfig) -> Option<String> {
    let iam = aws_sdk_iam::Client::new(sdk);
    match iam.list_account_aliases().send().await {
        Ok(answer) => answer.account_aliases().first().cloned(),
        Err(error) => {
            let error = AwsError::read(&error);
            tracing::debug!(%error, "cannot read the account alias; the ID is shown");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_organizations::types::{Account, AccountState, AccountStatus};

    #[test]
    fn only_active_accounts_count_by_state_first_then_status() {
        let account = |state: Option<&str>, status: Option<&str>| {
            Account::builder()
                .set_state(state.map(AccountState::from))
                .set_status(status.map(AccountStatus::from))
                .build()
        };
        assert!(is_active(&account(Some("ACTIVE"), Some("SUSPENDED"))));
        assert!(!is_active(&account(Some("SUSPENDED"), Some("ACTIVE"))));
        assert!(!is_active(&account(Some("PENDING_CLOSURE"), None)));
        assert!(is_active(&account(None, Some("ACTIVE"))));
        assert!(!is_active(&account(None, None)));
    }
}
