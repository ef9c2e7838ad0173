//! Every rule for untrusted text (see the parent module for why): one line, line breaks kept
//! and nothing else, cut with a visible marker, HTML-escaped, an ASCII subject for SNS, and the
//! bounds they keep.

/// Longest part (event name, target, principal, …) of a subject line, in characters.
pub(crate) const SUBJECT_PART_MAX_CHARS: usize = 200;
/// Longest single value in a body, in bytes.
pub(crate) const VALUE_MAX_BYTES: usize = 4096;
/// Request parameters shown at most; a record with more says how many were left out.
pub(crate) const MAX_PARAMETERS: usize = 32;
/// Longest text body: SNS accepts 256 KB per message, including the attributes.
pub(crate) const TEXT_MAX_BYTES: usize = 200 * 1024;
/// Longest console link any notifier sends. Slack's button takes 3,000 characters and Teams
/// and PagerDuty keep the whole event within 28 and 512 KB; a real console link is under 200,
/// so a longer one comes from a crafted event ID and is left out (the ID is in the message).
pub(crate) const LINK_MAX_BYTES: usize = 2_048;
/// SNS wants a subject "less than 100 characters long", ASCII, without control characters.
pub(crate) const SNS_SUBJECT_MAX_CHARS: usize = 99;

pub(crate) use crate::text::is_unsafe;

/// `value` on one line: every unsafe character becomes a space.
pub(crate) fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if is_unsafe(c) { ' ' } else { c })
        .collect()
}

/// `value` for a terminal: every unsafe character shown as its escape (`\u{202E}`, `\u{1b}`),
/// visible and inert, so a bidi override or an escape sequence in a role name can neither
/// reorder nor recolour the table, and the reader sees that it was there.
pub(crate) fn escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if is_unsafe(c) {
            out.push_str(&format!("\\u{{{:X}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// `value` with its line breaks kept (as `\n`) and every other unsafe character a space.
pub(crate) fn multi_line(value: &str) -> String {
    value
        .replace("\r\n", "\n")
        .chars()
        .map(|c| if c != '\n' && is_unsafe(c) { ' ' } else { c })
        .collect()
}

fn truncation_marker(full_bytes: usize) -> String {
    format!("… (truncated, {full_bytes} bytes)")
}

/// `value` cut to at most `max` bytes (at a character boundary) plus the marker.
pub(crate) fn cut_bytes(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{}", &value[..end], truncation_marker(value.len()))
}

/// `value` cut to at most `max` characters plus the marker.
pub(crate) fn cut_chars(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        None => value.to_owned(),
        Some((end, _)) => format!("{}{}", &value[..end], truncation_marker(value.len())),
    }
}

/// Escapes the five characters that matter in HTML text and attribute values.
pub(crate) fn html_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A subject part: one line, bounded.
pub(crate) fn part(value: &str) -> String {
    cut_chars(&one_line(value), SUBJECT_PART_MAX_CHARS)
}

/// A one-line body value, bounded.
pub(crate) fn single(value: &str) -> String {
    cut_bytes(&one_line(value), VALUE_MAX_BYTES)
}

/// `subject` within SNS's rules: ASCII only (arrows and ellipses spelled out, anything else
/// non-ASCII a `?`), no control characters, at most `max` characters.
pub(crate) fn ascii_subject(subject: &str, max: usize) -> String {
    let mut ascii = String::with_capacity(subject.len());
    for c in subject.chars() {
        match c {
            '→' => ascii.push_str("->"),
            '…' => ascii.push_str("..."),
            c if c.is_ascii() && !c.is_ascii_control() => ascii.push(c),
            c if c.is_ascii() || is_unsafe(c) => ascii.push(' '),
            _ => ascii.push('?'),
        }
    }
    if ascii.chars().count() > max {
        ascii.truncate(max.saturating_sub(3));
        ascii.push_str("...");
    }
    if ascii.trim().is_empty() {
        ascii = "[iamwatchd] alert".to_owned();
    }
    ascii
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_respects_character_boundaries_and_says_how_much_there_was() {
        let accents = "é".repeat(3000);
        let cut = cut_bytes(&accents, 4095);
        assert!(cut.starts_with(&"é".repeat(2047)));
        assert!(cut.ends_with("… (truncated, 6000 bytes)"));
        assert_eq!(cut_bytes("short", 10), "short");
        assert_eq!(cut_chars("ééé", 2), "éé… (truncated, 6 bytes)");
        assert_eq!(cut_chars("ééé", 3), "ééé");
    }

    #[test]
    fn sns_subjects_are_ascii_and_short() {
        assert_eq!(ascii_subject("a → b…\u{7}ü", 99), "a -> b... ?");
        let long = "x".repeat(300);
        let cut = ascii_subject(&long, SNS_SUBJECT_MAX_CHARS);
        assert_eq!(cut.len(), SNS_SUBJECT_MAX_CHARS);
        assert!(cut.ends_with("..."));
        assert_eq!(ascii_subject("\r\n", 99), "[iamwatchd] alert");
    }
}
