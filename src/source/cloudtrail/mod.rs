//! The low-latency path: CloudTrail `LookupEvents`, polled within one request budget per
//! region ([`budget`]), a page at a time ([`lookup`]), on the [`schedule`] below, by one loop
//! per region ([`poller`]); and the same reads over the last days for `scan --since`
//! ([`history()`]).
//!
//! # Windows, and why two
//!
//! CloudTrail makes an event visible to LookupEvents minutes after it happened, and not in order.
//! Re-reading a long window on every poll would catch late arrivals but burns the budget on IAM
//! *reads*, which outnumber writes many times in real accounts (LookupEvents cannot filter them
//! out server-side: one lookup attribute per call, and ours is the event source). So each stream
//! is read in two kinds of pass:
//!
//! - a **fast pass** every `poll_interval` over the last `fast_window` (a little more than the
//!   interval): new events are reported within one interval of becoming visible;
//! - a **sweep** every `sweep_interval` from the durable cursor to now. After a complete sweep
//!   that ended at `T`, the cursor moves to `T - sweep_horizon`: anything that becomes visible up to
//!   `sweep_horizon` after it happened is still caught by a later sweep.
//!
//! Each event is therefore read about `fast_window / poll_interval + sweep_horizon /
//! sweep_interval` times; the duplicates are dropped by eventID in the store, and every pass logs
//! its pages and re-fetched events so the cost is visible. After a restart the first sweep starts
//! at the persisted cursor (up to the API's 90 days back), so nothing in between is missed.
//!
//! A `NextToken` is only valid with identical parameters, so each pass freezes its StartTime and
//! EndTime for all of its pages.

pub mod budget;
mod config;
mod history;
pub mod lookup;
pub mod poller;
mod region;
pub mod schedule;
pub mod stream;

pub(crate) use config::RawPoller;
pub use config::{PollerConfig, StartFrom, LISTED_POLL_INTERVAL};
pub use history::history;
