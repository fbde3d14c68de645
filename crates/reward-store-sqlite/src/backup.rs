//! A consistent copy of a live database (`reward backup`).
//!
//! `VACUUM INTO` reads the whole database in one read transaction, so the copy is the database as
//! of one instant even while `reward serve` keeps writing: in WAL mode a reader never blocks the
//! writer, and the writer never changes what an open read transaction sees. A plain file copy of
//! a WAL database is not consistent (the WAL holds committed pages the main file does not yet).
//! The copy is written beside its final name and renamed only after `PRAGMA integrity_check`
//! passes, so a failed backup never leaves a file that looks like one.

use std::path::{Path, PathBuf};

use rusqlite::OpenFlags;

use crate::connection;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} does not exist")]
    MissingSource(PathBuf),
    #[error("{0} already exists; back up to a new path")]
    TargetExists(PathBuf),
    #[error("{0} is not a Reward database (it has no accounts table)")]
    NotReward(PathBuf),
    #[error("cannot read {path}: {source}")]
    Source {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot write the copy {path}: {source}")]
    Copy {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the copy {path} failed its integrity check: {problem}")]
    Corrupt { path: PathBuf, problem: String },
    #[error("cannot finish the copy at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Copies the database at `source` to `target` (which must not exist) and checks the copy.
/// Returns the copy's size in bytes. Blocking: call it off the async runtime.
pub fn backup(source: &Path, target: &Path) -> Result<u64, BackupError> {
    if !source.exists() {
        return Err(BackupError::MissingSource(source.to_owned()));
    }
    if target.exists() {
        return Err(BackupError::TargetExists(target.to_owned()));
    }
    let partial = partial_path(target);
    // A partial copy left by an earlier, interrupted backup is ours to replace.
    remove_if_present(&partial)?;
    let outcome = copy_and_check(source, &partial);
    if outcome.is_err() {
        let _ = std::fs::remove_file(&partial);
        return outcome.map(|_| 0);
    }
    std::fs::rename(&partial, target).map_err(|source| BackupError::Io {
        path: target.to_owned(),
        source,
    })?;
    let bytes = std::fs::metadata(target)
        .map_err(|source| BackupError::Io {
            path: target.to_owned(),
            source,
        })?
        .len();
    Ok(bytes)
}

fn copy_and_check(source: &Path, partial: &Path) -> Result<(), BackupError> {
    let reading = connection::open_reader(source).map_err(|error| BackupError::Source {
        path: source.to_owned(),
        source: error,
    })?;
    let is_reward: bool = reading
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accounts')",
            [],
            |row| row.get(0),
        )
        .map_err(|error| BackupError::Source {
            path: source.to_owned(),
            source: error,
        })?;
    if !is_reward {
        return Err(BackupError::NotReward(source.to_owned()));
    }
    let target = partial.to_string_lossy().into_owned();
    reading
        .execute("VACUUM INTO ?1", [&target])
        .map_err(|error| BackupError::Copy {
            path: partial.to_owned(),
            source: error,
        })?;
    drop(reading);
    check_integrity(partial)
}

fn check_integrity(path: &Path) -> Result<(), BackupError> {
    let copy = rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| BackupError::Copy {
            path: path.to_owned(),
            source,
        })?;
    let mut statement =
        copy.prepare("PRAGMA integrity_check")
            .map_err(|source| BackupError::Copy {
                path: path.to_owned(),
                source,
            })?;
    let findings: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|source| BackupError::Copy {
            path: path.to_owned(),
            source,
        })?;
    if findings.len() == 1 && findings[0] == "ok" {
        Ok(())
    } else {
        Err(BackupError::Corrupt {
            path: path.to_owned(),
            problem: findings.join("; "),
        })
    }
}

fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    target.with_file_name(name)
}

fn remove_if_present(path: &Path) -> Result<(), BackupError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BackupError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_checked_and_never_overwrites() {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = dir.path().join("reward.db");
        let target = dir.path().join("copy.db");
        crate::SqliteStore::open(&source).expect("open");
        let bytes = backup(&source, &target).expect("backup");
        assert!(bytes > 0);
        assert!(!partial_path(&target).exists());
        assert!(matches!(
            backup(&source, &target),
            Err(BackupError::TargetExists(_))
        ));
        assert!(matches!(
            backup(&dir.path().join("none.db"), &dir.path().join("other.db")),
            Err(BackupError::MissingSource(_))
        ));
        let foreign = dir.path().join("foreign.db");
        rusqlite::Connection::open(&foreign)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
            .expect("foreign");
        assert!(matches!(
            backup(&foreign, &dir.path().join("foreign-copy.db")),
            Err(BackupError::NotReward(_))
        ));
        assert!(!dir.path().join("foreign-copy.db.partial").exists());
    }
}
