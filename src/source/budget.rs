//! One request budget per account and region, shared by every LookupEvents query.
//!
//! CloudTrail allows 2 LookupEvents requests per second per account and region, for everyone in
//! the account: the daemon, humans in the console, other tools. The daemon spends a configured
//! share (default 1/s, never more than 2/s) and spaces its requests evenly, so it does not cause
//! throttling in normal operation. When it is throttled anyway (someone else is busy), the spacing
//! doubles for a while and recovers step by step on success.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// The API's hard limit, requests per second per account and region.
pub const API_LIMIT_PER_SECOND: f64 = 2.0;

/// The share of the API limit the daemon uses at most. Spacing requests exactly 500 ms apart
/// at 2/s lets network jitter land three in one second at the server, which throttles; a 5 %
/// margin keeps "the full rate" below the limit as the server counts it (the benchmark measured
/// 51 throttles in a 2/s backlog drain without it).
const LIMIT_HEADROOM: f64 = 0.95;

/// The longest spacing throttling can push us to.
const MAX_SPACING: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct State {
    next_slot: Instant,
    spacing: Duration,
}

/// Paces requests: at most one start per `spacing`, shared by all users of the budget.
#[derive(Debug)]
pub struct Budget {
    base: Duration,
    state: Mutex<State>,
}

impl Budget {
    /// A budget of `per_second` requests per second, capped just below the API's limit.
    pub fn new(per_second: f64) -> Budget {
        let rate = per_second.clamp(0.01, API_LIMIT_PER_SECOND * LIMIT_HEADROOM);
        let base = Duration::from_secs_f64(1.0 / rate);
        Budget {
            base,
            state: Mutex::new(State {
                next_slot: Instant::now(),
                spacing: base,
            }),
        }
    }

    /// Waits until a request may start, and books the slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut state = self.state.lock().await;
            let now = Instant::now();
            let slot = state.next_slot.max(now);
            state.next_slot = slot + state.spacing;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// The request was throttled: double the spacing (up to 30 s) and push the next slot out.
    pub async fn throttled(&self) {
        let mut state = self.state.lock().await;
        state.spacing = (state.spacing * 2).min(MAX_SPACING);
        state.next_slot = state.next_slot.max(Instant::now() + state.spacing);
    }

    /// The request succeeded: step the spacing back toward the configured rate.
    pub async fn succeeded(&self) {
        let mut state = self.state.lock().await;
        if state.spacing > self.base {
            state.spacing = (state.spacing * 3 / 4).max(self.base);
        }
    }

    /// The current spacing between requests (for metrics and logs).
    pub async fn spacing(&self) -> Duration {
        self.state.lock().await.spacing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_at_the_configured_rate() {
        let budget = Budget::new(1.0);
        let start = Instant::now();
        for _ in 0..5 {
            budget.acquire().await;
        }
        // The first request goes at once, the next four one second apart.
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_capped_just_below_the_api_limit() {
        let budget = Budget::new(50.0);
        let start = Instant::now();
        for _ in 0..20 {
            budget.acquire().await;
        }
        // 19 gaps at 1/1.9 s: never two requests closer than the limit allows, with margin.
        let elapsed = start.elapsed().as_secs_f64();
        assert!((elapsed - 19.0 / 1.9).abs() < 0.01, "{elapsed}");
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_backs_off_and_success_recovers() {
        let budget = Budget::new(1.0);
        budget.throttled().await;
        budget.throttled().await;
        assert_eq!(budget.spacing().await, Duration::from_secs(4));
        for _ in 0..20 {
            budget.succeeded().await;
        }
        assert_eq!(budget.spacing().await, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_users_share_one_budget() {
        let budget = std::sync::Arc::new(Budget::new(1.0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let budget = budget.clone();
                tokio::spawn(async move { budget.acquire().await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }
}
