//! The CloudTrail log files a scan reads: the paths given, directories walked, `.json` and
//! `.json.gz` as the trail writes them to S3.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::ScanError;

/// The text of a `.json` or `.json.gz` file.
pub(crate) fn read_trail_file(path: &Path) -> Result<String, ScanError> {
    let read = |source| ScanError::Read {
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::read(path).map_err(read)?;
    let not_a_trail_file = |reason: String| ScanError::NotATrailFile {
        path: path.to_owned(),
        reason,
    };
    // Decompressed from memory: an error here is the data's (not UTF-8, truncated, corrupt),
    // not the file system's, and says so rather than "cannot read".
    let (bytes, inside) = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut text)
            .map_err(|e| not_a_trail_file(format!("its gzip data is truncated or corrupt: {e}")))?;
        (text, " inside the gzip")
    } else {
        (bytes, "")
    };
    String::from_utf8(bytes).map_err(|e| not_a_trail_file(format!("not UTF-8 text{inside}: {e}")))
}

/// The `.json` / `.json.gz` files under the given paths (directories walked), sorted.
pub(crate) fn trail_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScanError> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        let meta = std::fs::metadata(&path).map_err(|source| ScanError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(&path).map_err(|source| ScanError::Read {
                path: path.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| ScanError::Read {
                    path: path.clone(),
                    source,
                })?;
                let child = entry.path();
                let name = child.to_string_lossy();
                if child.is_dir() || name.ends_with(".json") || name.ends_with(".json.gz") {
                    pending.push(child);
                }
            }
        } else {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn read(bytes: &[u8]) -> Result<String, ScanError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json.gz");
        std::fs::write(&path, bytes).unwrap();
        read_trail_file(&path)
    }

    #[test]
    fn invalid_utf8_inside_a_gzipped_file_is_not_a_trail_file_rather_than_a_read_error() {
        match read(&gzip(&[0x80])) {
            Err(ScanError::NotATrailFile { path, reason }) => {
                assert!(path.ends_with("x.json.gz"));
                assert!(
                    reason.starts_with("not UTF-8 text inside the gzip"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_truncated_gzipped_file_says_its_gzip_data_is_truncated_rather_than_cannot_read() {
        let whole = gzip(br#"{"Records": []}"#);
        match read(&whole[..whole.len() - 1]) {
            Err(error @ ScanError::NotATrailFile { .. }) => {
                let shown = error.to_string();
                assert!(shown.contains("x.json.gz"), "{shown}");
                assert!(
                    shown.contains("gzip data is truncated or corrupt"),
                    "{shown}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
