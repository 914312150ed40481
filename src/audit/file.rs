//! Audit records as JSON lines appended to a file, rotated by size: when
//! the next batch would take the file past `max_bytes`, `FILE` becomes
//! `FILE.1`, `FILE.1` becomes `FILE.2`, and so on up to `max_files`; the
//! oldest goes. Writes run on the blocking pool, never on a check's thread.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::record::AuditRecord;

/// The file and where it stands; moved to the blocking pool for each write.
pub(super) struct FileSink {
    state: Option<FileState>,
}

struct FileState {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    /// Opened at the first write, and again after a rotation or an error.
    file: Option<File>,
    /// Bytes in the current file.
    size: u64,
}

impl FileSink {
    pub(super) fn new(path: PathBuf, max_bytes: u64, max_files: usize) -> FileSink {
        FileSink {
            state: Some(FileState {
                path,
                max_bytes,
                max_files,
                file: None,
                size: 0,
            }),
        }
    }

    /// Appends `batch`, one line per record.
    pub(super) async fn append(&mut self, batch: &[AuditRecord]) -> Result<(), String> {
        let mut lines = Vec::with_capacity(batch.len() * 512);
        for record in batch {
            record.json_line(&mut lines);
        }
        let Some(mut state) = self.state.take() else {
            return Err("the audit file writer was lost".to_owned());
        };
        let (state, result) = tokio::task::spawn_blocking(move || {
            let result = state.append(&lines);
            (state, result)
        })
        .await
        .map_err(|e| format!("the audit file writer failed: {e}"))?;
        self.state = Some(state);
        result
    }
}

impl FileState {
    fn append(&mut self, lines: &[u8]) -> Result<(), String> {
        let len = lines.len() as u64;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let file = open(&self.path)?;
                self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
                self.file.insert(file)
            }
        };
        if let Err(error) = file.write_all(lines) {
            // Reopened at the next write, in case the file was removed.
            self.file = None;
            return Err(format!("{}: {error}", self.path.display()));
        }
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), String> {
        self.file = None;
        self.size = 0;
        let numbered = |n: usize| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        if self.max_files == 0 {
            return std::fs::remove_file(&self.path)
                .map_err(|e| format!("{}: {e}", self.path.display()));
        }
        for n in (1..self.max_files).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))
                    .map_err(|e| format!("{}: {e}", from.display()))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// Opens `path` for appending, readable by its owner and group only: the
/// records name callers.
fn open(path: &Path) -> Result<File, String> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}
