//! Property tests of the trail-file reader behind `scan --files`: any text where a trail file
//! is expected, records of any shape inside one, gzip around invalid UTF-8, truncated or
//! corrupt gzip. Nothing may panic; a file that is not a trail file is refused with an error
//! that names it and says why; a record that cannot be read is counted, not fatal.

use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{read_trail_file, scan_text, ScanError, Tally};
use crate::hostile::{config, deep_json, hostile_string, json_value, record_json};
use crate::hostile::{report_everything, CASES};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A `Records` entry: a record of any shape, any JSON, or nesting past the recursion limit.
fn entry() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => record_json().prop_map(|v| v.to_string()),
        2 => json_value().prop_map(|v| v.to_string()),
        1 => deep_json().prop_map(|(_, text)| text),
    ]
}

/// What `scan_text` must make of `text`, whatever it is.
fn check_scan(text: &str, entries: Option<usize>) -> Result<(), TestCaseError> {
    let mut tally = Tally::default();
    let mut ids = Vec::new();
    let result = scan_text(
        text,
        Path::new("t.json"),
        &report_everything(),
        &mut tally,
        &mut |r, f| {
            assert_eq!(r.event_id, f.event_id);
            ids.push(f.event_id);
            true
        },
    );
    match result {
        Ok(()) => {
            prop_assert_eq!(tally.files, 1);
            if let Some(entries) = entries {
                prop_assert_eq!(tally.records, entries);
            }
            prop_assert_eq!(tally.findings, ids.len());
            prop_assert!(tally.findings + tally.unreadable <= tally.records);
        }
        Err(ScanError::NotATrailFile { path, reason }) => {
            prop_assert_eq!(path, Path::new("t.json"));
            prop_assert!(!reason.is_empty());
            prop_assert!(entries.is_none(), "a Records array refused: {reason}");
            prop_assert_eq!(tally, Tally::default());
        }
        Err(other) => prop_assert!(false, "{other}"),
    }
    Ok(())
}

/// Writes `bytes` as `name` in a fresh directory and reads it back as a trail file.
fn read_back(name: &str, bytes: &[u8]) -> (tempfile::TempDir, Result<String, ScanError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let read = read_trail_file(&path);
    (dir, read)
}

proptest! {
    #![proptest_config(config(700))]

    #[test]
    fn any_records_array_scans_and_counts_every_entry(
        entries in prop::collection::vec(entry(), 0..12)
    ) {
        let text = format!("{{\"Records\": [{}]}}", entries.join(","));
        check_scan(&text, Some(entries.len()))?;
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn any_other_text_is_refused_with_the_reason(text in hostile_string()) {
        check_scan(&text, None)?;
    }

    #[test]
    fn any_other_json_is_refused_unless_it_has_a_records_array(value in json_value()) {
        let entries = value.get("Records").and_then(Value::as_array).map(Vec::len);
        check_scan(&value.to_string(), entries)?;
    }

    #[test]
    fn a_gzipped_file_reads_as_its_text_or_is_refused_as_not_utf8(
        bytes in prop::collection::vec(any::<u8>(), 0..2_000)
    ) {
        let (_dir, read) = read_back("x.json.gz", &gzip(&bytes));
        match (String::from_utf8(bytes), read) {
            (Ok(text), Ok(read)) => prop_assert_eq!(text, read),
            (Err(_), Err(ScanError::NotATrailFile { path, reason })) => {
                prop_assert!(path.ends_with("x.json.gz"));
                prop_assert!(reason.contains("UTF-8"), "{reason}");
            }
            (_, read) => prop_assert!(false, "{read:?}"),
        }
    }
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn a_truncated_or_corrupt_gzip_file_is_refused_naming_the_file(
        records in prop::collection::vec(record_json(), 1..4),
        cut in any::<prop::sample::Index>(),
        flip in prop::option::of((any::<prop::sample::Index>(), 1u8..=255)),
    ) {
        let text = json!({"Records": records}).to_string();
        let mut bytes = gzip(text.as_bytes());
        if let Some((at, mask)) = flip {
            let at = at.index(bytes.len() - 2) + 2; // keep the gzip magic
            bytes[at] ^= mask;
        }
        let kept = cut.index(bytes.len());
        bytes.truncate(kept.max(2));
        let (_dir, read) = read_back("x.json.gz", &bytes);
        match read {
            // A flipped bit in the name or comment fields can leave the data intact.
            Ok(read) => prop_assert_eq!(read, text),
            Err(error @ ScanError::NotATrailFile { .. }) => {
                let shown = error.to_string();
                prop_assert!(shown.contains("x.json.gz"), "{shown}");
                prop_assert!(shown.contains("gzip"), "{shown}");
            }
            Err(other) => prop_assert!(false, "{other}"),
        }
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn a_plain_file_that_is_not_utf8_is_refused_as_such(
        bytes in prop::collection::vec(any::<u8>(), 0..2_000)
    ) {
        prop_assume!(!bytes.starts_with(&[0x1f, 0x8b]));
        let (_dir, read) = read_back("x.json", &bytes);
        match (String::from_utf8(bytes), read) {
            (Ok(text), Ok(read)) => prop_assert_eq!(text, read),
            (Err(_), Err(ScanError::NotATrailFile { reason, .. })) => {
                prop_assert!(reason.contains("UTF-8"), "{reason}");
            }
            (_, read) => prop_assert!(false, "{read:?}"),
        }
    }
}
