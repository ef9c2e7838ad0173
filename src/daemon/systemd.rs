//! What the daemon tells systemd (`Type=notify`): READY once it runs, WATCHDOG only while
//! polling makes progress, STOPPING when it stops. Outside systemd every call does nothing.

use std::time::Duration;

use chrono::Utc;

use crate::metrics::Metrics;

/// How often the watchdog is considered.
const WATCHDOG_TICK: Duration = Duration::from_secs(10);

/// Start-up is done: systemd may consider the service started.
pub(crate) fn ready() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
}

/// The daemon is stopping.
pub(crate) fn stopping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}

/// Feeds the systemd watchdog while the poller makes progress (or is still within `grace` of
/// the start), so systemd restarts a daemon whose polling is stuck, not only a dead one.
/// Never returns.
pub(crate) async fn watchdog(metrics: &Metrics, grace: Duration) {
    let started = Utc::now();
    let grace = chrono::TimeDelta::from_std(grace).unwrap_or_default();
    let mut tick = tokio::time::interval(WATCHDOG_TICK);
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
