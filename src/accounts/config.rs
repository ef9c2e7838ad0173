//! `[accounts]`: which AWS accounts besides the daemon's own are watched, and how it gets into
//! them. A static list (`ids`, with optional `names`) and/or discovery through AWS
//! Organizations (`[accounts.organizations]`), narrowed by `include` / `exclude`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::problem::{join, quote_key, Problems};
use crate::config::shapes::is_account_id;
use crate::config::values;
use crate::source::cloudtrail::LISTED_POLL_INTERVAL;

/// The role every member account holds for the daemon, unless `accounts.member_role` says
/// otherwise (the member-role template creates it under this name).
pub const DEFAULT_MEMBER_ROLE: &str = crate::stack::names::MEMBER_ROLE_NAME;

/// How often Organizations is asked again which accounts exist, unless told otherwise.
pub(crate) const DEFAULT_REFRESH: Duration = Duration::from_secs(15 * 60);

/// One pattern of `include` / `exclude`: an account ID, an OU (or the root) whose accounts it
/// means, at any depth, or a glob on the account's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `111122223333`.
    Id(String),
    /// `ou-ab12-cd34ef56` or `r-ab12`: every account under it.
    Parent(String),
    /// `prod-*`: `*` any text, `?` one character, case-sensitive.
    Name(String),
}

impl Selector {
    fn parse(text: &str) -> Result<Selector, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty: write an account ID, an OU ID (ou-…) or a name glob".into());
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return if is_account_id(text) {
                Ok(Selector::Id(text.to_owned()))
            } else {
                Err(format!(
                    "{text:?} looks like an account ID but is not 12 digits"
                ))
            };
        }
        let parent = |prefix: &str| {
            text.strip_prefix(prefix).is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
        };
        if parent("ou-") || parent("r-") {
            return Ok(Selector::Parent(text.to_owned()));
        }
        Ok(Selector::Name(text.to_owned()))
    }

    /// The OU or root this selector names, if it names one.
    pub(crate) fn parent(&self) -> Option<&str> {
        match self {
            Selector::Parent(parent) => Some(parent),
            _ => None,
        }
    }
}

/// What is read in each member account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum MemberStreams {
    /// The same streams as the daemon's own account: IAM, and every group of the catalogue
    /// (tampering, security services, root use, sign-ins) where CloudTrail records it.
    #[default]
    All,
    /// IAM only: one stream per account, about a tenth of the requests.
    Iam,
}

impl TryFrom<String> for MemberStreams {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        values::choose(
            &text,
            &[("all", MemberStreams::All), ("iam", MemberStreams::Iam)],
        )
    }
}

/// Discovery through AWS Organizations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationsConfig {
    /// The role in the management (or delegated-administrator) account that may list the
    /// organization's accounts; `None`: the daemon's own credentials list them.
    pub role_arn: Option<String>,
    /// How often the list is read again.
    pub refresh: Duration,
}

/// The accounts to watch besides the daemon's own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountsConfig {
    /// Accounts listed by ID, in the order written.
    pub ids: Vec<String>,
    /// Names for accounts (listed or discovered), by ID: they win over Organizations' names
    /// and IAM aliases.
    pub names: BTreeMap<String, String>,
    /// The role the daemon assumes in each member account.
    pub member_role: String,
    /// The `sts:ExternalId` the member roles' trust policies require, if any.
    pub external_id: Option<String>,
    /// Only accounts matching one of these (empty: all).
    pub include: Vec<Selector>,
    /// No account matching one of these, whatever `include` says.
    pub exclude: Vec<Selector>,
    /// Discovery, when `[accounts.organizations] enabled = true`.
    pub organizations: Option<OrganizationsConfig>,
    /// What is read in each member account.
    pub streams: MemberStreams,
    /// How often each member account's listed streams (everything but IAM) have a fast pass:
    /// at least [`LISTED_POLL_INTERVAL`], at most `poller.sweep_interval` (each stream's sweep
    /// reads it then anyway).
    pub listed_interval: Duration,
}

impl AccountsConfig {
    /// True when anything beyond the daemon's own account is to be watched.
    pub fn any(&self) -> bool {
        !self.ids.is_empty() || self.organizations.is_some()
    }

    /// The role ARN the daemon assumes in `account`.
    pub fn member_role_arn(&self, account: &str) -> String {
        format!("arn:aws:iam::{account}:role/{}", self.member_role)
    }

