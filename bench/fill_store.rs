//! Fills a state directory's store with many seen events, for the footprint benchmark
//! (`scripts/bench`, figure 4): how big the database grows and how much memory `iamwatchd run`
//! needs when it opens a store that remembers a million eventIDs.
//!
//! Usage: `cargo run --release --features bench-tools --bin fill_store -- STATE_DIR COUNT`
//!
//! Goes through the library's [`Store`] exactly as the poller does (one transaction per batch),
//! so the schema, indexes and settings are the product's. Events are spread over the last 30
//! days, inside the default 90-day retention, so the daemon's hourly prune keeps them all. No
//! notifications are queued: a full outbox would measure the delivery backlog, not the seen set.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{Duration, Utc};
use iamwatchd::event::SeenBy;
use iamwatchd::store::{NewEvent, Store};

const BATCH: usize = 10_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(count), 2) = (args.first(), args.get(1), args.len()) else {
        eprintln!("usage: fill_store STATE_DIR COUNT");
        return ExitCode::from(2);
    };
    let Ok(count) = count.parse::<usize>() else {
        eprintln!("fill_store: COUNT must be a whole number, not {count:?}");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!("fill_store: cannot create {}: {error}", dir.display());
        return ExitCode::FAILURE;
    }
    let mut store = match Store::open(&dir) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("fill_store: {error}");
            return ExitCode::FAILURE;
        }
    };
    let now = Utc::now();
    let span_ms = Duration::days(30).num_milliseconds();
    let mut written = 0;
    while written < count {
        let items: Vec<_> = (written..count.min(written + BATCH))
            .map(|i| {
                // Deterministic, unique, shaped like CloudTrail's UUID eventIDs.
                let event = NewEvent {
                    event_id: format!("{:08x}-0000-4000-8000-{:012x}", i >> 16, i),
                    event_time: now - Duration::milliseconds(span_ms * i as i64 / count as i64),
                    event_name: "AttachRolePolicy".into(),
                    severity: "high".into(),
                    seen_by: SeenBy::Poller,
                    seen_at: now,
                };
                (event, Vec::new())
            })
            .collect();
        if let Err(error) = store.record_batch(&items, None) {
            eprintln!("fill_store: {error}");
            return ExitCode::FAILURE;
        }
        written += items.len();
    }
    println!("{written}");
    ExitCode::SUCCESS
}
