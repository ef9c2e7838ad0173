//! The accounts a daemon watches besides its own: which ones ([`config`], [`discovery`]
//! through AWS Organizations), how it gets into each ([`credentials`]: AssumeRole into the
//! member role, cached and refreshed by the SDK), and the loop that keeps one poller per
//! account running as accounts come and go ([`estate`]).
//!
//! Each member account's CloudTrail event history holds its own management events whatever
//! the organization trail does, and LookupEvents' 2 requests/s limit is per account and
//! region, so each account gets its own poller with its own budgets, cursors and sweeps
//! (the [`crate::source::cloudtrail`] poller, unchanged, with the account's clients). A
//! failure is per account and loud: one message per account and incident, a metric, a
//! `check` line; every other account goes on.
//!
//! The [`Roster`] is what the rest of the daemon sees: each account's name (for subjects and
//! bodies: the configured name, else Organizations', else the IAM alias, else the ID) and each
//! member's state and counters (for `/metrics`).

pub mod config;
pub(crate) mod credentials;
pub(crate) mod discovery;
pub(crate) mod estate;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::source::cloudtrail::stream::Counters;

/// An account as logs and `check` show it: `111122223333 (prod-payments)`, or the ID alone.
pub(crate) fn shown(account: &str, name: Option<&str>) -> String {
    match name {
        Some(name) if name != account => format!("{account} ({name})"),
        _ => account.to_owned(),
    }
}

/// Where a member account stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountState {
    /// Its role is being assumed for the first time.
    Starting,
    /// Its event history is being read.
    Watched,
    /// Its role cannot be assumed: what AWS said.
    Failing(String),
}

/// One member account as the metrics see it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Where it stands.
    pub state: AccountState,
    /// Its poller's counters, once it polls.
    pub counters: Option<Arc<Counters>>,
}

#[derive(Debug, Default)]
struct Inner {
    names: BTreeMap<String, String>,
    members: BTreeMap<String, Member>,
}

/// Every watched account's name and every member's state, shared by the estate (which writes
/// it), the reporter (names in messages) and the metrics.
#[derive(Debug, Clone, Default)]
pub struct Roster(Arc<Mutex<Inner>>);

impl Roster {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The name of `account`, when one is known.
    pub fn name(&self, account: &str) -> Option<String> {
        self.inner().names.get(account).cloned()
    }

    /// Names `account` (an empty name is ignored).
    pub fn set_name(&self, account: &str, name: &str) {
        if !name.trim().is_empty() {
            self.inner()
                .names
                .insert(account.to_owned(), name.trim().to_owned());
        }
    }

    /// `account` as messages show it: `111122223333 (prod-payments)`, or the ID alone.
    pub fn display(&self, account: &str) -> String {
        shown(account, self.name(account).as_deref())
    }

    /// Sets where member `account` stands.
    pub(crate) fn set_state(&self, account: &str, state: AccountState) {
        let mut inner = self.inner();
        let member = inner.members.entry(account.to_owned()).or_insert(Member {
            state: AccountState::Starting,
            counters: None,
        });
        member.state = state;
    }

    /// Member `account` polls with `counters`.
    pub(crate) fn set_counters(&self, account: &str, counters: Arc<Counters>) {
        let mut inner = self.inner();
        if let Some(member) = inner.members.get_mut(account) {
            member.counters = Some(counters);
        }
    }

    /// Member `account` is no longer watched.
    pub(crate) fn remove(&self, account: &str) {
        self.inner().members.remove(account);
    }

    /// The members, by ID, with their names.
    pub fn members(&self) -> Vec<(String, Option<String>, Member)> {
        let inner = self.inner();
        inner
            .members
            .iter()
            .map(|(id, member)| (id.clone(), inner.names.get(id).cloned(), member.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_show_beside_the_id_and_members_keep_their_state() {
        let roster = Roster::default();
        assert_eq!(roster.display("111122223333"), "111122223333");
        roster.set_name("111122223333", "prod-payments");
        roster.set_name("444455556666", "  ");
        assert_eq!(
            roster.display("111122223333"),
            "111122223333 (prod-payments)"
        );
        assert_eq!(roster.display("444455556666"), "444455556666");
        roster.set_state("111122223333", AccountState::Failing("AccessDenied".into()));
        roster.set_counters("111122223333", Arc::new(Counters::default()));
        let members = roster.members();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].1.as_deref(), Some("prod-payments"));
        assert!(members[0].2.counters.is_some());
        roster.remove("111122223333");
        assert!(roster.members().is_empty());
        assert_eq!(
            roster.name("111122223333").as_deref(),
            Some("prod-payments")
        );
    }
}
