//! iamwatchd tells an AWS administrator, fast and exactly once, whenever anyone changes who can
//! do what — IAM (users, roles, groups, policies, keys, MFA, trust policies, identity
//! providers), IAM Identity Center, Organizations' policies and accounts — whenever the root
//! user is used or someone signs in to the console without MFA, and whenever someone tampers
//! with the monitoring: its own or the security services'.
//!
//! Two paths watch the same CloudTrail records. The classic stack (trail → CloudWatch Logs →
//! metric filter → alarm → SNS) is complete but slow and says nothing about who did what; the
//! daemon polls CloudTrail `LookupEvents` for the detail and the speed, and deduplicates both
//! paths by `eventID`. The facts about AWS that shape the code are in [`aws`]'s documentation.
//!
//! ```text
//!   LookupEvents ─poll─►┐
//!                       ├► Reporter: rules → render → store (dedup, outbox) ─► delivery ─► notifiers
//!   alarm ─► SQS ──────►┘              (one transaction)
//! ```
//!
//! # Layout
//!
//! The stages, in data-flow order (each imports only the ones above it):
//!
//! - [`aws`]: the one SDK loader, one reading of SDK errors, one ARN parser, the facts about
//!   AWS, and the registry that keeps the shipped IAM policies equal to the SDK calls.
//! - [`event`]: the CloudTrail record, read tolerantly, and which watcher saw it.
//! - [`text`]: which characters of untrusted text are unsafe to show (controls, bidi).
//! - [`config`]'s kit (`problem`, `values`, `shapes`, `secret`, `defaults`): how every
//!   section reports problems and checks its values; each component's own section lives with
//!   the component.
//! - [`analysis`]: what an IAM policy document says (one parser for the whole crate) and what a
//!   change to one grants: the grants added and removed and the verdicts on them.
//! - [`rules`]: the one rule catalogue (which records are IAM changes, tampering, Identity
//!   Center or Organizations changes, root use, console sign-ins without MFA; how severe; the
//!   filter patterns generated from it), the allow-list, and the configured [`rules::Ruleset`].
//! - [`stack`]`::names`: the names and limits the stack's template shares with everything else.
//! - [`source`]: where records come from — CloudTrail `LookupEvents` ([`source::cloudtrail`])
//!   and the alarm heard through SQS ([`source::alarm`]) — each handing them to one
//!   [`source::Intake`].
//! - [`accounts`]: the member accounts of an organization (`[accounts]`): which ones
//!   (a static list, discovery through Organizations), AssumeRole into each, and one
//!   [`source::cloudtrail`] poller per account as accounts come and go; the roster of names the
//!   messages show.
//! - [`notify`]: one rendering of an alert (untrusted text made safe) and the notifiers (SMTP,
//!   SNS), built by one factory.
//! - [`store`]: the durable state (SQLite): cursors, every seen `eventID`, the per-notifier
//!   outbox, written together in one transaction so nothing is lost or repeated.
//! - [`metrics`]: `/metrics` and `/healthz`.
//! - [`pipeline`]: the [`pipeline::Reporter`] every source hands records to (judge, render,
//!   record), the delivery workers, the alarm path's health, housekeeping.
//! - [`config`]: the aggregate: the file layered with `IAMWATCHD__*` variables, every
//!   section validated, every problem at once.
//!
//! The commands:
//!
//! - [`daemon`]: `iamwatchd run`, and `scan --notify`'s one-off delivery.
//! - [`scan`]: `iamwatchd scan`, the same rules over history or trail files.
//! - [`check`]: `iamwatchd check`, the checklist with the fix for each problem.
//! - [`stack`]: `iamwatchd template` and `iamwatchd deploy`.
//! - [`probe`]: `iamwatchd health`, the container health check's client.
//! - [`output`]: what every command prints on stdout, quiet when the reader went away.
//!
//! The local AWS emulator the tests and the demo run on lives in `tests/emulator/` (Python,
//! moto plus our plugin); `tests/e2e/` drives it through the real SDK. The public CloudTrail
//! records the tests use are in `tests/data/cloudtrail/`.

#![warn(missing_docs)]
// These pages are for the crate's developers: `cargo doc --document-private-items` shows every
// module, and the overviews link to the private items they explain.
#![allow(rustdoc::private_intra_doc_links)]

pub mod accounts;
pub mod analysis;
pub mod aws;
pub mod check;
pub mod config;
pub mod daemon;
pub mod event;
pub mod metrics;
pub mod notify;
pub mod output;
pub(crate) mod pipeline;
pub mod probe;
pub mod rules;
pub mod scan;
pub mod source;
pub mod stack;
pub mod store;
pub(crate) mod text;

#[cfg(test)]
mod hostile;
#[cfg(test)]
mod testdata;
