//! When each pass runs and what it reads (see [`super`] for why there are two kinds).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::lookup::Window;

/// Timing of the passes (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// How often the fast pass runs.
    pub poll_interval: Duration,
    /// How far back a fast pass reads.
    pub fast_window: Duration,
    /// How often the sweep runs.
    pub sweep_interval: Duration,
    /// How late an event may become visible and still be caught by a sweep.
    pub sweep_horizon: Duration,
    /// On the very first start (no cursor): how far back to look.
    pub start_from: Duration,
}

/// Small, round timings for the unit tests; the daemon's come from `[poller]`
/// ([`super::PollerConfig::schedule`]), whose defaults differ.
#[cfg(test)]
impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            poll_interval: Duration::from_secs(10),
            fast_window: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(180),
            sweep_horizon: Duration::from_secs(15 * 60),
            start_from: Duration::from_secs(15 * 60),
        }
    }
}

fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

impl Schedule {
    /// The window of a fast pass at `now`.
    pub fn fast_window(&self, now: DateTime<Utc>) -> Window {
        Window {
            start: now - delta(self.fast_window),
            end: now,
        }
    }

    /// The window of a sweep at `now` from the stored cursor (or the first-start default),
    /// never beyond the API's retention.
    pub(crate) fn sweep_window(&self, cursor: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Window {
        let start = cursor
            .unwrap_or(now - delta(self.start_from))
            .max(now - delta(crate::aws::LOOKUP_EVENTS_RETENTION))
            .min(now);
        Window { start, end: now }
    }

    /// Where the cursor goes after a complete sweep that ended at `end`: events younger than
    /// the horizon may still become visible, so the next sweep reads them again. Never moves back.
    pub(crate) fn cursor_after_sweep(
        &self,
        previous: Option<DateTime<Utc>>,
        end: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let next = end - delta(self.sweep_horizon);
        previous.map_or(next, |p| p.max(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn sweep_starts_at_the_cursor_and_never_beyond_retention() {
        let schedule = Schedule::default();
        let now = at("2026-11-25T12:00:00Z");
        let cursor = at("2026-11-25T11:00:00Z");
        assert_eq!(schedule.sweep_window(Some(cursor), now).start, cursor);
        let ancient = at("2025-01-01T00:00:00Z");
        assert_eq!(
            schedule.sweep_window(Some(ancient), now).start,
            now - delta(crate::aws::LOOKUP_EVENTS_RETENTION)
        );
        assert_eq!(
            schedule.sweep_window(None, now).start,
            at("2026-11-25T11:45:00Z"),
            "first start looks back start_from"
        );
    }

    #[test]
    fn cursor_trails_the_sweep_by_the_horizon_and_never_moves_back() {
        let schedule = Schedule::default();
        let end = at("2026-11-25T12:00:00Z");
        assert_eq!(
            schedule.cursor_after_sweep(None, end),
            at("2026-11-25T11:45:00Z")
        );
        let later = at("2026-11-25T11:50:00Z");
        assert_eq!(schedule.cursor_after_sweep(Some(later), end), later);
    }
}
