//! The analysis of each policy change, before it is judged and rendered: the previous and the
//! new document fetched (the store's snapshots, IAM's managed policy versions) within a time
//! budget, compared, and the snapshots brought up to date. A lookup that fails or runs out of
//! time leaves that side "unknown": the finding is reported all the same, never delayed past
//! the budget and never lost.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use tokio::time::Instant;

use crate::analysis::cross_check::{AccessAnalyzer, CrossCheck, Question};
use crate::analysis::lookup::Iam;
use crate::analysis::{self, Analysis, Side, SnapshotKey, Source, Update, Version};
use crate::event::Record;
use crate::store::{SharedStore, SnapshotWrite};

/// Analyses policy changes; IAM lookups only when it has a client.
#[derive(Clone)]
pub(crate) struct Analyst {
    iam: Option<Arc<Iam>>,
    /// The optional second opinion (`analysis.access_analyzer`).
    access_analyzer: Option<Arc<AccessAnalyzer>>,
    /// Longest wait for one record's IAM lookups.
    lookup_timeout: Duration,
    /// Longest time all lookups of one batch may take together.
    batch_budget: Duration,
    enabled: bool,
}

/// The analyses of one batch (one per record, in order) and the snapshot writes they imply.
pub(crate) struct Analysed {
    pub analyses: Vec<Option<Analysis>>,
    pub writes: Vec<SnapshotWrite>,
}

impl Analyst {
    /// An analyst with no IAM lookups: managed policy versions are "unknown".
    pub(crate) fn offline() -> Analyst {
        Analyst {
            iam: None,
            access_analyzer: None,
            lookup_timeout: Duration::from_secs(5),
            batch_budget: Duration::from_secs(10),
            enabled: true,
        }
    }

    /// An analyst looking managed policies up through `iam`, and asking `access_analyzer`
    /// for a second opinion when there is one.
    pub(crate) fn new(
        iam: Option<Iam>,
        access_analyzer: Option<AccessAnalyzer>,
        config: &analysis::config::AnalysisConfig,
    ) -> Analyst {
        Analyst {
            iam: iam.map(Arc::new),
            access_analyzer: access_analyzer.map(Arc::new),
            lookup_timeout: config.lookup_timeout,
            batch_budget: config.batch_budget,
            enabled: config.enabled,
        }
    }

    /// Whether `record` is a change this analyst would analyse (before knowing whether it was
    /// seen): only those are worth asking the store about.
    pub(crate) fn wants(&self, record: &Record) -> bool {
        self.enabled && analysis::plan(record).is_some()
    }

    /// Analyses every policy change among `records` but those in `seen`, reading snapshots
    /// from `store`.
    pub(crate) async fn analyse(
        &self,
        store: &SharedStore,
        records: &[Record],
        seen: &HashSet<String>,
    ) -> Analysed {
        let mut analysed = Analysed {
            analyses: Vec::with_capacity(records.len()),
            writes: Vec::new(),
        };
        let deadline = Instant::now() + self.batch_budget;
        // Snapshots written earlier in this batch: a second change to the same policy compares
        // with the first one's document, not with the store's older one.
        let mut overlay: HashMap<SnapshotKey, Option<String>> = HashMap::new();
        for record in records {
            let plan = if self.enabled && !seen.contains(&record.event_id) {
                analysis::plan(record)
            } else {
                None
            };
            let Some(plan) = plan else {
                analysed.analyses.push(None);
                continue;
            };
            let fetch = Fetch {
                analyst: self,
                store,
                overlay: &overlay,
                deadline,
            };
            let before = fetch.fetch(&plan.before).await;
            let after = fetch.fetch(&plan.after).await;
            let mut analysis = plan.analyse(&before.side(), &after.side());
            analysis.access_analyzer = fetch.cross_check(plan.kind, &before, &after).await;
            analysed.analyses.push(Some(analysis));
            if record.failed() {
                continue;
            }
            let as_of = record.event_time.unwrap_or_else(Utc::now);
            for update in plan.updates {
                let (key, document) = match update {
                    Update::Put(key, document) => (key, Some(document)),
                    Update::Delete(key) => (key, None),
                };
                overlay.insert(key.clone(), document.clone());
                analysed.writes.push(SnapshotWrite {
                    key,
                    document,
                    as_of,
                    source: "event",
                });
            }
        }
        analysed
    }
}

