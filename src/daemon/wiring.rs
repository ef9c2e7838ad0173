//! The daemon's parts, each built from its section of the configuration: the store, the
//! notifiers, the reporter they share, the poller with its streams and clients, the alarm
//! path, the periodic jobs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::DaemonError;
use crate::accounts::config::MemberStreams;
use crate::accounts::estate::{member_clients, Estate};
use crate::accounts::Roster;
use crate::analysis::cross_check::AccessAnalyzer;
use crate::analysis::lookup::Iam;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::{registry, Notifier};
use crate::pipeline::analyst::{self, Analyst};
use crate::pipeline::housekeeping::Housekeeping;
use crate::pipeline::Reporter;
use crate::rules::{self, Recorded};
use crate::source::alarm::AlarmPath;
use crate::source::cloudtrail::lookup::{Lookup, Reader};
use crate::source::cloudtrail::poller::Poller;
use crate::source::cloudtrail::stream::{Counters, Stream};
use crate::source::cloudtrail::LISTED_POLL_INTERVAL;
use crate::store::{SharedStore, Store, StoreError};

/// How often a daemon whose store opens read-only tries again.
const READ_ONLY_RETRY: Duration = Duration::from_secs(5);

/// Opens the store with `open`, waiting while it opens read-only ([`StoreError::ReadOnly`]:
/// a host that came up with its disk read-only) and saying so once a minute, rather than
/// exiting into a restart loop; nothing can be reported without recording it, and the daemon
/// carries on by itself once the disk is writable. Every other error is returned at once.
async fn open_when_writable(
    mut open: impl FnMut() -> Result<Store, StoreError>,
) -> Result<Store, StoreError> {
    let mut attempts = 0u32;
    loop {
        match open() {
            Err(error @ StoreError::ReadOnly { .. }) => {
                if attempts.is_multiple_of(12) {
                    tracing::error!(%error, "waiting for the state database to be writable");
                }
                attempts += 1;
                tokio::time::sleep(READ_ONLY_RETRY).await;
            }
            other => {
                if attempts > 0 && other.is_ok() {
                    tracing::info!("the state database is writable again");
                }
                return other;
            }
        }
    }
}

/// What `run` and `scan --notify` share: the store, the notifiers and the reporter that
/// queues for them.
pub(crate) struct Parts {
    pub(crate) store: SharedStore,
    pub(crate) notifiers: Vec<Arc<dyn Notifier>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) reporter: Reporter,
    /// The IAM client the analysis reads managed policies and the seed with.
    pub(crate) iam: aws_sdk_iam::Client,
    /// Every watched account's name, and the members' states.
    pub(crate) roster: Roster,
}

impl Parts {
    /// Opens the store and builds the notifiers and the reporter; `counters` are the poller's
    /// (fresh ones where nothing polls).
    pub(crate) async fn build(
        config: &Config,
        counters: Arc<Counters>,
    ) -> Result<Parts, DaemonError> {
        let dir = &config.store.state_directory;
        let store = SharedStore::new(open_when_writable(|| Store::open(dir)).await?);
        let notifiers = registry::build(config.notifiers()).await?;
        let names: Vec<String> = notifiers.iter().map(|n| n.name().to_owned()).collect();
        let roster = Roster::default();
        for (account, name) in &config.accounts.names {
            roster.set_name(account, name);
        }
        let metrics = Arc::new(
            Metrics::new(counters, &names, config.poller.health_max_age())
                .with_roster(roster.clone()),
        );
        let wake = Arc::new(Notify::new());
        let iam = iam_client(config).await;
        let analyst = Analyst::new(
            Some(Iam::new(iam.clone())),
            access_analyzer(config).await,
            &config.analysis,
        );
        let reporter = Reporter::new(
            store.clone(),
            config.rules.clone(),
            config.notifiers().outlets(),
            wake.clone(),
            metrics.clone(),
        )
        .with_analyst(analyst)
        .with_roster(roster.clone());
        Ok(Parts {
            store,
            notifiers,
            metrics,
            wake,
            reporter,
            iam,
            roster,
        })
    }
}

/// The IAM client (IAM is global: its endpoint is in the configured region's partition).
pub(crate) async fn iam_client(config: &Config) -> aws_sdk_iam::Client {
    let sdk = crate::aws::loader(&config.aws.region, config.aws.max_attempts)
        .load()
        .await;
    aws_sdk_iam::Client::new(&sdk)
}

/// IAM Access Analyzer, when `analysis.access_analyzer` asks for its second opinion (in the
/// configured region: its policy checks are regional and read no account data).
async fn access_analyzer(config: &Config) -> Option<AccessAnalyzer> {
    if !config.analysis.enabled || !config.analysis.access_analyzer {
        return None;
    }
    let sdk = crate::aws::loader(&config.aws.region, config.aws.max_attempts)
        .load()
        .await;
    Some(AccessAnalyzer::new(aws_sdk_accessanalyzer::Client::new(
        &sdk,
    )))
}

