//! The public CloudTrail records in `tests/data/cloudtrail/`, for tests: where each comes from
//! and under which licence is in that directory's `SOURCES.md`. The end-to-end tests include
//! this file too (`tests/e2e/main.rs`), so both read the corpus the same way.

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

/// `tests/data/cloudtrail/` of this checkout.
pub(crate) fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cloudtrail")
}

/// The corpus of single records, one JSON object per line (`records.jsonl.gz`, gunzipped once
/// per test binary).
pub(crate) fn records_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(read_records)
}

fn read_records() -> String {
    let path = dir().join("records.jsonl.gz");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| {
        panic!(
            "the test corpus {} is missing: {e} (see tests/data/cloudtrail/README.md)",
            path.display()
        )
    });
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text
}
