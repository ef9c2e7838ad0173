//! One region's loop: reads the next page of the most urgent stream that has work, within the
//! region's budget (see [`super::poller`] for the rules it keeps).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::budget::Budget;
use super::lookup::{log_retry, LookupError, PageError, Pager, Reader};
use super::schedule::Schedule;
use super::stream::{Counters, Stream};
use crate::event::SeenBy;
use crate::source::{Accepted, Batch, CursorUpdate, Intake, Pass};

/// A pass in progress: its pager, and what it has stored so far.
struct ActivePass {
    pass: Pass,
    /// When it began: a sweep reads up to then, so the next fast pass is one interval later.
    began: Instant,
    pager: Pager,
    cursor: Option<CursorUpdate>,
    accepted: Accepted,
    /// After a throttled or failed attempt: when the page is tried again (the other streams
    /// go on meanwhile).
    retry_at: Option<Instant>,
}

struct StreamState {
    stream: Stream,
    next_sweep: Instant,
    next_fast: Instant,
    /// Until a first sweep succeeded, fast passes would only duplicate its work.
    swept_once: bool,
    /// Since when this stream has had work waiting (for the starvation limit).
    due_since: Option<Instant>,
    active: Option<ActivePass>,
}

impl StreamState {
    /// When this stream next has work (`now` or earlier if it has some).
    fn next_due(&self, now: Instant) -> Instant {
        if let Some(active) = &self.active {
            return active.retry_at.map_or(now, |at| at.max(now));
        }
        if self.swept_once {
            self.next_sweep.min(self.next_fast)
        } else {
            self.next_sweep
        }
    }

    /// Whether the pass that starts at `now` is a sweep (else the fast pass).
    fn sweep_due(&self, now: Instant) -> bool {
        now >= self.next_sweep
    }
}

/// How long a less urgent stream waits at most for the first stream of its region to finish
/// catching up before it gets a pass in between.
pub(crate) const STARVATION_LIMIT: Duration = Duration::from_secs(5 * 60);

/// How many of the last pages [`RegionRunner::choose`] remembers the owners of, to keep the
/// first stream's share of the budget.
const SHARE_OF: u32 = 16;

/// One region's streams, their budget and reader.
pub(super) struct RegionRunner {
    region: String,
    streams: Vec<StreamState>,
    /// The last [`SHARE_OF`] pages read, newest in the lowest bit: 1 for a page of a lesser
    /// stream, 0 for one of the first.
    lesser_pages: u16,
    reader: Reader,
    budget: Budget,
    schedule: Schedule,
    counters: Arc<Counters>,
}

impl RegionRunner {
    /// The loop of `region`'s streams, most urgent first; the first sweep of each runs at once
    /// (it catches up from the stored cursor).
    pub(super) fn new(
        region: String,
        streams: Vec<Stream>,
        reader: Reader,
        budget: Budget,
        schedule: Schedule,
        counters: Arc<Counters>,
    ) -> RegionRunner {
        let now = Instant::now();
        RegionRunner {
            streams: streams
                .into_iter()
                .map(|stream| StreamState {
                    stream,
                    next_sweep: now,
                    next_fast: now,
                    swept_once: false,
                    due_since: Some(now),
                    active: None,
                })
                .collect(),
            lesser_pages: 0,
            region,
            reader,
            budget,
            schedule,
            counters,
        }
    }