/// On the first start (no seed recorded) and when `analysis.seed_on_start` is set, seeds the
/// policy snapshots in the background: the poller never waits for it.
pub(crate) fn seed_on_first_start(config: &Config, store: SharedStore, iam: aws_sdk_iam::Client) {
    if !config.analysis.enabled || !config.analysis.seed_on_start {
        return;
    }
    let analysis = config.analysis.clone();
    tokio::spawn(async move {
        match store.with(|s| s.any_seed()).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot tell whether the policy snapshots were seeded");
                return;
            }
        }
        match analyst::seed(&store, &iam, &analysis).await {
            Ok(report) => tracing::info!(snapshots = report.snapshots, requests = report.requests,
                complete = report.complete, accounts = ?report.accounts,
                "seeded the policy snapshots from IAM"),
            Err(error) => tracing::warn!(%error, "could not seed the policy snapshots: changes to \
                inline and trust policies say \"previous version unknown\" until each has changed \
                once; `iamwatchd analysis seed` retries (it needs iam:GetAccountAuthorizationDetails)"),
        }
    });
}

/// The poller: IAM in the configured region (us-east-1), and each group of the catalogue where
/// CloudTrail records it, with one CloudTrail client per region.
pub(crate) async fn poller(config: &Config) -> Poller {
    let streams = streams(config);
    let mut clients = HashMap::new();
    for stream in &streams {
        if !clients.contains_key(&stream.region) {
            // One attempt per call: the poller retries within its budget itself.
            let sdk = crate::aws::loader(&stream.region, 1).load().await;
            let client = aws_sdk_cloudtrail::Client::new(&sdk);
            clients.insert(stream.region.clone(), Reader::own(client));
        }
    }
    Poller::new(
        streams,
        clients,
        config.poller.requests_per_second,
        config.poller.schedule(),
    )
}

/// The member accounts' pollers, when `[accounts]` lists or discovers any: each account gets
/// the daemon's own streams, in its account, with its own budgets.
pub(crate) async fn estate(
    config: &Config,
    roster: Roster,
    reporter: Reporter,
) -> Option<Estate<Reporter>> {
    if !config.accounts.any() {
        return None;
    }
    let home = crate::aws::loader(&config.aws.region, config.aws.max_attempts)
        .load()
        .await;
    let streams = member_streams(config);
    Some(Estate {
        config: config.accounts.clone(),
        sts: aws_sdk_sts::Client::new(&home),
        cloudtrail: member_clients(&home, &streams),
        home,
        streams,
        requests_per_second: config.poller.requests_per_second,
        schedule: config.poller.schedule(),
        stale_after: config.poller.health_max_age(),
        roster,
        intake: Arc::new(reporter),
    })
}

/// The regions where CloudTrail records what a group lists.
fn regions(config: &Config, recorded: Recorded) -> Vec<String> {
    let us_east_1 = || crate::aws::IAM_EVENTS_REGION.to_owned();
    match recorded {
        Recorded::UsEast1 => vec![us_east_1()],
        Recorded::IdentityCenter => vec![config.aws.identity_center_region.clone()],
        Recorded::Watched => config.aws.tampering_regions.clone(),
        Recorded::UsEast1AndWatched => std::iter::once(us_east_1())
            .chain(config.aws.tampering_regions.iter().cloned())
            .collect(),
    }
}

/// The poller's streams, most urgent first in each region: IAM, then the catalogue's groups in
/// their order, each lookup once per region.
fn streams(config: &Config) -> Vec<Stream> {
    let mut streams = vec![Stream {
        account: None,
        region: config.aws.region.clone(),
        lookup: Lookup::EventSource(rules::IAM_EVENT_SOURCE.to_owned()),
        poll_interval: config.poller.poll_interval,
    }];
    for group in rules::GROUPS {
        for region in regions(config, group.recorded) {
            for lookup in Lookup::of_group(group) {
                let stream = Stream {
                    account: None,
                    region: region.clone(),
                    lookup,
                    poll_interval: config.poller.poll_interval.max(LISTED_POLL_INTERVAL),
                };
                if !streams.contains(&stream) {
                    streams.push(stream);
                }
            }
        }
    }
    streams
}

/// What each member account reads: the daemon's own streams (only IAM with `streams = "iam"`),
/// the listed ones at `accounts.listed_interval`.
fn member_streams(config: &Config) -> Vec<Stream> {
    let mut streams = streams(config);
    if config.accounts.streams == MemberStreams::Iam {
        streams.truncate(1);
    }
    for listed in streams.iter_mut().skip(1) {
        listed.poll_interval = listed.poll_interval.max(config.accounts.listed_interval);
    }
    streams
}

