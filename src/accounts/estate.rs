//! The loop that keeps one poller per watched member account: the accounts wanted (the static
//! list and, refreshed on a schedule, Organizations' list, narrowed by `include` / `exclude`)
//! against the accounts running; a new account is started, one that left (suspended, closed,
//! removed, excluded) is stopped and logged, and one that comes back resumes from its cursors.
//!
//! Each account's task assumes its role first ([`credentials::probe`]); while it cannot, the
//! account is failing: one message per incident (its event ID is kept in the store, so a
//! restart does not repeat it), its state in `/metrics`, a retry with backoff. Once in, the
//! account's poller runs with the SDK's assume-role credentials; should its passes stop
//! succeeding, the role is probed again and a refusal turns into an incident the same way.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{Region, SdkConfig};

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::AccountsConfig;
use super::credentials::{self, Refusal};
use super::discovery::{self, Discovered};
use super::{AccountState, Roster};
use crate::source::cloudtrail::lookup::Reader;
use crate::source::cloudtrail::poller::Poller;
use crate::source::cloudtrail::schedule::Schedule;
use crate::source::cloudtrail::stream::{Counters, Stream};
use crate::source::{AccountProblem, Batch, CursorUpdate, Intake};

/// The AWS actions this file calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// allows them; `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &["sts:GetCallerIdentity"];

/// The first wait after a refused role; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(60);
/// The longest wait between two tries of a refused role.
const RETRY_MAX: Duration = Duration::from_secs(15 * 60);
/// How often a running account's progress is looked at, at most.
const PROGRESS_CHECK: Duration = Duration::from_secs(60);

/// Everything an account's task needs, shared by all of them.
pub(crate) struct Estate<I> {
    /// `[accounts]`.
    pub config: AccountsConfig,
    /// The daemon's own SDK configuration (its credentials assume the member roles).
    pub home: SdkConfig,
    /// STS with the daemon's own credentials: every member role is assumed through it.
    pub sts: aws_sdk_sts::Client,
    /// One CloudTrail client per region of the streams, without credentials: each member's
    /// reader adds the member's ([`member_clients`]).
    pub cloudtrail: HashMap<String, aws_sdk_cloudtrail::Client>,
    /// The streams of the daemon's own account; each member gets the same in its account.
    pub streams: Vec<Stream>,
    /// The LookupEvents budget per account and region.
    pub requests_per_second: f64,
    /// The passes' schedule.
    pub schedule: Schedule,
    /// How old an account's last complete pass may be before its role is probed again.
    pub stale_after: Duration,
    /// Names and states.
    pub roster: Roster,
    /// Where records and account problems go.
    pub intake: Arc<I>,
}

/// An account the estate wants, with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// Its ID.
    pub id: String,
    /// Its name (the configuration's, else Organizations').
    pub name: Option<String>,
}

/// The key of the stored incident of `account`: when its current incident began (the Unix
/// epoch: none).
fn incident_key(account: &str) -> String {
    format!("account-incident:{account}")
}

