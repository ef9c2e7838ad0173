//! How an analysis of the policy a change grants moves the rules' severity: a verdict raises
//! it (admin-equivalent and privilege-escalation to CRITICAL, the others to at least HIGH),
//! with the verdict's reason in the message; a change that only removes permissions lowers
//! it one level. An attempt stays one level below what the change would have been.

use super::{Classification, Severity};
use crate::analysis::{Analysis, VerdictKind};

/// `classification` adjusted by `analysis`.
pub(crate) fn with_analysis(classification: Classification, analysis: &Analysis) -> Classification {
    let mut c = classification;
    if let Some(verdict) = analysis.strongest() {
        let mut floor = match verdict.kind {
            VerdictKind::AdminEquivalent | VerdictKind::PrivilegeEscalation => Severity::Critical,
            _ => Severity::High,
        };
        if c.attempt {
            floor = floor.lower();
        }
        if c.severity < floor {
            c.severity = floor;
        }
        c.reason = format!(
            "{}: {} ({})",
            verdict.kind.as_str(),
            verdict.reason,
            c.reason
        );
    } else if analysis.removal_only() && !c.attempt {
        let before = c.severity;
        c.severity = before.lower();
        c.reason = format!(
            "the change only removes permissions (one level below {before}): {}",
            c.reason
        );
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Verdict;
    use crate::rules::Category;

    fn classification(severity: Severity, attempt: bool) -> Classification {
        Classification {
            category: Category::IamChange,
            severity,
            attempt,
            reason: "an inline policy was set: new permissions".to_owned(),
        }
    }

    fn verdict(kind: VerdictKind) -> Analysis {
        Analysis {
            verdicts: vec![Verdict {
                kind,
                reason: "grants iam:PassRole + ec2:RunInstances".into(),
                source: "Rhino #3".into(),
            }],
            ..Analysis::default()
        }
    }

    #[test]
    fn verdicts_raise_and_removals_lower() {
        let raised = with_analysis(
            classification(Severity::High, false),
            &verdict(VerdictKind::PrivilegeEscalation),
        );
        assert_eq!(raised.severity, Severity::Critical);
        assert!(
            raised
                .reason
                .starts_with("privilege-escalation: grants iam:PassRole"),
            "{}",
            raised.reason
        );
        let attempt = with_analysis(
            classification(Severity::Medium, true),
            &verdict(VerdictKind::AdminEquivalent),
        );
        assert_eq!(attempt.severity, Severity::High);
        let trust = with_analysis(
            classification(Severity::Medium, false),
            &verdict(VerdictKind::TrustWidened),
        );
        assert_eq!(trust.severity, Severity::High);
        let kept = with_analysis(
            classification(Severity::Critical, false),
            &verdict(VerdictKind::MfaConditionRemoved),
        );
        assert_eq!(kept.severity, Severity::Critical);
        let removal = Analysis {
            removed: vec!["- Allow s3:GetObject on *".into()],
            previous_known: true,
            ..Analysis::default()
        };
        let lowered = with_analysis(classification(Severity::High, false), &removal);
        assert_eq!(lowered.severity, Severity::Medium);
        assert!(
            lowered
                .reason
                .contains("only removes permissions (one level below HIGH)"),
            "{}",
            lowered.reason
        );
        let nothing = with_analysis(classification(Severity::High, false), &Analysis::default());
        assert_eq!(nothing, classification(Severity::High, false));
    }
}
