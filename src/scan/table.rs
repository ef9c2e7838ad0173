//! The terminal table of findings: fixed-width columns; untrusted text is cut and made one
//! line.

use super::Finding;
use crate::notify::render::escaped;

/// A fixed-width line for the terminal table; untrusted text is cut and made one line.
pub(crate) fn table_row(finding: &Finding) -> String {
    fn cell(text: &str, width: usize) -> String {
        let clean = escaped(text);
        if clean.chars().count() > width {
            let cut: String = clean.chars().take(width.saturating_sub(1)).collect();
            format!("{cut}…")
        } else {
            format!("{clean:<width$}")
        }
    }
    let kind = if finding.attempt { "attempt" } else { "change" };
    format!(
        "{} {} {} {} {} {} {}",
        cell(finding.event_time.as_deref().unwrap_or("-"), 25),
        cell(&finding.severity, 8),
        cell(kind, 7),
        cell(&finding.event_name, 28),
        cell(finding.target.as_deref().unwrap_or("-"), 32),
        cell(&finding.actor, 28),
        cell(finding.account.as_deref().unwrap_or("-"), 12),
    )
}

/// The table's header line, aligned with [`table_row`].
pub(crate) fn table_header() -> String {
    format!(
        "{:<25} {:<8} {:<7} {:<28} {:<32} {:<28} {:<12}",
        "TIME", "SEVERITY", "KIND", "EVENT", "TARGET", "BY", "ACCOUNT"
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::scan;
    use super::*;

    #[test]
    fn table_cells_are_one_line_and_bounded() {
        let (findings, _) = scan(
            r#"{"Records": [{"eventID": "1", "eventSource": "iam.amazonaws.com",
                "eventName": "CreateRole", "requestParameters": {"roleName": "a\r\nb\u202Every-long-role-name-that-goes-on-and-on"}}]}"#,
        );
        let row = table_row(&findings[0]);
        assert!(!row.contains('\n') && !row.contains('\r'));
        assert!(
            !row.contains('\u{202E}'),
            "a bidi override cannot reorder the terminal"
        );
        assert!(
            row.contains("a\\u{D}\\u{A}b\\u{202E}very"),
            "visible: {row}"
        );
        assert!(row.contains('…'));
    }

    #[test]
    fn controls_and_bidi_marks_are_escaped_in_the_table_and_exact_in_json() {
        let (findings, _) = scan(
            r#"{"Records": [{"eventID": "1", "eventSource": "iam.amazonaws.com",
                "eventName": "CreateRole", "requestParameters": {"roleName": "r\u001b[31m\u2066x\u0085"}}]}"#,
        );
        let row = table_row(&findings[0]);
        assert!(row.contains("r\\u{1B}[31m\\u{2066}x\\u{85}"), "{row}");
        assert!(
            !row.chars()
                .any(|c| c.is_control() || ('\u{2066}'..='\u{2069}').contains(&c)),
            "{row}"
        );
        let json = serde_json::to_string(&findings[0]).unwrap();
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        let target = back["target"].as_str().unwrap();
        assert!(
            target.contains("r\u{1b}[31m\u{2066}x\u{85}"),
            "--json keeps the exact name: {json}"
        );
    }
}
