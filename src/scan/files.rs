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
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .map_err(read)?;
        Ok(text)
    } else {
        String::from_utf8(bytes).map_err(|e| ScanError::NotATrailFile {
            path: path.to_owned(),
            reason: format!("not UTF-8 text: {e}"),
        })
    }
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
