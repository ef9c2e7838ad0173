//! What the daemon tells systemd (`Type=notify`): READY once it runs, WATCHDOG only while
//! polling makes progress, STOPPING when it stops. Outside systemd every call does nothing.

use std::time::Duration;

use chrono::Utc;

use crate::metrics::Metrics;

/// Start-up is done: systemd may consider the service started.
pub(crate) fn ready() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
}

/// The daemon is stopping.
pub(crate) fn stopping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}

/// How often to ping a watchdog of `timeout` (systemd's `WATCHDOG_USEC`): at half of it, as
/// sd_watchdog_enabled(3) advises; `None` (no pings) when no watchdog is set.
pub(crate) fn ping_interval(timeout: Option<Duration>) -> Option<Duration> {
    timeout
        .filter(|t| !t.is_zero())
        .map(|t| (t / 2).max(Duration::from_millis(1)))
}

/// Feeds the systemd watchdog while the poller makes progress (or is still within `grace` of
/// the start), so systemd restarts a daemon whose polling is stuck, not only a dead one.
/// Pings at half of `WatchdogSec=` (passed as `WATCHDOG_USEC`); without a watchdog it waits
/// for ever and wakes nobody. Never returns.
pub(crate) async fn watchdog(metrics: &Metrics, grace: Duration) {
    feed(metrics, grace, ping_interval(sd_notify::watchdog_enabled())).await
}

async fn feed(metrics: &Metrics, grace: Duration, every: Option<Duration>) {
    let Some(every) = every else {
        return std::future::pending().await;
    };
    let started = Utc::now();
    let grace = chrono::TimeDelta::from_std(grace).unwrap_or_default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut complained = false;
    loop {
        tick.tick().await;
        let now = Utc::now();
        match metrics.poller_health(now) {
            Err(reason) if now - started > grace => {
                if !complained {
                    tracing::error!(%reason, "not feeding the systemd watchdog");
                    complained = true;
                }
            }
            _ => {
                complained = false;
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_at_half_the_watchdog_timeout_and_not_at_all_without_one() {
        assert_eq!(ping_interval(None), None);
        assert_eq!(ping_interval(Some(Duration::ZERO)), None);
        assert_eq!(
            ping_interval(Some(Duration::from_secs(60))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            ping_interval(Some(Duration::from_micros(1))),
            Some(Duration::from_millis(1))
        );
    }
}
