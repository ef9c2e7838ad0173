//! Figure 5 of the benchmarks (`scripts/bench`): what digests make of a synthetic
//! infrastructure-as-code apply. One principal makes CHANGES changes at a steady rate over
//! SECONDS seconds, CRITICAL of them CRITICAL, and another principal makes one change; the
//! library's own store, digest plan and digest rendering are driven on a simulated clock that
//! ticks each second, as a delivery worker does, with the default digest settings. Prints
//! one JSON object: messages queued, digests, and the added delay of held findings.
//!
//! Usage: `cargo run --release --features bench-tools --bin digest_sim -- CHANGES SECONDS CRITICAL`

use std::process::ExitCode;

use chrono::{DateTime, TimeDelta, Utc};
use iamwatchd::event::SeenBy;
use iamwatchd::notify::digest::{burst_key, plan, render, DigestConfig};
use iamwatchd::notify::Message;
use iamwatchd::store::{NewEvent, Notification, Store};

fn message(i: usize, critical: bool, at: DateTime<Utc>) -> Message {
    let severity = if critical { "CRITICAL" } else { "LOW" };
    let mut message: Message = serde_json::from_value(serde_json::json!({
        "subject": format!("[iamwatchd] {severity} TagRole"),
        "text": "", "html": "", "event_id": format!("ev-{i}"), "severity": severity,
        "category": "iam-change", "attempt": false, "event_name": "TagRole",
        "account": "111122223333",
    }))
    .expect("a message");
    message.time = Some(at);
    message
}

fn main() -> ExitCode {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let [changes, seconds, critical] = args[..] else {
        eprintln!("usage: digest_sim CHANGES SECONDS CRITICAL");
        return ExitCode::from(2);
    };
    let dir = tempfile_dir();
    let mut store = Store::open(&dir).expect("a store");
    let config = DigestConfig::default();
    let start = Utc::now();
    let every = critical.max(1);
    let mut delays: Vec<f64> = Vec::new();
    let mut digests = 0;
    let step = seconds as f64 / changes.max(1) as f64;
    let mut next = 0usize;
    let end = seconds + 2 * config.max_delay.as_secs() as usize;
    for tick in 0..=end {
        let now = start + TimeDelta::seconds(tick as i64);
        while next < changes && (next as f64 * step) as usize <= tick {
            let critical = critical > 0 && next % (changes / every) == changes / every / 2;
            record(
                &mut store,
                &config,
                message(next, critical, now),
                "role/ci",
                now,
            );
            next += 1;
        }
        if tick == 1 {
            record(
                &mut store,
                &config,
                message(changes, false, now),
                "user/alice",
                now,
            );
        }
        let ready = store
            .ready_bursts("mail", now, config.window, config.max_delay)
            .expect("bursts");
        for burst in ready {
            let digest = render(&burst);
            for (_, payload) in &burst.held {
                let held: Message = serde_json::from_slice(payload).expect("a message");
                let waited = now - held.time.expect("a time");
                delays.push(waited.num_milliseconds() as f64 / 1000.0);
            }
            let ids: Vec<i64> = burst.held.iter().map(|(id, _)| *id).collect();
            let payload = serde_json::to_vec(&digest).expect("json");
            if store
                .commit_digest(burst.id, &ids, &payload)
                .expect("commit")
                .is_some()
            {
                digests += 1;
            }
        }
    }
    let messages = store
        .stats()
        .expect("stats")
        .pending
        .get("mail")
        .copied()
        .unwrap_or(0);
    delays.sort_by(f64::total_cmp);
    let p99 = delays
        .get((delays.len() * 99 / 100).min(delays.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    println!(
        "{}",
        serde_json::json!({
            "changes": changes, "seconds": seconds, "critical": critical,
            "messages": messages, "digests": digests, "held": delays.len(),
            "held_delay_p99_s": p99, "held_delay_max_s": delays.last().copied().unwrap_or(0.0),
            "max_delay_s": config.max_delay.as_secs(), "window_s": config.window.as_secs(),
            "immediate": config.immediate,
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}

fn record(
    store: &mut Store,
    config: &DigestConfig,
    message: Message,
    who: &str,
    now: DateTime<Utc>,
) {
    let key = burst_key("111122223333", &format!("arn:aws:iam::111122223333:{who}"));
    let notification = Notification {
        notifier: "mail".to_owned(),
        payload: serde_json::to_vec(&message).expect("json"),
        burst: plan(config, &message, Some(&key), None),
    };
    let event = NewEvent {
        event_id: message.event_id.clone(),
        event_time: now,
        event_name: message.event_name.clone(),
        severity: message.severity.clone(),
        seen_by: SeenBy::Poller,
        seen_at: now,
    };
    store
        .record_batch(&[(event, vec![notification])], None)
        .expect("recorded");
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("iamwatchd-digest-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}
