//! The LookupEvents reader against the emulator: pagination, read filtering, throttling, faults.

use chrono::{TimeDelta, Utc};
use iamwatchd::source::cloudtrail::budget::Budget;
use iamwatchd::source::cloudtrail::lookup::{fetch_window, Lookup, LookupError, Reader, Window};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::emulator::{Emulator, Options};

/// `count` IAM records a second apart, every third one a read, newest last.
fn iam_records(count: usize) -> Vec<serde_json::Value> {
    let now = Utc::now();
    (0..count)
        .map(|i| {
            let read = i % 3 == 0;
            json!({
                "eventID": format!("event-{i:04}"),
                "eventName": if read { "GetUser" } else { "CreateUser" },
                "eventSource": "iam.amazonaws.com",
                "eventTime": (now - TimeDelta::seconds((count - i) as i64)).to_rfc3339(),
                "readOnly": read,
                "awsRegion": "us-east-1",
                "recipientAccountId": "123456789012",
                "requestParameters": {"userName": format!("user-{i}")},
            })
        })
        .collect()
}

fn inject(emulator: &Emulator, records: &[serde_json::Value]) {
    let (status, answer) =
        emulator.control("POST", "events", &serde_json::to_string(records).unwrap());
    assert_eq!(status, 200, "{answer}");
}

fn last_hour() -> Window {
    let now = Utc::now();
    Window {
        start: now - TimeDelta::hours(1),
        end: now + TimeDelta::seconds(1),
    }
}

async fn client(emulator: &Emulator) -> aws_sdk_cloudtrail::Client {
    aws_sdk_cloudtrail::Client::new(&emulator.sdk_config().await)
}

fn iam() -> Lookup {
    Lookup::EventSource("iam.amazonaws.com".into())
}

/// Reads the last hour of IAM events within `budget`.
async fn read_last_hour(
    trail: &aws_sdk_cloudtrail::Client,
    budget: &Budget,
    cancel: &CancellationToken,
) -> Result<iamwatchd::source::cloudtrail::lookup::Fetched, LookupError> {
    let reader = Reader::own(trail.clone());
    fetch_window(&reader, "us-east-1", budget, &iam(), last_hour(), cancel).await
}

#[tokio::test]
async fn a_window_is_read_across_pages_with_reads_dropped_oldest_first() {
    let emulator = Emulator::start();
    inject(&emulator, &iam_records(120));
    let fetched = read_last_hour(
        &client(&emulator).await,
        &Budget::new(2.0),
        &CancellationToken::new(),
    )
    .await
    .expect("window read");
    assert_eq!(fetched.stats.pages, 3, "120 events in pages of 50");
    assert_eq!(fetched.stats.events, 120);
    assert_eq!(fetched.stats.reads_dropped, 40);
    let ids: Vec<_> = fetched.records.iter().map(|r| r.event_id.clone()).collect();
    let expected: Vec<_> = (0..120)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("event-{i:04}"))
        .collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn throttling_by_the_api_limit_loses_nothing() {
    // The emulator enforces AWS's 2 requests/s; a second reader spends part of the budget too.
    let emulator = Emulator::start_with(Options {
        lookup_rate: 2.0,
        ..Options::default()
    });
    inject(&emulator, &iam_records(300));
    let trail = client(&emulator).await;
    let budget = Budget::new(2.0);
    let competitor = {
        let trail = trail.clone();
        tokio::spawn(async move {
            for _ in 0..6 {
                let _ = trail.lookup_events().max_results(1).send().await;
            }
        })
    };
    let fetched = read_last_hour(&trail, &budget, &CancellationToken::new())
        .await
        .expect("window read despite throttling");
    competitor.await.unwrap();
    assert_eq!(fetched.records.len(), 200);
    assert_eq!(fetched.stats.pages, 6);
}

#[tokio::test]
async fn transient_failures_are_retried_and_persistent_ones_reported() {
    let emulator = Emulator::start();
    inject(&emulator, &iam_records(10));
    let trail = client(&emulator).await;
    let budget = Budget::new(2.0);
    let cancel = CancellationToken::new();

    emulator.control(
        "POST",
        "faults",
        r#"{"services": ["cloudtrail"], "fail_next": 2}"#,
    );
    let fetched = read_last_hour(&trail, &budget, &cancel)
        .await
        .expect("recovers after two failures");
    assert_eq!(fetched.records.len(), 6);

    emulator.control(
        "POST",
        "faults",
        r#"{"services": ["cloudtrail"], "fail_next": 100}"#,
    );
    let error = read_last_hour(&trail, &budget, &cancel)
        .await
        .expect_err("gives up");
    assert!(
        matches!(error, LookupError::Unavailable { attempts: 5, .. }),
        "{error}"
    );
}

