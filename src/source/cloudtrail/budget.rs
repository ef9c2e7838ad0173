//! One request budget per account and region, shared by every LookupEvents query.
//!
//! CloudTrail allows 2 LookupEvents requests per second per account and region, for everyone in
//! the account: the daemon, humans in the console, other tools. The daemon spends a configured
//! share (default 1/s, never more than 2/s).
//!
//! # Counting the way the server counts
//!
//! The server counts a request when it *arrives*, which the client never sees: it only knows
//! that the arrival lies between sending and receiving the answer. Spacing sends evenly (500 ms
//! apart at 2/s) is therefore not enough: one request delayed on the way and the next one not
//! puts three arrivals into one second, and the third is throttled. So the budget keeps the
//! conservative rule instead: at a share of `n` requests per window `w`, a request may start only
//! once the request `n` places before it has been *answered* `w` ago. Then any `n + 1` arrivals
//! are at least `w` apart whatever the network did, and the full 2/s share is never throttled by
//! the daemon's own traffic; the cost is one round trip per window (about 1 % against a local
//! emulator, more against a distant region).
//!
//! When the daemon is throttled anyway (someone else in the account is busy), the window doubles
//! for a while and recovers step by step on success.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::aws::LOOKUP_EVENTS_REQUESTS_PER_SECOND;

/// The longest window throttling can push a single request's spacing to.
const MAX_SPACING: Duration = Duration::from_secs(30);

/// Added to every window: the server's clock and ours tick differently at the millisecond level.
const CLOCK_MARGIN: Duration = Duration::from_millis(5);

/// A request's latency before any has been measured (for [`Budget::would_delay`]).
const INITIAL_LATENCY: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Request {
    id: u64,
    /// When the answer came; `None` while in flight (it may still arrive at any moment).
    answered: Option<Instant>,
}

#[derive(Debug)]
struct State {
    /// The last `per_window` requests, oldest first.
    recent: VecDeque<Request>,
    next_id: u64,
    /// Throttling multiplies the window by this (1 when all is well).
    backoff: f64,
    /// A smoothed request latency.
    latency: Duration,
}

/// What became of a request, for the budget's back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The service answered: a throttling back-off recovers one step.
    Answered,
    /// The service throttled it: the window doubles (up to a limit).
    Throttled,
    /// Failed for another reason (network, 5xx): says nothing about the rate.
    Failed,
}

/// Paces requests so that at most `per_window` of them can arrive within any `window`.
#[derive(Debug)]
pub struct Budget {
    per_window: usize,
    window: Duration,
    state: Mutex<State>,
    changed: Notify,
}

/// The right to send one request; tell the budget how it went with [`Permit::finish`]. A permit
/// dropped unfinished (the request was cancelled) counts as answered when dropped, as a failure
/// that says nothing about the rate ([`Outcome::Failed`]).
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    budget: &'a Budget,
    id: u64,
    started: Instant,
    finished: bool,
}

impl Permit<'_> {
    /// Tells the budget the request is over and how it went; this frees its place.
    pub fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.budget.finish(self.id, self.started, outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.budget.finish(self.id, self.started, Outcome::Failed);
        }
    }
}