impl<I: Intake> Estate<I> {
    /// Runs until `cancel` fires.
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let estate = Arc::new(self);
        let home_account = estate.home_account().await;
        let organizations = match &estate.config.organizations {
            Some(org) => Some((
                discovery::client(&estate.home, org.role_arn.as_deref()).await,
                org.refresh,
            )),
            None => None,
        };
        let mut running: HashMap<String, (CancellationToken, JoinHandle<()>)> = HashMap::new();
        let mut listing_failed = false;
        loop {
            let listing = match &organizations {
                Some((client, _)) => {
                    match discovery::list(client, &estate.config.parents()).await {
                        Ok(found) => {
                            if listing_failed {
                                tracing::info!("the organization's accounts can be listed again");
                            }
                            listing_failed = false;
                            Some(found)
                        }
                        Err(error) => {
                            if !listing_failed {
                                tracing::error!(%error, role = ?estate.config.organizations.as_ref()
                                    .and_then(|o| o.role_arn.as_deref()),
                                    "cannot list the organization's accounts; the accounts \
                                     watched so far stay watched (allow organizations:ListAccounts \
                                     to accounts.organizations.role_arn, in the management or a \
                                     delegated-administrator account)");
                            }
                            listing_failed = true;
                            None
                        }
                    }
                }
                None => Some(Vec::new()),
            };
            if let Some(found) = listing {
                let wanted = wanted(&estate.config, &found, home_account.as_deref());
                running.retain(|id, (stop, _)| {
                    if wanted.iter().any(|w| &w.id == id) {
                        return true;
                    }
                    tracing::warn!(account = %estate.roster.display(id),
                        reason = why_dropped(id, &found, organizations.is_some()),
                        "account no longer watched");
                    stop.cancel();
                    estate.roster.remove(id);
                    false
                });
                for account in wanted {
                    if let Some(name) = &account.name {
                        estate.roster.set_name(&account.id, name);
                    }
                    if running.contains_key(&account.id) {
                        continue;
                    }
                    tracing::info!(account = %estate.roster.display(&account.id), "watching account");
                    estate.roster.set_state(&account.id, AccountState::Starting);
                    let stop = cancel.child_token();
                    let task = tokio::spawn(estate.clone().watch(account.id.clone(), stop.clone()));
                    running.insert(account.id, (stop, task));
                }
            }
            let Some((_, refresh)) = &organizations else {
                cancel.cancelled().await;
                break;
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(*refresh) => {}
            }
        }
        for (_, (_, task)) in running {
            let _ = task.await;
        }
    }

    /// The daemon's own account (never assumed into: its own credentials read it), named by
    /// its alias unless the configuration names it (the roster starts with those names).
    async fn home_account(&self) -> Option<String> {
        let sts = aws_sdk_sts::Client::new(&self.home);
        let id = match sts.get_caller_identity().send().await {
            Ok(identity) => identity.account().map(str::to_owned),
            Err(error) => {
                let error = crate::aws::errors::AwsError::read(&error);
                tracing::warn!(%error, "cannot tell the daemon's own account (sts:GetCallerIdentity); \
                    should it be in the list, it is watched through its member role as well");
                None
            }
        }?;
        // The roster already holds the configured names.
        if self.roster.name(&id).is_none() {
            if let Some(alias) = discovery::alias(&self.home).await {
                self.roster.set_name(&id, &alias);
            }
        }
        Some(id)
    }

    /// One account's task: in through its role, then its poller, until `stop`.
    async fn watch(self: Arc<Self>, account: String, stop: CancellationToken) {
        let role_arn = self.config.member_role_arn(&account);
        let external_id = self.config.external_id.as_deref();
        let mut wait = RETRY_FIRST;
        loop {
            // Every call but the poll is boxed: this task lives as long as the account is
            // watched, and would otherwise hold room for the largest of their states all that
            // time (the store's, through the intake, made it 13 KB in a release build).
            match Box::pin(self.get_in(&role_arn, external_id)).await {
                Ok(sdk) => {
                    wait = RETRY_FIRST;
                    Box::pin(self.incident_over(&account)).await;
                    if self.roster.name(&account).is_none() {
                        if let Some(alias) = Box::pin(discovery::alias(&sdk)).await {
                            self.roster.set_name(&account, &alias);
                        }
                    }
                    self.roster.set_state(&account, AccountState::Watched);
                    match self.poll(&account, &sdk, &stop).await {
                        Stopped::Cancelled => return,
                        Stopped::Stale => {
                            tracing::warn!(account = %self.roster.display(&account),
                                "no pass of this account succeeded for {:?}; assuming its role again",
                                self.stale_after);
                            continue;
                        }
                    }
                }
                Err(refusal) => {
                    self.roster
                        .set_state(&account, AccountState::Failing(refusal.error.clone()));
                    if refusal.retryable {
                        tracing::warn!(account = %self.roster.display(&account),
                            error = %refusal.error, "cannot get into the account yet; retrying");
                    } else {
                        Box::pin(self.incident(&account, &role_arn, &refusal)).await;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Assumes the account's role and reads one event with it: the account's SDK
    /// configuration, or why it cannot be read.
    async fn get_in(
        &self,
        role_arn: &str,
        external_id: Option<&str>,
    ) -> Result<SdkConfig, Refusal> {
        let first = credentials::probe(&self.sts, role_arn, external_id).await?;
        let sdk =
            credentials::member_sdk(&self.home, &self.sts, role_arn, external_id, Some(first));
        credentials::readable(&sdk, role_arn).await?;
        Ok(sdk)
    }

    /// Polls `account` with `sdk` until `stop`, or until its passes stopped succeeding.
    async fn poll(&self, account: &str, sdk: &SdkConfig, stop: &CancellationToken) -> Stopped {
        let streams: Vec<Stream> = self
            .streams
            .iter()
            .cloned()
            .map(|mut stream| {
                stream.account = Some(account.to_owned());
                stream
            })
            .collect();
        let readers = self
            .cloudtrail
            .iter()
            .map(|(region, client)| (region.clone(), Reader::member(client.clone(), sdk)))
            .collect();
        let poller = Poller::new(streams, readers, self.requests_per_second, self.schedule);
        let counters = poller.counters();
        self.roster.set_counters(account, counters.clone());
        let polling = stop.child_token();
        let task = tokio::spawn(poller.run(self.intake.clone(), polling.clone()));
        let started = Utc::now();
        let every = (self.stale_after / 3).clamp(Duration::from_secs(1), PROGRESS_CHECK);
        supervise(task, polling, stop, every, || {
            is_stale(&counters, started, Utc::now(), self.stale_after)
        })
        .await
    }

    /// Records (once per incident) that `account` cannot be read.
    async fn incident(&self, account: &str, role_arn: &str, refusal: &Refusal) {
        let key = incident_key(account);
        let stored = self.intake.cursor(&key).await.ok().flatten();
        let since = match stored {
            Some(since) if since > DateTime::UNIX_EPOCH => since,
            _ => {
                let now = Utc::now();
                self.set_incident(&key, now).await;
                now
            }
        };
        let problem = AccountProblem {
            event_id: format!("account:{account}:{}", since.timestamp()),
            account: account.to_owned(),
            name: self.roster.name(account),
            role_arn: role_arn.to_owned(),
            error: refusal.error.clone(),
            fix: refusal.fix.clone(),
            since,
        };
        match self.intake.account_problem(problem).await {
            Ok(true) => tracing::error!(account = %self.roster.display(account), role = role_arn,
                error = %refusal.error, "account not watched: {}", refusal.fix),
            Ok(false) => tracing::debug!(account, "account still not watched"),
            Err(error) => {
                tracing::error!(account, %error, "cannot record that the account is not watched")
            }
        }
    }

    /// The account can be read again: its incident, if any, is over.
    async fn incident_over(&self, account: &str) {
        let key = incident_key(account);
        if let Ok(Some(since)) = self.intake.cursor(&key).await {
            if since > DateTime::UNIX_EPOCH {
                tracing::info!(account = %self.roster.display(account),
                    "account watched again after the incident that began {since}");
                self.set_incident(&key, DateTime::UNIX_EPOCH).await;
            }
        }
    }

    async fn set_incident(&self, key: &str, value: DateTime<Utc>) {
        let batch = Batch {
            records: Vec::new(),
            seen_by: crate::event::SeenBy::Poller,
            pass: None,
            cursor: Some(CursorUpdate {
                key: key.to_owned(),
                value,
            }),
        };
        if let Err(error) = self.intake.accept(batch).await {
            tracing::warn!(key, %error, "cannot record the account's incident");
        }
    }
}

/// The CloudTrail clients every member shares, one per region of `streams`: `home`'s
/// configuration without its credentials, so that a request without a member's fails
/// instead of reading the daemon's own account.
pub(crate) fn member_clients(
    home: &SdkConfig,
    streams: &[Stream],
) -> HashMap<String, aws_sdk_cloudtrail::Client> {
    let mut anonymous = home.to_builder();
    anonymous.set_credentials_provider(None);
    let anonymous = anonymous.build();
    let mut clients = HashMap::new();
    for stream in streams {
        clients.entry(stream.region.clone()).or_insert_with(|| {
            // One attempt per call: the poller retries within its budget itself.
            let config = aws_sdk_cloudtrail::config::Builder::from(&anonymous)
                .region(Region::new(stream.region.clone()))
                .retry_config(RetryConfig::standard().with_max_attempts(1))
                .build();
            aws_sdk_cloudtrail::Client::from_conf(config)
        });
    }
    clients
}

/// The accounts to watch: the static list and the organization's active accounts,
/// narrowed by `include` / `exclude`, without the daemon's own.
pub(crate) fn wanted(
    config: &AccountsConfig,
    found: &[Discovered],
    home: Option<&str>,
) -> Vec<Wanted> {
    let mut wanted: Vec<Wanted> = Vec::new();
    let listed = config.ids.iter().map(|id| {
        let discovered = found.iter().find(|d| &d.id == id);
        (
            id.clone(),
            discovered.and_then(|d| d.name.clone()),
            discovered.map(|d| d.parents.clone()).unwrap_or_default(),
        )
    });
    let discovered = found
        .iter()
        .filter(|d| d.active)
        .map(|d| (d.id.clone(), d.name.clone(), d.parents.clone()));
    for (id, name, parents) in listed.chain(discovered) {
        if Some(id.as_str()) == home || wanted.iter().any(|w| w.id == id) {
            continue;
        }
        let name = config.names.get(&id).cloned().or(name);
        if config.selects(&id, name.as_deref(), &parents) {
            wanted.push(Wanted { id, name });
        }
    }
    wanted
}

/// Why an account's poller stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stopped {
    /// Told to.
    Cancelled,
    /// No pass succeeded for too long (or the poller ended).
    Stale,
}

/// Waits for `task` (a poller stopped by `polling`, a child of `stop`) until `stop` fires,
/// the task ends or `stale` says, looked at `every` so often; then stops the task and waits
/// for it.
async fn supervise(
    mut task: JoinHandle<()>,
    polling: CancellationToken,
    stop: &CancellationToken,
    every: Duration,
    stale: impl Fn() -> bool,
) -> Stopped {
    let mut check = tokio::time::interval(every);
    check.tick().await;
    let (stopped, ended) = loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break (Stopped::Cancelled, false),
            // At shutdown the poller may end before `stop` is seen here.
            _ = &mut task => {
                let stopped = if stop.is_cancelled() { Stopped::Cancelled } else { Stopped::Stale };
                break (stopped, true);
            }
            _ = check.tick() => {
                if stale() {
                    break (Stopped::Stale, false);
                }
            }
        }
    };
    polling.cancel();
    // A finished task's handle must not be awaited again: it panics.
    if !ended {
        let _ = task.await;
    }
    stopped
}

/// Whether an account's last complete pass (or its start, before the first) is older than
/// `stale_after` while passes fail.
fn is_stale(
    counters: &Counters,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
    stale_after: Duration,
) -> bool {
    let last = counters.last_pass_unix_ms.load(Ordering::Relaxed);
    let last = DateTime::from_timestamp_millis(last)
        .filter(|_| last > 0)
        .unwrap_or(started)
        .max(started);
    let age = (now - last).to_std().unwrap_or_default();
    age > stale_after && counters.failed_passes.load(Ordering::Relaxed) > 0
}

/// Why `id`, running, is no longer wanted.
fn why_dropped(id: &str, found: &[Discovered], discovering: bool) -> &'static str {
    match found.iter().find(|d| d.id == id) {
        Some(d) if !d.active => "suspended or closed in the organization",
        Some(_) => "excluded by accounts.include / accounts.exclude",
        None if discovering => "no longer in the organization",
        None => "no longer in accounts.ids",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::config::Selector;
    use aws_credential_types::provider::SharedCredentialsProvider;

    #[tokio::test]
    async fn the_shared_clients_read_with_the_members_credentials_only() {
        // Nothing listens on port 1: a request that gets as far as sending fails to connect.
        let home = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(SharedCredentialsProvider::new(
                aws_credential_types::Credentials::for_tests(),
            ))
            .build();
        let stream = |region: &str, name: &str| Stream {
            account: None,
            region: region.to_owned(),
            lookup: crate::source::cloudtrail::lookup::Lookup::EventName(name.to_owned()),
            poll_interval: Duration::from_secs(10),
        };
        let streams = [
            stream("us-east-1", "CreateUser"),
            stream("eu-west-1", "StopLogging"),
            stream("us-east-1", "DeleteTrail"),
        ];
        let clients = member_clients(&home, &streams);
        let mut regions: Vec<&str> = clients.keys().map(String::as_str).collect();
        regions.sort_unstable();
        assert_eq!(regions, ["eu-west-1", "us-east-1"], "one client per region");

        let client = &clients["us-east-1"];
        let lookup = crate::source::cloudtrail::lookup::Lookup::EventName("CreateUser".into());
        let now = Utc::now();
        let window = crate::source::cloudtrail::lookup::Window {
            start: now - chrono::TimeDelta::hours(1),
            end: now,
        };
        let own = Reader::own(client.clone());
        let error = own.page(&lookup, window, None).await.unwrap_err();
        let shown = format!("{error:?}");
        assert!(
            shown.contains("NoIdentityResolver") && !shown.contains("Connection refused"),
            "without a member's credentials nothing is sent (not even with the daemon's): {shown}"
        );
        let member = Reader::member(client.clone(), &home);
        let error = member.page(&lookup, window, None).await.unwrap_err();
        let shown = format!("{error:?}");
        assert!(
            shown.contains("Connection refused"),
            "signed and sent: {shown}"
        );
    }

    fn found(id: &str, name: &str, active: bool, parents: &[&str]) -> Discovered {
        Discovered {
            id: id.to_owned(),
            name: Some(name.to_owned()),
            active,
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn the_static_list_and_the_active_discovered_accounts_without_our_own() {
        let mut config = AccountsConfig {
            ids: vec!["999900001111".into()],
            member_role: "iamwatchd-member".into(),
            ..AccountsConfig::default()
        };
        config
            .names
            .insert("222200003333".into(), "payments".into());
        let organization = [
            found("123456789012", "management", true, &[]),
            found("222200003333", "prod-payments", true, &["ou-prod-1"]),
            found("444400005555", "suspended", false, &[]),
            found("666600007777", "sandbox", true, &[]),
        ];
        let ids = |wanted: Vec<Wanted>| -> Vec<(String, Option<String>)> {
            wanted.into_iter().map(|w| (w.id, w.name)).collect()
        };
        assert_eq!(
            ids(wanted(&config, &organization, Some("123456789012"))),
            [
                ("999900001111".to_owned(), None),
                ("222200003333".to_owned(), Some("payments".to_owned())),
                ("666600007777".to_owned(), Some("sandbox".to_owned())),
            ]
        );
        config.include = vec![Selector::Parent("ou-prod-1".into())];
        assert_eq!(
            ids(wanted(&config, &organization, Some("123456789012"))),
            [("222200003333".to_owned(), Some("payments".to_owned()))]
        );
        assert_eq!(
            why_dropped("444400005555", &organization, true),
            "suspended or closed in the organization"
        );
        assert_eq!(
            why_dropped("666600007777", &organization, true),
            "excluded by accounts.include / accounts.exclude"
        );
        assert_eq!(
            why_dropped("888800009999", &organization, true),
            "no longer in the organization"
        );
        assert_eq!(
            why_dropped("888800009999", &[], false),
            "no longer in accounts.ids"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_poller_that_ends_is_waited_for_once_whatever_ended_it() {
        let every = Duration::from_secs(60);
        // Shutdown: the poller sees the cancellation before (or as) the supervisor does.
        for _ in 0..20 {
            let stop = CancellationToken::new();
            let polling = stop.child_token();
            let ends = polling.clone();
            let task = tokio::spawn(async move { ends.cancelled().await });
            stop.cancel();
            tokio::task::yield_now().await;
            let stopped = supervise(task, polling, &stop, every, || false).await;
            assert_eq!(stopped, Stopped::Cancelled);
        }
        // The poller ended by itself: stale, so the role is probed again.
        let stop = CancellationToken::new();
        let polling = stop.child_token();
        let task = tokio::spawn(async {});
        assert_eq!(
            supervise(task, polling, &stop, every, || false).await,
            Stopped::Stale
        );
        // Passes stopped succeeding: the running poller is stopped and waited for.
        let polling = stop.child_token();
        let ends = polling.clone();
        let task = tokio::spawn(async move { ends.cancelled().await });
        let looked = std::sync::atomic::AtomicU32::new(0);
        let stale = || looked.fetch_add(1, Ordering::Relaxed) >= 2;
        assert_eq!(
            supervise(task, polling.clone(), &stop, every, stale).await,
            Stopped::Stale
        );
        assert!(polling.is_cancelled());
        assert_eq!(looked.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn an_account_is_stale_only_while_its_passes_fail_for_too_long() {
        let counters = Counters::default();
        let started = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let later = |secs| started + chrono::TimeDelta::seconds(secs);
        let limit = Duration::from_secs(900);
        assert!(
            !is_stale(&counters, started, later(3600), limit),
            "no failure: quiet, not stale"
        );
        counters.failed_passes.store(3, Ordering::Relaxed);
        assert!(!is_stale(&counters, started, later(600), limit));
        assert!(is_stale(&counters, started, later(901), limit));
        counters
            .last_pass_unix_ms
            .store(later(800).timestamp_millis(), Ordering::Relaxed);
        assert!(
            !is_stale(&counters, started, later(1200), limit),
            "a pass 400 s ago"
        );
        assert!(is_stale(&counters, started, later(1701), limit));
    }
}
