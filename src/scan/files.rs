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

/// What a walk of the given paths found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TrailFiles {
    /// The `.json` / `.json.gz` files, sorted.
    pub files: Vec<PathBuf>,
    /// Directories reached again through a symbolic link (a loop, or a second way to the same
    /// directory), each with the path it was first read by: read once, reported once each.
    pub loops: Vec<(PathBuf, PathBuf)>,
}

/// The `.json` / `.json.gz` files under the given paths (directories walked, symbolic links
/// followed), sorted. Every directory is read once, by (device, inode): a link back to a
/// parent is a loop, reported in [`TrailFiles::loops`], not followed for ever.
pub(crate) fn trail_files(paths: &[PathBuf]) -> Result<TrailFiles, ScanError> {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;
    let mut found = TrailFiles::default();
    let mut visited: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut pending: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    while let Some(path) = pending.pop() {
        let meta = std::fs::metadata(&path).map_err(|source| ScanError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            if let Some(first) = visited.get(&(meta.dev(), meta.ino())) {
                found.loops.push((path, first.clone()));
                continue;
            }
            visited.insert((meta.dev(), meta.ino()), path.clone());
            let entries = std::fs::read_dir(&path).map_err(|source| ScanError::Read {
                path: path.clone(),
                source,
            })?;
            let mut children = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|source| ScanError::Read {
                    path: path.clone(),
                    source,
                })?;
                let child = entry.path();
                let name = child.to_string_lossy();
                if child.is_dir() || name.ends_with(".json") || name.ends_with(".json.gz") {
                    children.push(child);
                }
            }
            // Depth first in name order, so the first path to a directory is the same on
            // every run (and the one a loop report names).
            children.sort();
            pending.extend(children.into_iter().rev());
        } else {
            found.files.push(path);
        }
    }
    found.files.sort();
    found.files.dedup();
    Ok(found)
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

    /// `logs/2026/loop -> ..` (a link to its parent) and `logs/again -> 2026` (a second way to
    /// the same directory): every file once, each repeat reported once, and the walk ends.
    #[test]
    fn symbolic_link_loops_are_read_once_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let year = logs.join("2026");
        std::fs::create_dir_all(&year).unwrap();
        std::fs::write(year.join("a.json"), "{}").unwrap();
        std::fs::write(logs.join("b.json.gz"), "").unwrap();
        std::os::unix::fs::symlink("..", year.join("loop")).unwrap();
        std::os::unix::fs::symlink("2026", logs.join("again")).unwrap();

        let found = trail_files(std::slice::from_ref(&logs)).unwrap();
        assert_eq!(found.files, [year.join("a.json"), logs.join("b.json.gz")]);
        assert_eq!(
            found.loops,
            [
                (year.join("loop"), logs.clone()),
                (logs.join("again"), year.clone()),
            ]
        );
    }
}