/// The answers that used to end a pass: `RequestLimitExceeded` (throttling by another
/// name), `RequestTimeout`, and a 5xx without an error code (a load balancer's page). Each is
/// backed off and the same page read again: every record arrives, none twice.
#[tokio::test]
async fn request_limits_timeouts_and_bare_5xx_are_retried_without_losing_a_page() {
    let emulator = Emulator::start();
    inject(&emulator, &iam_records(120));
    let trail = client(&emulator).await;
    let budget = Budget::new(2.0);
    let cancel = CancellationToken::new();
    let clean = read_last_hour(&trail, &budget, &cancel).await.unwrap();
    assert!(clean.stats.pages >= 2, "{:?}", clean.stats);
    for (code, status) in [
        ("RequestLimitExceeded", 400),
        ("RequestTimeout", 408),
        ("", 502),
    ] {
        let failed_before = emulator.counter("faults_failed");
        emulator.control(
            "POST",
            "faults",
            &json!({"services": ["cloudtrail"], "fail_next": 2, "fail_code": code,
                    "fail_status": status})
            .to_string(),
        );
        let fetched = read_last_hour(&trail, &budget, &cancel)
            .await
            .unwrap_or_else(|e| panic!("{code:?} {status}: {e}"));
        assert_eq!(
            emulator.counter("faults_failed"),
            failed_before + 2,
            "{code:?}"
        );
        let ids: Vec<_> = fetched.records.iter().map(|r| r.event_id.clone()).collect();
        let expected: Vec<_> = clean.records.iter().map(|r| r.event_id.clone()).collect();
        assert_eq!(
            ids, expected,
            "{code:?} {status}: the same records, in order"
        );
        if code == "RequestLimitExceeded" {
            assert_eq!(fetched.stats.throttled, 2, "counted as throttling");
        }
    }
}