    /// Whether `include` / `exclude` keep the account with `id`, `name` and the OUs (and root)
    /// above it.
    pub(crate) fn selects(&self, id: &str, name: Option<&str>, parents: &[String]) -> bool {
        let hit = |selector: &Selector| match selector {
            Selector::Id(wanted) => wanted == id,
            Selector::Parent(parent) => parents.iter().any(|p| p == parent),
            Selector::Name(glob) => {
                name.is_some_and(|name| crate::rules::allow::glob_matches(glob, name))
            }
        };
        (self.include.is_empty() || self.include.iter().any(hit)) && !self.exclude.iter().any(hit)
    }

    /// The OUs and roots `include` / `exclude` name (discovery reads what is under each).
    pub(crate) fn parents(&self) -> Vec<&str> {
        let mut parents: Vec<&str> = self
            .include
            .iter()
            .chain(&self.exclude)
            .filter_map(Selector::parent)
            .collect();
        parents.sort_unstable();
        parents.dedup();
        parents
    }
}

/// `[accounts.organizations]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawOrganizations {
    /// Discover the accounts through Organizations.
    enabled: bool,
    /// The role that may call `organizations:ListAccounts`; absent: the daemon's own
    /// credentials.
    role_arn: Option<String>,
    /// How often the list is read again.
    #[serde(deserialize_with = "values::duration")]
    refresh: Duration,
}

impl Default for RawOrganizations {
    fn default() -> Self {
        RawOrganizations {
            enabled: false,
            role_arn: None,
            refresh: DEFAULT_REFRESH,
        }
    }
}

/// `[accounts]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawAccounts {
    /// Member accounts by ID.
    ids: Vec<String>,
    /// Names by account ID.
    names: BTreeMap<String, String>,
    /// The role's name in each member account.
    member_role: String,
    /// The external ID the member roles require.
    external_id: Option<String>,
    /// Account IDs, OU IDs or name globs to watch (empty: all).
    include: Vec<String>,
    /// Account IDs, OU IDs or name globs never to watch.
    exclude: Vec<String>,
    /// `"all"` (the daemon's own streams) or `"iam"` in each member account.
    streams: MemberStreams,
    /// How often the listed streams are read in each member account.
    #[serde(deserialize_with = "values::duration")]
    listed_interval: Duration,
    /// Discovery through AWS Organizations.
    pub(crate) organizations: RawOrganizations,
}

impl Default for RawAccounts {
    fn default() -> Self {
        RawAccounts {
            ids: Vec::new(),
            names: BTreeMap::new(),
            member_role: DEFAULT_MEMBER_ROLE.to_owned(),
            external_id: None,
            include: Vec::new(),
            exclude: Vec::new(),
            streams: MemberStreams::All,
            listed_interval: LISTED_POLL_INTERVAL,
            organizations: RawOrganizations::default(),
        }
    }
}

/// IAM role names: 1–64 of `[A-Za-z0-9+=,.@_-]` (a path is not part of the name).
fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

fn selectors(key: &str, texts: &[String], problems: &mut Problems) -> Vec<Selector> {
    texts
        .iter()
        .enumerate()
        .filter_map(|(index, text)| match Selector::parse(text) {
            Ok(selector) => Some(selector),
            Err(message) => {
                problems.error(format!("{key}[{index}]"), message);
                None
            }
        })
        .collect()
}

