//! iamwatchd tells an AWS administrator, fast and exactly once, whenever anyone changes IAM
//! (users, roles, groups, policies, keys, MFA, trust policies, identity providers) and whenever
//! someone tampers with the monitoring itself.
//!
//! Two paths watch the same CloudTrail records. The classic stack (trail → CloudWatch Logs →
//! metric filter → alarm → SNS) is complete but slow and says nothing about who did what; the
//! daemon polls CloudTrail `LookupEvents` for the detail and the speed, and deduplicates both
//! paths by `eventID`.
//!
//! # Layout
//!
//! In data-flow order:
//!
//! - [`config`]: the TOML file plus `IAMWATCHD__*` environment overrides, parsed and then
//!   validated in full (every problem at once, each with its key path) into a typed `Config`.
//! - [`aws`]: the one place AWS SDK configuration is built (region, retries). Endpoints come
//!   only from the standard chain (`AWS_ENDPOINT_URL`), so the local emulator and real AWS run
//!   the same code.
//! - [`source`]: CloudTrail `LookupEvents`, read in fast passes and sweeps within one shared
//!   request budget; and the alarm path: the CloudWatch alarm heard through SQS, its window
//!   read back from the trail's log group.
//! - [`event`]: the CloudTrail record, read tolerantly, and who / what / where of a change.
//! - [`rules`]: the one rule catalogue — which records are IAM changes or tampering, their
//!   severity, the allow-list, and the CloudWatch Logs filter patterns generated from the same
//!   constants, so the daemon and the alarm never disagree.
//! - [`store`]: the durable state (SQLite): cursors, every seen `eventID`, and the per-notifier
//!   outbox, written together in one transaction so nothing is lost or repeated across crashes.
//! - [`notify`]: one rendering of an alert (subject, text, HTML; untrusted strings made safe)
//!   and the notifiers that deliver it: SMTP (lettre) and SNS.
//! - [`service`]: `iamwatchd run` — the poller, the alarm path, the rules, the store and one
//!   delivery worker per notifier, the alarm path's health check, graceful shutdown and
//!   systemd notifications.
//! - [`probe`]: `iamwatchd health`, the container health check's client for `/healthz`.
//! - [`scan`]: the same rules over LookupEvents history or CloudTrail log files, for incident
//!   response and audits.
//! - [`metrics`]: the optional local HTTP listener with `/metrics` (Prometheus) and
//!   `/healthz`, fed by the poller, the store sink, the delivery workers and the store.
//! - [`check`]: `iamwatchd check` — the configuration, then the environment (credentials,
//!   region, the stack and its parts, each notifier), as a checklist with the fix for each
//!   problem.
//! - [`template`]: the CloudFormation template of the alarm path, with the rules' patterns.
//! - [`deploy`]: creates, updates and deletes that stack through change sets, showing progress.
//!
//! The local AWS emulator the tests and the demo run on lives in `tests/emulator/` (Python,
//! moto plus our plugin); `tests/e2e/` drives it through the real SDK.

pub mod analysis;
pub mod aws;
pub mod check;
pub mod config;
pub mod daemon;
pub mod event;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod probe;
pub mod rules;
pub mod scan;
pub mod source;
pub mod stack;
pub mod store;

#[cfg(test)]
mod testdata;
