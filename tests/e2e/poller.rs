//! The LookupEvents reader against the emulator: pagination, read filtering, throttling, faults.

use chrono::{TimeDelta, Utc};
use iamwatchd::source::budget::Budget;
use iamwatchd::source::lookup::{fetch_window, Lookup, LookupError, Window};
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

#[tokio::test]
async fn a_window_is_read_across_pages_with_reads_dropped_oldest_first() {
    let emulator = Emulator::start();
    inject(&emulator, &iam_records(120));
    let budget = Budget::new(2.0);
    let fetched = fetch_window(
        &client(&emulator).await,
        "us-east-1",
        &budget,
        &iam(),
        last_hour(),
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
    let fetched = fetch_window(
        &trail,
        "us-east-1",
        &budget,
        &iam(),
        last_hour(),
        &CancellationToken::new(),
    )
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
    let fetched = fetch_window(&trail, "us-east-1", &budget, &iam(), last_hour(), &cancel)
        .await
        .expect("recovers after two failures");
    assert_eq!(fetched.records.len(), 6);

    emulator.control(
        "POST",
        "faults",
        r#"{"services": ["cloudtrail"], "fail_next": 100}"#,
    );
    let error = fetch_window(&trail, "us-east-1", &budget, &iam(), last_hour(), &cancel)
        .await
        .expect_err("gives up");
    assert!(
        matches!(error, LookupError::Unavailable { attempts: 5, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn cancellation_stops_a_pass_waiting_for_its_budget() {
    let emulator = Emulator::start();
    let budget = Budget::new(0.01); // one request per 100 s: the second page would wait long
    inject(&emulator, &iam_records(80));
    let cancel = CancellationToken::new();
    let trail = client(&emulator).await;
    let lookup = iam();
    let pass = fetch_window(&trail, "us-east-1", &budget, &lookup, last_hour(), &cancel);
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