/// One record's fetches.
struct Fetch<'a> {
    analyst: &'a Analyst,
    store: &'a SharedStore,
    overlay: &'a HashMap<SnapshotKey, Option<String>>,
    deadline: Instant,
}

impl Fetch<'_> {
    async fn snapshot(&self, key: &SnapshotKey) -> Result<Option<String>, String> {
        if let Some(hit) = self.overlay.get(key) {
            return Ok(hit.clone());
        }
        let key = key.clone();
        self.store
            .with(move |store| store.snapshot(&key))
            .await
            .map_err(|e| format!("the store could not be read: {e}"))
    }

    /// `future` within the per-record timeout and what is left of the batch's budget.
    async fn timed<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("the batch's lookup budget was spent".to_owned());
        }
        match tokio::time::timeout(left.min(self.analyst.lookup_timeout), future).await {
            Ok(result) => result,
            Err(_) => Err("the IAM lookup timed out".to_owned()),
        }
    }

    async fn managed(&self, arn: &str, version: &Version) -> Result<Value, String> {
        let Some(iam) = self.analyst.iam.as_deref() else {
            return Err("managed policy versions are not looked up here".to_owned());
        };
        let id = match version {
            Version::Id(id) => id.clone(),
            Version::Default => {
                self.timed(async {
                    iam.default_version(arn)
                        .await
                        .map_err(|m| m.reason().to_owned())
                })
                .await?
            }
            Version::PreviousDefault => {
                let key = SnapshotKey {
                    account: analysis::account_in_arn(arn)
                        .unwrap_or("unknown")
                        .to_owned(),
                    kind: "managed-default",
                    entity: arn.to_owned(),
                    name: String::new(),
                };
                self.snapshot(&key).await?.ok_or_else(|| {
                    "the previous default version is not recorded (`iamwatchd analysis seed` records it)"
                        .to_owned()
                })?
            }
        };
        self.timed(async {
            iam.version(arn, &id)
                .await
                .map_err(|m| m.reason().to_owned())
        })
        .await
    }

    /// One side's document as fetched (the store, the request or IAM).
    async fn fetch(&self, source: &Source) -> Fetched {
        let result = match source {
            Source::Nothing => return Fetched::Nothing,
            Source::Request(value) => return Fetched::Document(value.clone()),
            Source::Snapshot(key) => match self.snapshot(key).await {
                Ok(Some(text)) => return Fetched::Document(Value::String(text)),
                Ok(None) => Err(
                    "no snapshot of it was recorded (`iamwatchd analysis seed` records one)"
                        .to_owned(),
                ),
                Err(e) => Err(e),
            },
            Source::Managed { arn, version } => self.managed(arn, version).await,
            Source::BoundaryOf(key) => match self.snapshot(key).await {
                Ok(Some(arn)) => self.managed(&arn, &Version::Default).await,
                Ok(None) => Err(
                    "no boundary of it was recorded (`iamwatchd analysis seed` records them)"
                        .to_owned(),
                ),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(document) => Fetched::Document(document),
            Err(why) => Fetched::Unknown(why),
        }
    }

    /// Access Analyzer's answer on the change, when it is to be asked and there is a question
    /// it can answer; within the same time budget as the lookups.
    async fn cross_check(
        &self,
        kind: analysis::Kind,
        before: &Fetched,
        after: &Fetched,
    ) -> Option<CrossCheck> {
        let checker = self.analyst.access_analyzer.as_deref()?;
        let question = Question::for_change(kind, before.known(), after.document())?;
        let asked = self.timed(async { Ok(checker.ask(&question).await) }).await;
        Some(asked.unwrap_or_else(|why| CrossCheck::timed_out(question.check(), &why)))
    }
}

/// One side as fetched, before it is read as a policy.
enum Fetched {
    /// No policy (not yet, or no longer).
    Nothing,
    /// The document as it came (JSON, or a string of JSON or URL-encoded JSON).
    Document(Value),
    /// Not known, and why.
    Unknown(String),
}

impl Fetched {
    fn side(&self) -> Side {
        match self {
            Fetched::Nothing => Side::Nothing,
            Fetched::Document(value) => analysis::side_of(value),
            Fetched::Unknown(why) => Side::Unknown(why.clone()),
        }
    }