impl RawAccounts {
    /// Validates `[accounts]`; `sweep_interval` is `[poller]`'s.
    pub(crate) fn validate(
        &self,
        sweep_interval: Duration,
        problems: &mut Problems,
    ) -> AccountsConfig {
        let mut ids = Vec::new();
        for (index, id) in self.ids.iter().enumerate() {
            let id = id.trim();
            if !is_account_id(id) {
                problems.error(
                    format!("accounts.ids[{index}]"),
                    format!("must be a 12-digit AWS account ID, got {id:?}"),
                );
            } else if !ids.iter().any(|known| known == id) {
                ids.push(id.to_owned());
            }
        }
        for (id, name) in &self.names {
            let key = join("accounts.names", &quote_key(id));
            if !is_account_id(id) {
                problems.error(
                    key.clone(),
                    "the key must be a 12-digit AWS account ID (quote it: \"111122223333\" = \
                     \"prod-payments\")",
                );
            }
            if name.trim().is_empty() || name.chars().any(char::is_control) || name.len() > 64 {
                problems.error(
                    key,
                    "must be 1 to 64 characters without control characters: it is shown in \
                     every subject",
                );
            }
        }
        if !is_role_name(&self.member_role) {
            problems.error(
                "accounts.member_role",
                format!(
                    "must be an IAM role name (1-64 of letters, digits and +=,.@_-; no path), \
                     got {:?}",
                    self.member_role
                ),
            );
        }
        if let Some(external_id) = &self.external_id {
            if !(2..=1224).contains(&external_id.len())
                || !external_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/_-".contains(&b))
            {
                problems.error(
                    "accounts.external_id",
                    "must be 2 to 1,224 of letters, digits and +=,.@:/_- (what STS accepts as \
                     an ExternalId)",
                );
            }
        }
        let raw = &self.organizations;
        let organizations = raw.enabled.then(|| {
            if let Some(arn) = &raw.role_arn {
                let role = crate::aws::arn::Arn::parse(arn);
                if !role.is_some_and(|a| a.service == "iam" && a.resource.starts_with("role/")) {
                    problems.error(
                        "accounts.organizations.role_arn",
                        format!(
                            "must be a role ARN such as \
                             \"arn:aws:iam::111122223333:role/iamwatchd-organizations\", got \
                             {arn:?}"
                        ),
                    );
                }
            }
            if raw.refresh < Duration::from_secs(10) || raw.refresh > Duration::from_secs(86400) {
                problems.error(
                    "accounts.organizations.refresh",
                    format!(
                        "must be between 10s and 1d (a new account is watched within one \
                         refresh), got {}",
                        values::show(raw.refresh)
                    ),
                );
            }
            OrganizationsConfig {
                role_arn: raw.role_arn.clone(),
                refresh: raw.refresh,
            }
        });
        let include = selectors("accounts.include", &self.include, problems);
        let exclude = selectors("accounts.exclude", &self.exclude, problems);
        if organizations.is_none() && include.iter().chain(&exclude).any(|s| s.parent().is_some()) {
            problems.error(
                "accounts.include",
                "names an OU, which only discovery can resolve: set \
                 [accounts.organizations] enabled = true, or list account IDs",
            );
        }
        self.validate_listed_interval(sweep_interval, problems);
        AccountsConfig {
            ids,
            names: self
                .names
                .iter()
                .map(|(id, name)| (id.clone(), name.trim().to_owned()))
                .collect(),
            member_role: self.member_role.clone(),
            external_id: self.external_id.clone(),
            include,
            exclude,
            organizations,
            streams: self.streams,
            listed_interval: self.listed_interval,
        }
    }

