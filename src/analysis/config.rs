//! `[analysis]`: whether policy changes are analysed, how long the daemon may spend looking
//! managed policies up in IAM before it reports a change with "previous version unknown", and
//! the seed of the policy snapshots from IAM, and whether IAM Access Analyzer is asked for a
//! second opinion (billed per call, so off unless asked for).

use std::time::Duration;

use serde::Deserialize;

use crate::config::problem::Problems;
use crate::config::values;

/// The analysis's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisConfig {
    /// Analyse policy changes at all.
    pub enabled: bool,
    /// Longest wait for one change's IAM lookups.
    pub lookup_timeout: Duration,
    /// Longest time all lookups of one batch of changes may take together.
    pub batch_budget: Duration,
    /// Seed the snapshots from IAM on the first start.
    pub seed_on_start: bool,
    /// The seed's requests per second at most.
    pub seed_requests_per_second: f64,
    /// The seed's requests per run at most (pages of 100 entities).
    pub seed_max_requests: u32,
    /// Ask IAM Access Analyzer for a second opinion on each change (billed per call by AWS).
    pub access_analyzer: bool,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        RawAnalysis::default().validate(&mut Problems::default())
    }
}

/// `[analysis]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawAnalysis {
    enabled: bool,
    #[serde(deserialize_with = "values::duration")]
    lookup_timeout: Duration,
    #[serde(deserialize_with = "values::duration")]
    batch_budget: Duration,
    seed_on_start: bool,
    seed_requests_per_second: f64,
    seed_max_requests: u32,
    access_analyzer: bool,
}

impl Default for RawAnalysis {
    fn default() -> Self {
        RawAnalysis {
            enabled: true,
            lookup_timeout: Duration::from_secs(5),
            batch_budget: Duration::from_secs(15),
            seed_on_start: true,
            seed_requests_per_second: 2.0,
            seed_max_requests: 100,
            access_analyzer: false,
        }
    }
}

impl RawAnalysis {
    /// Validates `[analysis]`.
    pub(crate) fn validate(&self, problems: &mut Problems) -> AnalysisConfig {
        if self.lookup_timeout.is_zero() || self.lookup_timeout > Duration::from_secs(60) {
            problems.error(
                "analysis.lookup_timeout",
                "must be between 1ms and 60s: a change waits for it before it is reported",
            );
        }
        if self.batch_budget < self.lookup_timeout || self.batch_budget > Duration::from_secs(120) {
            problems.error(
                "analysis.batch_budget",
                "must be at least analysis.lookup_timeout and at most 120s",
            );
        }
        if !(self.seed_requests_per_second > 0.0 && self.seed_requests_per_second <= 10.0) {
            problems.error(
                "analysis.seed_requests_per_second",
                "must be above 0 and at most 10 (be gentle with IAM)",
            );
        }
        if self.seed_max_requests == 0 {
            problems.error("analysis.seed_max_requests", "must be at least 1");
        }
        AnalysisConfig {
            enabled: self.enabled,
            lookup_timeout: self.lookup_timeout,
            batch_budget: self.batch_budget,
            seed_on_start: self.seed_on_start,
            seed_requests_per_second: self.seed_requests_per_second,
            seed_max_requests: self.seed_max_requests,
            access_analyzer: self.access_analyzer,
        }
    }
}
