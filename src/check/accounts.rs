//! The accounts of `[accounts]`: the organization can be listed (with the discovery role or the
//! daemon's own credentials), and each member's role can be assumed and its event history read
//! — a sample of them, or all with `--all-accounts`.

use aws_config::SdkConfig;

use super::Report;
use crate::accounts::credentials;
use crate::accounts::discovery;
use crate::accounts::estate::wanted;
use crate::config::Config;

/// How many member accounts `check` tries without `--all-accounts`.
pub(crate) const SAMPLE: usize = 5;

/// The organization and the member accounts' roles.
pub(super) async fn accounts(
    sdk: &SdkConfig,
    config: &Config,
    home: Option<&str>,
    all: bool,
    report: &mut Report,
) {
    let accounts = &config.accounts;
    if !accounts.any() {
        return;
    }
    let mut found = Vec::new();
    if let Some(organizations) = &accounts.organizations {
        let through = organizations
            .role_arn
            .as_deref()
            .map_or("the daemon's own credentials".to_owned(), |r| {
                format!("role {r}")
            });
        let client = discovery::client(sdk, organizations.role_arn.as_deref()).await;
        match discovery::list(&client, &accounts.parents()).await {
            Ok(listed) => {
                let active = listed.iter().filter(|a| a.active).count();
                report.ok(format!(
                    "organization: {} accounts ({active} active) listed through {through}",
                    listed.len()
                ));
                found = listed;
            }
            Err(error) => report.fail(
                format!("organization: cannot list its accounts through {through}: {error}"),
                "run the daemon in the management account or a delegated administrator, or set \
                 accounts.organizations.role_arn to a role there that allows \
                 organizations:ListAccounts (and ListAccountsForParent, \
                 ListOrganizationalUnitsForParent for OUs) and trusts the daemon",
            ),
        }
    }
    let members = wanted(accounts, &found, home);
    let tried = if all {
        members.len()
    } else {
        members.len().min(SAMPLE)
    };
    if tried < members.len() {
        report.ok(format!(
            "member accounts: {} to watch; trying {tried} (all of them with --all-accounts)",
            members.len()
        ));
    }
    let sts = aws_sdk_sts::Client::new(sdk);
    for member in &members[..tried] {
        let shown = crate::accounts::shown(&member.id, member.name.as_deref());
        let role = accounts.member_role_arn(&member.id);
        let external_id = accounts.external_id.as_deref();
        let first = match credentials::probe(&sts, &role, external_id).await {
            Ok(first) => first,
            Err(refusal) => {
                report.fail(
                    format!("account {shown}: cannot assume {role}: {}", refusal.error),
                    refusal.fix,
                );
                continue;
            }
        };
        let member_sdk = credentials::member_sdk(sdk, &sts, &role, external_id, Some(first));
        match credentials::readable(&member_sdk, &role).await {
            Ok(()) => report.ok(format!(
                "account {shown}: role assumed, event history readable"
            )),
            Err(refusal) => report.fail(
                format!(
                    "account {shown}: role assumed, but its event history cannot be read: {}",
                    refusal.error
                ),
                refusal.fix,
            ),
        }
    }
}