#[tokio::test]
async fn cancellation_stops_a_pass_waiting_for_its_budget() {
    let emulator = Emulator::start();
    let budget = Budget::new(0.01); // one request per 100 s: the second page would wait long
    inject(&emulator, &iam_records(80));
    let cancel = CancellationToken::new();
    let trail = client(&emulator).await;
    let pass = read_last_hour(&trail, &budget, &cancel);
    let stopper = async {
        // Cancel once the first request has been answered (the emulator counts it).
        while emulator.counter("lookup_events_calls") == 0 {
            tokio::task::yield_now().await;
        }
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(pass, stopper);
    assert!(matches!(result, Err(LookupError::Cancelled)));
}

mod streams {
    //! The poller's schedule end to end: fast passes, sweeps for late arrivals, restarts.

    use std::collections::{HashMap, HashSet};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use chrono::{DateTime, TimeDelta, Utc};
    use iamwatchd::source::cloudtrail::lookup::{Lookup, Reader};
    use iamwatchd::source::cloudtrail::poller::Poller;
    use iamwatchd::source::cloudtrail::schedule::Schedule;
    use iamwatchd::source::cloudtrail::stream::Stream;
    use iamwatchd::source::{
        Accepted, AccountProblem, Batch, EmptyAlarm, Intake, IntakeError, Pass,
    };
    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    use super::inject;
    use crate::emulator::Emulator;

    /// A store in memory: seen eventIDs (with the pass that saw them first) and cursors.
    #[derive(Default)]
    struct MemoryIntake {
        seen: Mutex<HashMap<String, Pass>>,
        cursors: Mutex<HashMap<String, DateTime<Utc>>>,
        duplicates: Mutex<usize>,
    }

    impl Intake for MemoryIntake {
        async fn cursor(&self, key: &str) -> Result<Option<DateTime<Utc>>, IntakeError> {
            Ok(self.cursors.lock().unwrap().get(key).copied())
        }

        async fn accept(&self, batch: Batch) -> Result<Accepted, IntakeError> {
            let pass = batch.pass.expect("the poller says which pass read a batch");
            let mut seen = self.seen.lock().unwrap();
            let mut accepted = Accepted::default();
            for record in batch.records {
                if seen.insert(record.event_id, pass).is_none() {
                    accepted.new += 1;
                } else {
                    accepted.duplicate += 1;
                }
            }
            *self.duplicates.lock().unwrap() += accepted.duplicate;
            if let Some(update) = batch.cursor {
                self.cursors
                    .lock()
                    .unwrap()
                    .insert(update.key, update.value);
            }
            Ok(accepted)
        }

        async fn empty_alarm(&self, alarm: EmptyAlarm) -> Result<bool, IntakeError> {
            unreachable!("the poller reports no alarms: {alarm:?}")
        }

        async fn account_problem(&self, problem: AccountProblem) -> Result<bool, IntakeError> {
            unreachable!("the poller reports no account problems: {problem:?}")
        }
    }

    fn schedule() -> Schedule {
        Schedule {
            poll_interval: Duration::from_millis(100),
            fast_window: Duration::from_secs(2),
            sweep_interval: Duration::from_millis(500),
            sweep_horizon: Duration::from_secs(60),
            start_from: Duration::from_secs(600),
        }
    }

    async fn poller(emulator: &Emulator) -> Poller {
        let client = aws_sdk_cloudtrail::Client::new(&emulator.sdk_config().await);
        let stream = Stream {
            account: None,
            region: "us-east-1".into(),
            lookup: Lookup::EventSource("iam.amazonaws.com".into()),
            poll_interval: schedule().poll_interval,
        };
        Poller::new(
            vec![stream],
            HashMap::from([("us-east-1".to_owned(), Reader::own(client))]),
            2.0,
            schedule(),
        )
    }

    fn record(id: &str, age: TimeDelta) -> serde_json::Value {
        json!({
            "eventID": id, "eventName": "CreateRole", "eventSource": "iam.amazonaws.com",
            "eventTime": (Utc::now() - age).to_rfc3339(), "readOnly": false,
            "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
        })
    }

    async fn until_seen(sink: &MemoryIntake, ids: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen: HashSet<String> = sink.seen.lock().unwrap().keys().cloned().collect();
            if ids.iter().all(|id| seen.contains(*id)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not seen in time: {ids:?} (seen {seen:?})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await; // condition polling interval
        }
    }

    #[tokio::test]
    async fn fresh_events_arrive_by_the_fast_pass_and_late_ones_by_the_sweep() {
        let emulator = Emulator::start();
        let sink = Arc::new(MemoryIntake::default());
        let cancel = CancellationToken::new();
        let running = tokio::spawn(poller(&emulator).await.run(sink.clone(), cancel.clone()));
        // Wait until the first sweep stored its cursor: from then on fast passes run.
        let key = "lookup:us-east-1:EventSource=iam.amazonaws.com";
        while sink.cursors.lock().unwrap().get(key).is_none() {
            tokio::task::yield_now().await;
        }
        // Visible now and recent: a fast pass finds it.
        inject(&emulator, &[record("fresh", TimeDelta::zero())]);
        // Happened 30 s ago but only now visible: outside every fast window, the sweep's job.
        inject(&emulator, &[record("late", TimeDelta::seconds(30))]);
        until_seen(&sink, &["fresh", "late"]).await;
        cancel.cancel();
        running.await.unwrap();
        let seen = sink.seen.lock().unwrap();
        assert_eq!(seen["late"], Pass::Sweep);
    }

    #[tokio::test]
    async fn a_restart_resumes_from_the_cursor_and_misses_nothing_in_between() {
        let emulator = Emulator::start();
        let sink = Arc::new(MemoryIntake::default());
        inject(&emulator, &[record("before", TimeDelta::seconds(5))]);
        let cancel = CancellationToken::new();
        let first = tokio::spawn(poller(&emulator).await.run(sink.clone(), cancel.clone()));
        until_seen(&sink, &["before"]).await;
        cancel.cancel();
        first.await.unwrap();

        // While the daemon is down, changes happen (and become visible).
        inject(&emulator, &[record("while-down-1", TimeDelta::seconds(3))]);
        inject(&emulator, &[record("while-down-2", TimeDelta::seconds(1))]);
        let cancel = CancellationToken::new();
        let second = tokio::spawn(poller(&emulator).await.run(sink.clone(), cancel.clone()));
        until_seen(&sink, &["while-down-1", "while-down-2"]).await;
        cancel.cancel();
        second.await.unwrap();
        assert_eq!(sink.seen.lock().unwrap().len(), 3);
    }
}