impl Budget {
    /// A budget of `per_second` requests per second, capped at the API's limit.
    pub fn new(per_second: f64) -> Budget {
        let rate = per_second.clamp(0.01, LOOKUP_EVENTS_REQUESTS_PER_SECOND);
        // Whole requests per window: 2/s is two per second, 1.5/s one per 667 ms, 0.5/s one
        // per 2 s.
        let per_window = (rate.floor() as usize).max(1);
        let window = Duration::from_secs_f64(per_window as f64 / rate);
        Budget {
            per_window,
            window,
            state: Mutex::new(State {
                recent: VecDeque::new(),
                next_id: 0,
                backoff: 1.0,
                latency: INITIAL_LATENCY,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn current_window(&self, state: &State) -> Duration {
        self.window
            .mul_f64(state.backoff)
            .min(MAX_SPACING * self.per_window as u32)
            + CLOCK_MARGIN
    }

    /// When the next request may start, given `recent`; `None` while the request that decides
    /// it is still in flight.
    fn earliest(&self, state: &State, recent: &VecDeque<Request>, now: Instant) -> Option<Instant> {
        if recent.len() < self.per_window {
            return Some(now);
        }
        let decisive = &recent[recent.len() - self.per_window];
        decisive
            .answered
            .map(|at| (at + self.current_window(state)).max(now))
    }

    /// Waits until a request may start, and books it.
    pub(crate) async fn acquire(&self) -> Permit<'_> {
        loop {
            // Registered before looking, so a finish between the look and the wait is not missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wait = {
                let mut state = self.lock();
                let now = Instant::now();
                match self.earliest(&state, &state.recent, now) {
                    Some(at) if at <= now => {
                        let id = state.next_id;
                        state.next_id += 1;
                        state.recent.push_back(Request { id, answered: None });
                        while state.recent.len() > self.per_window {
                            state.recent.pop_front();
                        }
                        return Permit {
                            budget: self,
                            id,
                            started: now,
                            finished: false,
                        };
                    }
                    other => other,
                }
            };
            match wait {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    fn finish(&self, id: u64, started: Instant, outcome: Outcome) {
        {
            let mut state = self.lock();
            let now = Instant::now();
            if let Some(request) = state.recent.iter_mut().find(|r| r.id == id) {
                request.answered = Some(now);
            }
            match outcome {
                Outcome::Answered => {
                    state.backoff = (state.backoff * 0.75).max(1.0);
                    let took = now - started;
                    state.latency = (state.latency * 3 + took) / 4;
                }
                Outcome::Throttled => state.backoff = (state.backoff * 2.0).min(64.0),
                Outcome::Failed => {}
            }
        }
        self.changed.notify_waiters();
    }

    /// Whether asking for one request now would make a request wanted at `at` wait (the poller
    /// asks before spending the budget on something less urgent than its next IAM poll). The
    /// request asked for now starts when the budget lets it, which may be a window from now.
    pub(crate) fn would_delay(&self, at: Instant) -> bool {
        let state = self.lock();
        let now = Instant::now();
        let mut recent: VecDeque<Request> = state
            .recent
            .iter()
            .map(|r| Request {
                id: r.id,
                // An answer still outstanding is expected within the usual latency.
                answered: Some(r.answered.unwrap_or(now + state.latency * 2)),
            })
            .collect();
        let starts = self.earliest(&state, &recent, now).unwrap_or(now);
        recent.push_back(Request {
            id: u64::MAX,
            answered: Some(starts + state.latency * 2),
        });
        while recent.len() > self.per_window {
            recent.pop_front();
        }
        self.earliest(&state, &recent, at)
            .is_some_and(|start| start > at)
    }

    /// The current average spacing between requests (for metrics and logs).
    pub(crate) fn spacing(&self) -> Duration {
        let state = self.lock();
        self.current_window(&state) / self.per_window as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn request(budget: &Budget, takes: Duration, outcome: Outcome) {
        let permit = budget.acquire().await;
        tokio::time::sleep(takes).await;
        permit.finish(outcome);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_at_the_configured_rate() {
        let budget = Budget::new(1.0);
        let start = Instant::now();
        for _ in 0..5 {
            request(&budget, Duration::ZERO, Outcome::Answered).await;
        }
        // The first request goes at once, the next four one window (plus margin) apart.
        assert_eq!(start.elapsed(), (Duration::from_secs(1) + CLOCK_MARGIN) * 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_counts_from_the_answer_not_the_send() {
        // At 2/s two requests may go together; the third waits until the first was answered
        // a full second ago, however long the first took.
        let budget = Budget::new(50.0);
        let start = Instant::now();
        request(&budget, Duration::from_millis(300), Outcome::Answered).await;
        request(&budget, Duration::from_millis(10), Outcome::Answered).await;
        assert_eq!(start.elapsed(), Duration::from_millis(310));
        let _third = budget.acquire().await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(1300) + CLOCK_MARGIN,
            "the first answer came at 300 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_holds_its_place_until_answered() {
        let budget = std::sync::Arc::new(Budget::new(1.0));
        let start = Instant::now();
        let slow = budget.acquire().await;
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move {
                let _permit = budget.acquire().await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        slow.finish(Outcome::Answered);
        let second = waiter.await.unwrap();
        assert_eq!(second - start, Duration::from_secs(6) + CLOCK_MARGIN);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_backs_off_and_success_recovers() {
        let budget = Budget::new(1.0);
        request(&budget, Duration::ZERO, Outcome::Throttled).await;
        request(&budget, Duration::ZERO, Outcome::Throttled).await;
        assert_eq!(budget.spacing(), Duration::from_secs(4) + CLOCK_MARGIN);
        for _ in 0..20 {
            request(&budget, Duration::ZERO, Outcome::Answered).await;
        }
        assert_eq!(budget.spacing(), Duration::from_secs(1) + CLOCK_MARGIN);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_capped_at_the_api_limit() {
        let budget = Budget::new(50.0);
        assert_eq!(
            budget.spacing(),
            (Duration::from_secs(1) + CLOCK_MARGIN) / 2
        );
    }

    #[tokio::test(start_paused = true)]
    async fn would_delay_tells_whether_a_request_now_gets_in_the_way() {
        let budget = Budget::new(1.0);
        request(&budget, Duration::from_millis(100), Outcome::Answered).await;
        let now = Instant::now();
        // One request per second: a request now waits for its window (1 s after the last
        // answer) and is answered about 200 ms later, which pushes the next one past 2 s...
        assert!(budget.would_delay(now + Duration::from_millis(500)));
        assert!(budget.would_delay(now + Duration::from_secs(2)));
        // ...but not past 2.5 s.
        assert!(!budget.would_delay(now + Duration::from_millis(2500)));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_users_share_one_budget() {
        let budget = std::sync::Arc::new(Budget::new(1.0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let budget = budget.clone();
                tokio::spawn(
                    async move { request(&budget, Duration::ZERO, Outcome::Answered).await },
                )
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(start.elapsed(), (Duration::from_secs(1) + CLOCK_MARGIN) * 5);
    }
}
