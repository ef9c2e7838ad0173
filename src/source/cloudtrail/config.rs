//! `[poller]`: the LookupEvents budget and the schedule of its passes.

use std::time::Duration;

use serde::Deserialize;

use super::schedule::Schedule;
use crate::config::problem::Problems;
use crate::config::{defaults, values};

/// The catalogue's listed calls are few and each group needs its own lookups (one attribute per
/// call), so their fast passes run at most once a minute: 1 request a minute per stream while
/// idle, plus its sweep (see the README's cost per stream). Member accounts may read them less
/// often (`accounts.listed_interval`), never more often.
pub const LISTED_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// Where the poller starts when it has no stored cursor yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// Only events from start-up on.
    Now,
    /// Events from this long before the first start.
    Ago(Duration),
}

/// The LookupEvents poller.
#[derive(Debug, Clone, PartialEq)]
pub struct PollerConfig {
    /// Request budget per account and region, in (0, 2].
    pub requests_per_second: f64,
    /// How often the short window is polled.
    pub poll_interval: Duration,
    /// How far back each frequent poll looks (at least `poll_interval`).
    pub short_window: Duration,
    /// How often the delivery-delay horizon is swept.
    pub sweep_interval: Duration,
    /// How far back a sweep looks.
    pub sweep_horizon: Duration,
    /// Where the first start begins.
    pub start_from: StartFrom,
}

impl PollerConfig {
    /// When each pass runs and what it reads.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            poll_interval: self.poll_interval,
            fast_window: self.short_window,
            sweep_interval: self.sweep_interval,
            sweep_horizon: self.sweep_horizon,
            start_from: match self.start_from {
                StartFrom::Now => Duration::ZERO,
                StartFrom::Ago(ago) => ago,
            },
        }
    }

    /// How old the last completed poll pass may be before `/healthz` fails (and the systemd
    /// watchdog is no longer fed): three sweep (or poll) intervals, so one slow or failed
    /// pass is not an outage but a stuck poller is.
    pub(crate) fn health_max_age(&self) -> Duration {
        self.sweep_interval.max(self.poll_interval) * 3
    }
}

/// `[poller]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawPoller {
    /// LookupEvents requests per second, shared by every query.
    requests_per_second: f64,
    /// How often the short window is polled.
    #[serde(deserialize_with = "values::duration")]
    poll_interval: Duration,
    /// How far back each frequent poll looks.
    #[serde(deserialize_with = "values::duration")]
    short_window: Duration,
    /// How often the delivery-delay horizon is swept.
    #[serde(deserialize_with = "values::duration")]
    sweep_interval: Duration,
    /// How far back a sweep looks.
    #[serde(deserialize_with = "values::duration")]
    sweep_horizon: Duration,
    /// `"now"` or a duration back from the first start.
    start_from: String,
}

impl Default for RawPoller {
    fn default() -> Self {
        RawPoller {
            requests_per_second: defaults::REQUESTS_PER_SECOND,
            poll_interval: defaults::POLL_INTERVAL,
            short_window: defaults::SHORT_WINDOW,
            sweep_interval: defaults::SWEEP_INTERVAL,
            sweep_horizon: defaults::SWEEP_HORIZON,
            start_from: "now".to_owned(),
        }
    }
}

impl RawPoller {
    /// `sweep_interval` as written, for the sections checked against it without `[poller]`'s
    /// own validation (`deploy` reads `[accounts]`).
    pub(crate) fn sweep_interval(&self) -> Duration {
        self.sweep_interval
    }