    pub(super) async fn run<I: Intake>(mut self, intake: Arc<I>, cancel: CancellationToken) {
        loop {
            let now = Instant::now();
            match self.choose(now) {
                Some(index) => {
                    // Boxed: a page's SDK call is the largest state of this loop, and the loop
                    // spends nearly all its time waiting between pages; unboxed, every idle
                    // account would hold room for one.
                    if !Box::pin(self.step(index, &*intake, &cancel)).await {
                        return;
                    }
                }
                None => {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep_until(self.idle_until(now)) => {}
                    }
                }
            }
        }
    }

    /// When to look again after [`RegionRunner::choose`] found nothing to read at `now`.
    fn idle_until(&self, now: Instant) -> Instant {
        let next = self
            .streams
            .iter()
            .map(|s| s.next_due(now))
            .min()
            .unwrap_or(now + self.schedule.poll_interval);
        // A stream held back for the first one's poll is due already: wait for that poll,
        // not for it.
        if next <= now {
            self.streams[0]
                .next_due(now)
                .max(now + Duration::from_millis(10))
        } else {
            next
        }
    }

    /// The stream whose page to read now, if any (see the module documentation).
    fn choose(&mut self, now: Instant) -> Option<usize> {
        let index = self.pick(now)?;
        self.lesser_pages = (self.lesser_pages << 1) | u16::from(index > 0);
        Some(index)
    }

    /// [`RegionRunner::choose`]'s decision.
    ///
    /// A lesser stream held back longer than its limit goes before the first stream, but only
    /// while the lesser streams had less than half of the last [`SHARE_OF`] pages: then it is
    /// the first stream that leaves no gap (a short poll interval on a small budget, a long
    /// catch-up), and the others get half the budget. When the lesser streams already have
    /// more (they want more than the gaps between the first stream's polls hold), they wait
    /// for gaps and poll less often than asked; the first stream is never made late for them.
    /// Among the lesser streams, the one that has waited longest goes first, so all of them
    /// stretch alike instead of the last ones never getting a page.
    fn pick(&mut self, now: Instant) -> Option<usize> {
        for state in &mut self.streams {
            if state.next_due(now) <= now {
                state.due_since.get_or_insert(now);
            }
        }
        // A stream held back waits at most its own poll interval; while the first stream
        // catches up on a backlog, up to the starvation limit.
        let catching_up = self.streams[0]
            .active
            .as_ref()
            .is_some_and(|active| active.pass == Pass::Sweep);
        let starved = |s: &StreamState| {
            let limit = if catching_up {
                STARVATION_LIMIT.max(s.stream.poll_interval)
            } else {
                s.stream.poll_interval
            };
            s.due_since
                .is_some_and(|since| now.duration_since(since) >= limit)
        };
        let longest_waiting = |wanted: &dyn Fn(&StreamState) -> bool| {
            self.streams
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, s)| wanted(s))
                .min_by_key(|(_, s)| s.due_since)
                .map(|(index, _)| index)
        };
        // A starved stream goes first while the lesser streams are under their half; past
        // it, an active pass of a starved stream goes on in the gaps (below).
        if self.lesser_pages.count_ones() < SHARE_OF / 2 {
            if let Some(index) = longest_waiting(&starved) {
                return Some(index);
            }
        }
        let first_next = self.streams[0].next_due(now);
        if first_next <= now {
            return Some(0);
        }
        // An active pass of a lesser stream finishes once started (usually it is a single
        // page); otherwise a page now must not make the first stream's next poll wait.
        if let Some(index) = longest_waiting(&|s| s.active.is_some() && s.next_due(now) <= now) {
            return Some(index);
        }
        if self.budget.would_delay(first_next) {
            return None;
        }
        longest_waiting(&|s| s.next_due(now) <= now)
    }

    /// Reads and stores one page of stream `index`, starting its pass if none is active.
    /// Returns `false` when cancelled.
    async fn step<I: Intake>(
        &mut self,
        index: usize,
        intake: &I,
        cancel: &CancellationToken,
    ) -> bool {
        let now = Instant::now();
        if self.streams[index].active.is_none() {
            let sweep = if self.streams[index].sweep_due(now) {
                let key = self.streams[index].stream.cursor_key();
                match intake.cursor(&key).await {
                    Ok(cursor) => Some((key, cursor)),
                    Err(error) => {
                        tracing::error!(stream = %key, %error, "cannot read the cursor; sweep skipped");
                        let state = &mut self.streams[index];
                        state.next_sweep = Instant::now() + self.schedule.sweep_interval;
                        state.due_since = None;
                        return true;
                    }
                }
            } else {
                None
            };
            self.begin(index, now, sweep);
        }
        let state = &mut self.streams[index];
        let label = state.stream.lookup.label();
        let active = state.active.as_mut().expect("started above");
        let page = active
            .pager
            .next_page(&self.reader, &self.region, &self.budget, cancel)
            .await;
        active.retry_at = None;
        let (records, stats) = match page {
            Ok(page) => page,
            Err(PageError::Retry {
                after,
                throttled,
                message,
                ..
            }) => {
                if throttled {
                    self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                }
                log_retry(&label, throttled, &message, after);
                // The pass stays open at its page; nothing is skipped and the cursor waits.
                active.retry_at = Some(Instant::now() + after);
                return true;
            }
            Err(PageError::Failed(LookupError::Cancelled)) => return false,
            Err(PageError::Failed(error)) => {
                let pass = active.pass;
                self.counters.failed_passes.fetch_add(1, Ordering::Relaxed);
                tracing::error!(region = %self.region, stream = %label, ?pass, "{error}");
                self.end_pass(index, false);
                return true;
            }
        };
        let last = active.pager.is_done();
        let cursor = if last { active.cursor.take() } else { None };
        let count = records.len();
        let batch = Batch {
            records,
            seen_by: SeenBy::Poller,
            pass: Some(active.pass),
            cursor,
        };
        match intake.accept(batch).await {
            Ok(accepted) => {
                self.counters.add_page(stats, accepted);
                active.accepted.new += accepted.new;
                active.accepted.confirmed += accepted.confirmed;
                active.accepted.duplicate += accepted.duplicate;
                if last {
                    let (pass, window, stats, accepted) = (
                        active.pass,
                        active.pager.window(),
                        active.pager.stats,
                        active.accepted,
                    );
                    self.counters.pass_complete(&state.stream);
                    tracing::debug!(
                        region = %self.region, stream = %label, ?pass,
                        from = %window.start, to = %window.end,
                        pages = stats.pages, events = stats.events, reads_dropped = stats.reads_dropped,
                        new = accepted.new, refetched = accepted.duplicate + accepted.confirmed,
                        throttled = stats.throttled,
                        "pass complete"
                    );
                    self.end_pass(index, true);
                }
            }
            Err(error) => {
                let pass = active.pass;
                self.counters.failed_passes.fetch_add(1, Ordering::Relaxed);
                tracing::error!(stream = %label, ?pass, records = count, %error,
                    "could not store a page's records; the next sweep reads them again");
                self.end_pass(index, false);
            }
        }
        true
    }

    /// Opens stream `index`'s next pass at `now`: with `sweep` (the cursor's key and stored
    /// value) the sweep from that cursor, else the fast pass.
    fn begin(
        &mut self,
        index: usize,
        now: Instant,
        sweep: Option<(String, Option<DateTime<Utc>>)>,
    ) {
        let schedule = self.schedule;
        let state = &mut self.streams[index];
        let (pass, window, cursor) = match sweep {
            Some((key, cursor)) => {
                let window = schedule.sweep_window(cursor, Utc::now());
                let update = CursorUpdate {
                    key,
                    value: schedule.cursor_after_sweep(cursor, window.end),
                };
                (Pass::Sweep, window, Some(update))
            }
            None => {
                // Start to start: a pass that took a while does not push the next one back (but
                // a stream that fell far behind does not make up for the passes it missed).
                let next = state.next_fast + state.stream.poll_interval;
                state.next_fast = if next < now {
                    now + state.stream.poll_interval
                } else {
                    next
                };
                (Pass::Fast, schedule.fast_window(Utc::now()), None)
            }
        };
        state.active = Some(ActivePass {
            pass,
            began: now,
            pager: Pager::new(state.stream.lookup.clone(), window),
            cursor,
            accepted: Accepted::default(),
            retry_at: None,
        });
    }

    /// Closes stream `index`'s pass and schedules what comes next.
    fn end_pass(&mut self, index: usize, complete: bool) {
        let now = Instant::now();
        let state = &mut self.streams[index];
        state.due_since = None;
        let Some(active) = state.active.take() else {
            return;
        };
        if active.pass == Pass::Sweep {
            state.swept_once |= complete;
            state.next_sweep = now + self.schedule.sweep_interval;
            if complete {
                // The sweep read up to when it began, so it was this stream's fast pass too:
                // the next one comes a poll interval after that (at once after a long sweep).
                // A stream polled no more often than it is swept (a member's listed streams
                // at `listed_interval = sweep_interval`) is read by its sweeps alone: its fast
                // pass would come due just before the next sweep and read the same.
                state.next_fast = if state.stream.poll_interval >= self.schedule.sweep_interval {
                    state.next_sweep
                } else {
                    active.began + state.stream.poll_interval
                };
            } else if state.next_fast < now {
                state.next_fast = now;
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::cloudtrail::lookup::Lookup;

    fn stream(lookup: Lookup) -> Stream {
        Stream {
            account: None,
            region: "us-east-1".into(),
            lookup,
            poll_interval: Duration::from_secs(5),
        }
    }

    /// The IAM stream and one tampering stream, both past their first sweep and not due
    /// for a long time; tests make them due as they need.
    fn runner(requests_per_second: f64) -> RegionRunner {
        let config = aws_sdk_cloudtrail::Config::builder()
            .behavior_version(aws_sdk_cloudtrail::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudtrail::config::Region::new("us-east-1"))
            .build();
        let later = Instant::now() + Duration::from_secs(3600);
        let state = |lookup| StreamState {
            stream: stream(lookup),
            next_sweep: later,
            next_fast: later,
            swept_once: true,
            due_since: None,
            active: None,
        };
        RegionRunner {
            region: "us-east-1".into(),
            lesser_pages: 0,
            streams: vec![
                state(Lookup::EventSource("iam.amazonaws.com".into())),
                state(Lookup::EventName("StopLogging".into())),
            ],
            reader: Reader::own(aws_sdk_cloudtrail::Client::from_conf(config)),
            budget: Budget::new(requests_per_second),
            schedule: Schedule::default(),
            counters: Arc::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_stream_goes_first() {
        let mut runner = runner(1.0);
        let now = Instant::now();
        runner.streams[0].next_fast = now;
        runner.streams[1].next_fast = now;
        assert_eq!(runner.choose(now), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lesser_stream_fills_a_gap_but_never_delays_the_next_iam_poll() {
        let mut runner = runner(1.0);
        let now = Instant::now();
        runner.streams[1].next_fast = now;
        runner.streams[0].next_fast = now + Duration::from_secs(5);
        assert_eq!(
            runner.choose(now),
            Some(1),
            "5 s is room for a request at 1/s"
        );
        runner.streams[0].next_fast = now + Duration::from_millis(500);
        assert_eq!(
            runner.choose(now),
            None,
            "a request now would make the IAM poll in 500 ms wait"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lesser_stream_held_back_for_its_whole_poll_interval_goes_anyway() {
        let mut runner = runner(1.0);
        let now = Instant::now();
        runner.streams[1].next_fast = now;
        runner.streams[0].next_fast = now + Duration::from_millis(500);
        assert_eq!(runner.choose(now), None);
        tokio::time::advance(Duration::from_secs(5)).await;
        let now = Instant::now();
        runner.streams[0].next_fast = now + Duration::from_millis(500);
        assert_eq!(runner.choose(now), Some(1));
    }

    /// A stream whose page was throttled or failed waits out its backoff with its pass open
    /// (same page, cursor unmoved) while the others go on, then is tried again.
    #[tokio::test(start_paused = true)]
    async fn a_stream_backing_off_lets_the_others_go_on() {
        let mut runner = runner(2.0);
        let now = Instant::now();
        runner.streams[0].active = Some(ActivePass {
            pass: Pass::Sweep,
            began: now,
            pager: Pager::new(
                runner.streams[0].stream.lookup.clone(),
                runner.schedule.fast_window(Utc::now()),
            ),
            cursor: None,
            accepted: Accepted::default(),
            retry_at: Some(now + Duration::from_secs(2)),
        });
        runner.streams[1].next_fast = now;
        assert_eq!(runner.choose(now), Some(1), "the other stream goes on");
        runner.streams[1].next_fast = now + Duration::from_secs(3600);
        assert_eq!(
            runner.choose(Instant::now()),
            None,
            "nothing due during the backoff"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            runner.choose(Instant::now()),
            Some(0),
            "then the same pass again"
        );
        assert!(
            runner.streams[0].active.is_some(),
            "still open: nothing skipped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_starved_by_a_long_catch_up_gets_its_turn() {
        let mut runner = runner(2.0);
        let now = Instant::now();
        // The IAM stream is in the middle of a long sweep; StopLogging is due.
        runner.streams[0].active = Some(ActivePass {
            pass: Pass::Sweep,
            began: now,
            pager: Pager::new(
                runner.streams[0].stream.lookup.clone(),
                runner.schedule.fast_window(Utc::now()),
            ),
            cursor: None,
            accepted: Accepted::default(),
            retry_at: None,
        });
        runner.streams[1].next_sweep = now;
        assert_eq!(runner.choose(now), Some(0), "catching up comes first");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            runner.choose(Instant::now()),
            Some(0),
            "longer than the stream's poll interval"
        );
        tokio::time::advance(STARVATION_LIMIT).await;
        assert_eq!(runner.choose(Instant::now()), Some(1), "but not for ever");
        runner.end_pass(1, true);
        assert_eq!(runner.choose(Instant::now()), Some(0));
    }

    /// What [`simulate`] saw of each stream.
    #[derive(Debug, Default)]
    struct Seen {
        /// How late each fast pass of the first stream began after it was due (after the
        /// first minute's sweeps).
        first_late: Vec<Duration>,
        /// The longest time between two passes of each lesser stream, and their number.
        lesser_gap: Vec<Duration>,
        lesser_passes: Vec<u32>,
    }

    impl Seen {
        /// The latest the first stream's fast pass began after it was due.
        fn latest_first_pass(&self) -> Duration {
            self.first_late.iter().max().copied().unwrap_or_default()
        }

        /// The longest any lesser stream waited between two passes.
        fn longest_lesser_gap(&self) -> Duration {
            self.lesser_gap.iter().max().copied().unwrap_or_default()
        }
    }

    /// Runs the loop's decisions for `minutes` of paused time: the IAM stream every 10 s and
    /// `lesser` listed streams every 60 s at 1 request/s, each pass one page answered in
    /// 50 ms, the daemon's own sweep schedule; the budget is the real one.
    async fn simulate(lesser: usize, minutes: u64) -> Seen {
        let mut runner = runner(1.0);
        runner.schedule = Schedule {
            poll_interval: Duration::from_secs(10),
            fast_window: Duration::from_secs(120),
            sweep_interval: Duration::from_secs(300),
            sweep_horizon: Duration::from_secs(900),
            start_from: Duration::from_secs(900),
        };
        runner.streams.pop();
        let start = Instant::now();
        for i in 0..lesser {
            let mut stream = stream(Lookup::EventName(format!("Call{i}")));
            stream.poll_interval = Duration::from_secs(60);
            runner.streams.push(StreamState {
                stream,
                next_sweep: start,
                next_fast: start,
                swept_once: false,
                due_since: Some(start),
                active: None,
            });
        }
        let first = &mut runner.streams[0];
        first.stream.poll_interval = Duration::from_secs(10);
        (first.next_sweep, first.next_fast, first.swept_once) = (start, start, false);
        let mut seen = Seen {
            lesser_gap: vec![Duration::ZERO; lesser],
            lesser_passes: vec![0; lesser],
            ..Seen::default()
        };
        let mut last_pass = vec![start; lesser];
        let end = start + Duration::from_secs(60 * minutes);
        while Instant::now() < end {
            let now = Instant::now();
            let Some(index) = runner.choose(now) else {
                tokio::time::sleep_until(runner.idle_until(now)).await;
                continue;
            };
            let state = &runner.streams[index];
            let sweep = state.sweep_due(now);
            let due = state.next_fast;
            runner.begin(index, now, sweep.then(|| (String::new(), None)));
            let permit = runner.budget.acquire().await;
            let sent = Instant::now();
            if index == 0 && !sweep && sent - start > Duration::from_secs(60) {
                seen.first_late.push(sent.saturating_duration_since(due));
            }
            if index > 0 {
                let gap = sent - last_pass[index - 1];
                seen.lesser_gap[index - 1] = seen.lesser_gap[index - 1].max(gap);
                seen.lesser_passes[index - 1] += 1;
                last_pass[index - 1] = sent;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            permit.finish(super::super::budget::Outcome::Answered);
            runner.end_pass(index, true);
        }
        seen
    }

    /// The daemon's default streams in a member account (40 listed lookups beside IAM's):
    /// the IAM poll is never late for them, and each of them is polled at its interval.
    #[tokio::test(start_paused = true)]
    async fn forty_listed_streams_never_make_the_iam_poll_late() {
        let seen = simulate(40, 30).await;
        let worst = seen.latest_first_pass();
        assert!(
            seen.first_late.len() >= 170,
            "{} IAM polls",
            seen.first_late.len()
        );
        assert!(
            worst <= Duration::from_millis(100),
            "an IAM poll began {worst:?} late"
        );
        let gap = seen.longest_lesser_gap();
        assert!(
            gap <= Duration::from_secs(65),
            "a listed stream waited {gap:?}"
        );
        // A sweep is also that stream's fast pass: 30 passes in 30 minutes, not 36.
        let passes: u32 = seen.lesser_passes.iter().sum();
        assert!(passes <= 40 * 31, "{passes} listed passes");
    }

    /// More listed streams than the budget holds beside the IAM polls: they poll less often
    /// than asked, all of them alike, and the IAM poll is still never late.
    #[tokio::test(start_paused = true)]
    async fn listed_streams_beyond_the_budget_stretch_instead_of_delaying_iam() {
        let seen = simulate(80, 30).await;
        let worst = seen.latest_first_pass();
        assert!(
            worst <= Duration::from_millis(100),
            "an IAM poll began {worst:?} late"
        );
        // 80 a minute wanted, about 48 left beside the IAM polls: each stream gets its turn
        // about every 100 s (16 to 21 passes in the 30 minutes), none is left behind.
        let gap = seen.longest_lesser_gap();
        assert!(
            gap <= Duration::from_secs(150),
            "a listed stream waited {gap:?}"
        );
        let fewest = seen.lesser_passes.iter().min().copied().unwrap_or_default();
        assert!(fewest >= 15, "a listed stream had only {fewest} passes");
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_sweep_is_also_the_fast_pass() {
        let mut runner = runner(1.0);
        let now = Instant::now();
        runner.streams[1].next_sweep = now;
        runner.begin(1, now, Some((String::new(), None)));
        tokio::time::advance(Duration::from_secs(2)).await;
        runner.end_pass(1, true);
        assert_eq!(runner.streams[1].next_fast, now + Duration::from_secs(5));
        // A long sweep: the fast pass follows at once.
        let now = Instant::now();
        runner.begin(1, now, Some((String::new(), None)));
        tokio::time::advance(Duration::from_secs(60)).await;
        runner.end_pass(1, true);
        assert!(runner.streams[1].next_due(Instant::now()) <= Instant::now());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_polled_as_seldom_as_it_is_swept_is_read_by_its_sweeps_alone() {
        let mut runner = runner(1.0);
        runner.streams[1].stream.poll_interval = runner.schedule.sweep_interval;
        let start = Instant::now();
        runner.streams[1].next_sweep = start;
        let mut passes = Vec::new();
        while Instant::now() < start + Duration::from_secs(30 * 60) {
            let now = Instant::now();
            if runner.streams[1].next_due(now) <= now {
                let sweep = runner.streams[1]
                    .sweep_due(now)
                    .then(|| (String::new(), None));
                passes.push(sweep.is_some());
                runner.begin(1, now, sweep);
                tokio::time::advance(Duration::from_millis(300)).await;
                runner.end_pass(1, true);
            }
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        let sweeps = (30 * 60) / runner.schedule.sweep_interval.as_secs();
        assert_eq!(
            passes.len() as u64,
            sweeps,
            "one pass per sweep interval: {passes:?}"
        );
        assert!(passes.iter().all(|&sweep| sweep), "{passes:?}");
    }
}