    fn document(&self) -> Option<&Value> {
        match self {
            Fetched::Document(value) => Some(value),
            _ => None,
        }
    }

    /// `None` when unknown; `Some(None)` when there was no policy.
    fn known(&self) -> Option<Option<&Value>> {
        match self {
            Fetched::Nothing => Some(None),
            Fetched::Document(value) => Some(Some(value)),
            Fetched::Unknown(_) => None,
        }
    }
}

/// What a seed did, for the log and `iamwatchd analysis seed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeedReport {
    /// Snapshots recorded.
    pub snapshots: usize,
    /// IAM requests made.
    pub requests: u32,
    /// Whether every page was read within the request budget.
    pub complete: bool,
    /// The accounts seen in the ARNs.
    pub accounts: Vec<String>,
}

/// Seeds the store's snapshots from IAM (`GetAccountAuthorizationDetails`, paged, within
/// `config`'s request budget). What an event recorded later than the seed's read wins.
///
/// The seed is dated by the whole second its read began ([`seed_time`]): CloudTrail's
/// `eventTime` has whole seconds, so a change made in the second the read began (or while it
/// ran) is dated no later than the read, and dated at the read's fraction of a second the
/// seed's older document would win over it. An event's document is never older than what the
/// seed read before it, so the event wins a tie.
pub(crate) async fn seed(
    store: &SharedStore,
    client: &aws_sdk_iam::Client,
    config: &analysis::config::AnalysisConfig,
) -> Result<SeedReport, String> {
    let read_at = seed_time(Utc::now());
    let seeded = analysis::seed::read(
        client,
        config.seed_requests_per_second,
        config.seed_max_requests,
    )
    .await
    .map_err(|e| format!("GetAccountAuthorizationDetails failed: {e}"))?;
    let mut accounts: Vec<String> = seeded
        .snapshots
        .iter()
        .map(|(k, _)| k.account.clone())
        .collect();
    accounts.sort();
    accounts.dedup();
    let writes: Vec<SnapshotWrite> = seeded
        .snapshots
        .into_iter()
        .map(|(key, document)| SnapshotWrite {
            key,
            document: Some(document),
            as_of: read_at,
            source: "seed",
        })
        .collect();
    let report = SeedReport {
        snapshots: writes.len(),
        requests: seeded.requests,
        complete: seeded.complete,
        accounts: accounts.clone(),
    };
    let complete = seeded.complete;
    store
        .with(move |store| {
            let marker = accounts.first().map(String::as_str).unwrap_or("unknown");
            store.write_snapshots(&writes, Some((marker, complete)), read_at)?;
            for account in accounts.iter().skip(1) {
                store.write_snapshots(&[], Some((account, complete)), read_at)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| format!("the store could not record the seed: {e}"))?;
    Ok(report)
}

/// When a seed that began reading at `now` is dated: the start of that second.
fn seed_time(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::open;

    #[test]
    fn a_change_in_the_second_the_seed_began_wins_over_the_seed() {
        // Found by the analysis end-to-end test under load: the seed read at 14:31:41.300, a
        // PutRolePolicy at 14:31:41.5 (eventTime 14:31:41) was dropped as older, and the next
        // change to the policy was compared with the seed's document.
        let began = DateTime::parse_from_rfc3339("2026-12-02T14:31:41.300Z")
            .unwrap()
            .with_timezone(&Utc);
        let event_time = DateTime::parse_from_rfc3339("2026-12-02T14:31:41Z")
            .unwrap()
            .with_timezone(&Utc);
        let key = SnapshotKey {
            account: "123456789012".into(),
            kind: "role-policy",
            entity: "app".into(),
            name: "base".into(),
        };
        let write = |document: &str, as_of, source| SnapshotWrite {
            key: key.clone(),
            document: Some(document.to_owned()),
            as_of,
            source,
        };
        let (_dir, mut store) = open();
        let seeded = seed_time(began);
        store
            .write_snapshots(
                &[write("seeded", seeded, "seed")],
                Some(("123456789012", true)),
                seeded,
            )
            .unwrap();
        store
            .write_snapshots(&[write("changed", event_time, "event")], None, event_time)
            .unwrap();
        assert_eq!(store.snapshot(&key).unwrap().as_deref(), Some("changed"));
    }
}