    /// Validates `[poller]`: a budget within the API's limit, windows that leave no gap.
    pub(crate) fn validate(&self, problems: &mut Problems) -> PollerConfig {
        let raw = self;
        let rps = raw.requests_per_second;
        let limit = crate::aws::LOOKUP_EVENTS_REQUESTS_PER_SECOND;
        if !(rps > 0.0 && rps <= limit) {
            problems.error(
                "poller.requests_per_second",
                format!(
                    "must be greater than 0 and at most {limit} (AWS allows LookupEvents {limit} \
                 requests/s per account and region, shared with everyone else using it, the \
                 console included; going over means throttling), got {rps}"
                ),
            );
        }
        if raw.poll_interval < Duration::from_secs(1) {
            problems.error(
                "poller.poll_interval",
                format!(
                    "must be at least 1s, got {}",
                    values::show(raw.poll_interval)
                ),
            );
        }
        problems.at_least(
            ("poller.short_window", raw.short_window),
            ("poller.poll_interval", raw.poll_interval),
            ", or events between two polls are never read",
        );
        problems.at_least(
            ("poller.sweep_horizon", raw.sweep_horizon),
            ("poller.short_window", raw.short_window),
            ": the sweep catches what arrives later than the short window",
        );
        if raw.sweep_horizon > crate::aws::LOOKUP_EVENTS_RETENTION {
            problems.error(
                "poller.sweep_horizon",
                "must be at most 90d, LookupEvents' retention",
            );
        }
        if raw.sweep_interval.is_zero() || raw.sweep_interval > raw.sweep_horizon {
            problems.error(
                "poller.sweep_interval",
                format!(
                    "must be greater than 0 and at most poller.sweep_horizon ({}), or consecutive \
                 sweeps leave gaps; got {}",
                    values::show(raw.sweep_horizon),
                    values::show(raw.sweep_interval)
                ),
            );
        }
        let start_from = match raw.start_from.trim() {
            "now" => StartFrom::Now,
            text => match humantime::parse_duration(text) {
                Ok(d) if d <= crate::aws::LOOKUP_EVENTS_RETENTION => StartFrom::Ago(d),
                Ok(_) => {
                    problems.error(
                        "poller.start_from",
                        format!("must be at most 90d (LookupEvents keeps 90 days), got {text:?}"),
                    );
                    StartFrom::Now
                }
                Err(e) => {
                    problems.error(
                        "poller.start_from",
                        format!(
                            "must be \"now\" or a duration back such as \"1h\" or \"7d\", got \
                         {text:?} ({e})"
                        ),
                    );
                    StartFrom::Now
                }
            },
        };
        PollerConfig {
            requests_per_second: rps,
            poll_interval: raw.poll_interval,
            short_window: raw.short_window,
            sweep_interval: raw.sweep_interval,
            sweep_horizon: raw.sweep_horizon,
            start_from,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;

    #[test]
    fn durations_parse_and_are_checked_against_each_other() {
        let config = load_str(
            &format!("{MINIMAL}[poller]\npoll_interval = \"1m 30s\"\nshort_window = \"5m\"\nsweep_horizon = \"1h\"\nstart_from = \"7d\"\n[delivery]\nmax_age = \"2days\"\n"),
            &[],
        )
        .unwrap();
        assert_eq!(config.poller.poll_interval, Duration::from_secs(90));
        assert_eq!(config.poller.sweep_horizon, Duration::from_secs(3600));
        assert_eq!(
            config.poller.start_from,
            StartFrom::Ago(Duration::from_secs(7 * 86400))
        );
        assert_eq!(config.delivery.max_age, Duration::from_secs(2 * 86400));

        let found = problems(&format!("{MINIMAL}[poller]\npoll_interval = \"1m\"\nshort_window = \"30s\"\nstart_from = \"91d\"\n"));
        assert!(problem_at(&found, "poller.short_window")
            .message
            .contains("poll_interval"));
        assert!(problem_at(&found, "poller.start_from")
            .message
            .contains("90d"));
    }

    #[test]
    fn the_schedule_and_the_health_window_come_from_the_intervals() {
        let config = load_str(MINIMAL, &[]).unwrap().poller;
        let schedule = config.schedule();
        assert_eq!(schedule.fast_window, defaults::SHORT_WINDOW);
        assert_eq!(schedule.start_from, Duration::ZERO, "start_from = \"now\"");
        assert_eq!(config.health_max_age(), defaults::SWEEP_INTERVAL * 3);
    }
}
