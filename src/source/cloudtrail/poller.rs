//! Runs the LookupEvents streams: a fast pass every poll interval, a sweep from the durable
//! cursor every sweep interval (see [`super`] for why), all streams of one region
//! sharing that region's request budget.
//!
//! # One loop per region, one page at a time, most urgent first
//!
//! A region's streams are polled by one loop that spends the budget a page at a time. The
//! streams are in priority order (the IAM stream first): the loop always reads the next page of
//! the most urgent stream that has work. A less urgent stream (a tampering lookup) only gets a
//! page when that page will not make the first stream's next poll wait ([`Budget::would_delay`],
//! which counts the wait for the page's own window), so the tampering lookups fill the gaps
//! between IAM polls instead of delaying them; among them the one that has waited longest goes
//! first. When they want more than the gaps hold (forty listed lookups of a member account at
//! one request a second come close), they poll less often than asked, all alike, and the IAM
//! poll stays on time. A stream held back longer than its own poll interval goes before the
//! IAM stream only while the others had less than half of the recent pages, that is when the
//! IAM polls leave no gap (a short poll interval on a small budget); while the first stream
//! catches up on a backlog (a long sweep), the others wait up to
//! [`super::region::STARVATION_LIMIT`] and then get their pass in between, so catching up on
//! hours of IAM history never blinds the daemon to tampering for longer.
//!
//! A complete sweep read up to when it began, so it is also that stream's fast pass: the next
//! fast pass comes one poll interval after the sweep began.
//!
//! Every page is handed to the intake as soon as it is read, so a long sweep reports what it has
//! found while it goes on; the sweep's cursor update comes with its last page.
//!
//! The poller knows nothing of rules, storage or notifications: it hands each page's records
//! to an [`Intake`], with the sweep's cursor update on its last page. The loop itself is in
//! `region`.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::budget::Budget;
use super::lookup::Reader;
use super::region::RegionRunner;
use super::schedule::Schedule;
use crate::source::Intake;

use super::stream::{Counters, Stream};

/// The streams, their readers and budgets, and the schedule.
pub struct Poller {
    streams: Vec<Stream>,
    readers: HashMap<String, Reader>,
    requests_per_second: f64,
    schedule: Schedule,
    counters: Arc<Counters>,
}

impl Poller {
    /// `readers` must hold a reader for every stream's region; each region gets one
    /// budget of `requests_per_second`, shared by its streams. Within a region, earlier streams
    /// in `streams` are more urgent than later ones.
    pub fn new(
        streams: Vec<Stream>,
        readers: HashMap<String, Reader>,
        requests_per_second: f64,
        schedule: Schedule,
    ) -> Poller {
        Poller {
            streams,
            readers,
            requests_per_second,
            schedule,
            counters: Arc::new(Counters::default()),
        }
    }

    /// The running totals of every stream, shared with metrics and `/healthz`.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Polls until `cancel` fires; each region runs as its own task.
    pub async fn run<I: Intake>(self, intake: Arc<I>, cancel: CancellationToken) {
        let mut regions: Vec<(String, Vec<Stream>)> = Vec::new();
        for stream in self.streams {
            match regions
                .iter_mut()
                .find(|(region, _)| *region == stream.region)
            {
                Some((_, streams)) => streams.push(stream),
                None => regions.push((stream.region.clone(), vec![stream])),
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (region, streams) in regions {
            let Some(reader) = self.readers.get(&region).cloned() else {
                tracing::error!(%region, "no CloudTrail client for this region; its streams are not polled");
                continue;
            };
            let runner = RegionRunner::new(
                region,
                streams,
                reader,
                Budget::new(self.requests_per_second),
                self.schedule,
                self.counters.clone(),
            );
            tasks.spawn(runner.run(intake.clone(), cancel.clone()));
        }
        while tasks.join_next().await.is_some() {}
    }
}