    /// `listed_interval` between the daemon's own pace and the sweeps' (past which it would
    /// change nothing: a complete sweep is also a stream's fast pass).
    fn validate_listed_interval(&self, sweep_interval: Duration, problems: &mut Problems) {
        let interval = self.listed_interval;
        let longest = sweep_interval.max(LISTED_POLL_INTERVAL);
        if interval < LISTED_POLL_INTERVAL || interval > longest {
            problems.error(
                "accounts.listed_interval",
                format!(
                    "must be between {} (the daemon's own account's pace) and \
                     poller.sweep_interval ({}: each listed stream's sweep reads it then \
                     anyway), got {}",
                    values::show(LISTED_POLL_INTERVAL),
                    values::show(longest),
                    values::show(interval)
                ),
            );
        } else if self.streams == MemberStreams::Iam && interval != LISTED_POLL_INTERVAL {
            problems.warn(
                "accounts.listed_interval",
                "has no effect with accounts.streams = \"iam\" (members read no listed \
                 stream): remove it, or set streams = \"all\"",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;

    #[test]
    fn a_static_list_with_names_and_the_default_role() {
        let config = load_str(
            &format!(
                "{MINIMAL}[accounts]\nids = [\"111122223333\", \"444455556666\", \
                 \"111122223333\"]\n[accounts.names]\n\"111122223333\" = \"prod-payments\"\n"
            ),
            &[],
        )
        .unwrap()
        .accounts;
        assert_eq!(config.ids, ["111122223333", "444455556666"]);
        assert_eq!(config.names["111122223333"], "prod-payments");
        assert!(config.any());
        assert_eq!(
            config.member_role_arn("444455556666"),
            "arn:aws:iam::444455556666:role/iamwatchd-member"
        );
        assert!(config.organizations.is_none());
        assert_eq!(config.streams, MemberStreams::All);
        assert!(!load_str(MINIMAL, &[]).unwrap().accounts.any());
    }

    #[test]
    fn discovery_with_filters_by_id_ou_and_name() {
        let config = load_str(
            &format!(
                "{MINIMAL}[accounts]\ninclude = [\"ou-ab12-cd34ef56\", \"prod-*\"]\n\
                 exclude = [\"999988887777\"]\nstreams = \"iam\"\nexternal_id = \"iamwatchd-7f3a\"\n\
                 [accounts.organizations]\nenabled = true\n\
                 role_arn = \"arn:aws:iam::123456789012:role/iamwatchd-organizations\"\n\
                 refresh = \"5m\"\n"
            ),
            &[],
        )
        .unwrap()
        .accounts;
        let organizations = config.organizations.clone().unwrap();
        assert_eq!(organizations.refresh, Duration::from_secs(300));
        assert_eq!(config.streams, MemberStreams::Iam);
        assert_eq!(config.parents(), ["ou-ab12-cd34ef56"]);
        let under_ou = ["r-ab12".to_owned(), "ou-ab12-cd34ef56".to_owned()];
        assert!(config.selects("111111111111", Some("sandbox"), &under_ou));
        assert!(config.selects("222222222222", Some("prod-payments"), &[]));
        assert!(!config.selects("333333333333", Some("sandbox"), &[]));
        assert!(!config.selects("999988887777", Some("prod-x"), &under_ou));
        assert!(
            !config.selects("444444444444", None, &[]),
            "a nameless account matches no glob"
        );
    }

    #[test]
    fn every_bad_value_is_named_with_its_fix() {
        let found = problems(&format!(
            "{MINIMAL}[accounts]\nids = [\"12345\", \"abc\"]\nmember_role = \"role/with/path\"\n\
             include = [\"ou-sales\", \"\"]\nexternal_id = \"x\"\n[accounts.names]\n\
             \"1234\" = \"short\"\n[accounts.organizations]\nrefresh = \"5s\"\n"
        ));
        for key in [
            "accounts.ids[0]",
            "accounts.ids[1]",
            "accounts.member_role",
            "accounts.include",
            "accounts.include[1]",
            "accounts.external_id",
            "accounts.names.1234",
        ] {
            problem_at(&found, key);
        }
        assert!(problem_at(&found, "accounts.include")
            .message
            .contains("enabled = true"));
        let found = problems(&format!(
            "{MINIMAL}[accounts.organizations]\nenabled = true\nrole_arn = \"arn:aws:iam::1:user/x\"\n\
             refresh = \"5s\"\nrefresh_rate = 1\n"
        ));
        problem_at(&found, "accounts.organizations.role_arn");
        problem_at(&found, "accounts.organizations.refresh");
        assert!(problem_at(&found, "accounts.organizations.refresh_rate")
            .message
            .contains("known keys here: enabled, role_arn, refresh"));
    }

    #[test]
    fn members_may_read_their_listed_streams_less_often_never_more() {
        let load = |text: &str| load_str(&format!("{MINIMAL}{text}"), &[]).unwrap();
        assert_eq!(load("").accounts.listed_interval, LISTED_POLL_INTERVAL);
        let slower = load("[accounts]\nlisted_interval = \"5m\"\n");
        assert_eq!(slower.accounts.listed_interval, Duration::from_secs(300));
        assert!(slower.warnings.is_empty(), "{:?}", slower.warnings);
        let longer_sweeps =
            load("[poller]\nsweep_interval = \"10m\"\n[accounts]\nlisted_interval = \"10m\"\n");
        assert_eq!(
            longer_sweeps.accounts.listed_interval,
            Duration::from_secs(600)
        );
        for (text, bound) in [("30s", "got 30s"), ("6m", "poller.sweep_interval (5m")] {
            let found = problems(&format!(
                "{MINIMAL}[accounts]\nlisted_interval = \"{text}\"\n"
            ));
            let message = &problem_at(&found, "accounts.listed_interval").message;
            assert!(message.contains(bound), "{message}");
            assert!(message.contains("between 1m"), "{message}");
        }
        let unused = load("[accounts]\nstreams = \"iam\"\nlisted_interval = \"5m\"\n");
        assert_eq!(unused.warnings.len(), 1);
        assert!(unused.warnings[0].message.contains("no effect"));
    }

    #[test]
    fn lists_come_from_the_environment_too() {
        let config = load_str(
            MINIMAL,
            &[
                ("IAMWATCHD__ACCOUNTS__IDS", "111122223333, 444455556666"),
                ("IAMWATCHD__ACCOUNTS__ORGANIZATIONS__ENABLED", "true"),
            ],
        )
        .unwrap()
        .accounts;
        assert_eq!(config.ids, ["111122223333", "444455556666"]);
        assert!(config.organizations.is_some());
    }
}