/// The alarm path's SQS consumer, when `alarm.queue_url` is set. The queue's region is read
/// from its URL (`https://sqs.<region>.amazonaws.com/...`), the log group is read in
/// `aws.region`.
pub(crate) async fn alarm_path(config: &Config, reporter: Reporter) -> Option<AlarmPath<Reporter>> {
    let queue_url = config.alarm.queue_url.clone()?;
    let log_group = config.alarm.log_group.clone()?;
    let queue_region = crate::aws::arn::queue_url_region(&queue_url).unwrap_or(&config.aws.region);
    let sqs_sdk = crate::aws::loader(queue_region, config.aws.max_attempts)
        .load()
        .await;
    let logs_sdk = crate::aws::loader(&config.aws.region, config.aws.max_attempts)
        .load()
        .await;
    Some(AlarmPath::new(
        aws_sdk_sqs::Client::new(&sqs_sdk),
        queue_url,
        aws_sdk_cloudwatchlogs::Client::new(&logs_sdk),
        log_group,
        config.aws.region.clone(),
        config.alarm.lookback_margin,
        Arc::new(reporter),
    ))
}

/// The periodic jobs `config` asks for.
pub(crate) fn housekeeping(config: &Config) -> Housekeeping {
    Housekeeping {
        max_age: config.delivery.max_age,
        retention: config.store.retention,
        alarm_health: config
            .alarm
            .queue_url
            .is_some()
            .then_some((config.alarm.confirm_within, config.alarm.health_messages)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{load_str, MINIMAL};

    #[tokio::test(start_paused = true)]
    async fn a_read_only_store_is_waited_for_other_errors_are_not() {
        // Found by the soak (scripts/soak): refusing a read-only store at start must not turn
        // into a restart loop; the daemon waits and carries on once the disk is writable.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iamwatchd.sqlite3");
        let mut refusals = 3;
        let started = tokio::time::Instant::now();
        let store = open_when_writable(|| {
            if refusals > 0 {
                refusals -= 1;
                return Err(StoreError::ReadOnly { path: path.clone() });
            }
            Store::open(dir.path())
        })
        .await
        .expect("opened once writable");
        assert_eq!(store.path(), path);
        assert_eq!(started.elapsed(), READ_ONLY_RETRY * 3);

        let missing = dir.path().join("missing");
        let err = open_when_writable(|| Store::open(&missing))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::MissingDir { .. }), "{err:?}");
    }

    fn labels(streams: &[Stream], region: &str) -> Vec<String> {
        streams
            .iter()
            .filter(|s| s.region == region)
            .map(|s| s.lookup.label())
            .collect()
    }

    #[test]
    fn iam_comes_first_and_every_group_is_read_where_cloudtrail_records_it() {
        let config = load_str(
            &format!(
                "{MINIMAL}[aws]\ntampering_regions = [\"us-east-1\", \"eu-west-1\"]\n\
                 [identity_center]\nregion = \"eu-central-1\"\n"
            ),
            &[],
        )
        .unwrap();
        let streams = streams(&config);
        assert_eq!(streams[0].lookup.label(), "EventSource=iam.amazonaws.com");
        assert_eq!(streams[0].poll_interval, config.poller.poll_interval);
        assert!(streams[1..]
            .iter()
            .all(|s| s.poll_interval == LISTED_POLL_INTERVAL));
        let us = labels(&streams, "us-east-1");
        let eu = labels(&streams, "eu-west-1");
        let identity_center = labels(&streams, "eu-central-1");
        for label in [
            "EventName=StopLogging",
            "EventName=DeleteFlowLogs",
            "EventSource=guardduty.amazonaws.com",
            "EventSource=config.amazonaws.com",
            "Username=root",
            "EventSource=signin.amazonaws.com",
        ] {
            assert!(
                us.contains(&label.to_owned()) && eu.contains(&label.to_owned()),
                "{label}"
            );
        }
        assert!(us.contains(&"EventSource=organizations.amazonaws.com".to_owned()));
        assert!(!eu.contains(&"EventSource=organizations.amazonaws.com".to_owned()));
        assert_eq!(
            identity_center,
            [
                "EventSource=sso.amazonaws.com",
                "EventSource=sso-directory.amazonaws.com",
                "EventSource=identitystore.amazonaws.com"
            ]
        );
        // The README's cost: 1 IAM stream and 40 listed ones in us-east-1 by default.
        let default = streams_of_default();
        assert_eq!(default.len(), 41, "{:?}", labels(&default, "us-east-1"));
    }

    fn streams_of_default() -> Vec<Stream> {
        streams(&load_str(MINIMAL, &[]).unwrap())
    }

    #[test]
    fn members_read_the_same_streams_and_the_listed_ones_at_their_own_pace() {
        let members = |accounts: &str| {
            member_streams(&load_str(&format!("{MINIMAL}[accounts]\n{accounts}"), &[]).unwrap())
        };
        assert_eq!(members(""), streams_of_default());
        let slower = members("listed_interval = \"5m\"\n");
        assert_eq!(slower.len(), 41);
        assert_eq!(
            slower[0].poll_interval,
            Duration::from_secs(10),
            "IAM keeps its pace"
        );
        assert!(slower[1..]
            .iter()
            .all(|s| s.poll_interval == Duration::from_secs(300)));
        let iam = members("streams = \"iam\"\nlisted_interval = \"5m\"\n");
        assert_eq!(iam, streams_of_default()[..1]);
    }
}
