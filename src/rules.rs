//! TEMPORARY placeholder for the rules module (branch `rules`): only the types the notifiers
//! need, under the names the rules module will define. Drop this commit when merging `rules`.

use std::fmt;

/// How urgently a human should look at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "INFO",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        })
    }
}

/// What kind of event it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    IamChange,
    Tampering,
}

/// The rules' verdict on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub category: Category,
    pub severity: Severity,
    /// The call failed (errorCode): an attempt, not a change.
    pub attempt: bool,
    /// Why this severity, in words for the message.
    pub reason: String,
}
