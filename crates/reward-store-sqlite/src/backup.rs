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
    #[error("another backup to {0} is under way")]
    InProgress(PathBuf),
    #[error("{0} is not a Reward database (it has no accounts table)")]
    NotReward(PathBuf),
    #[error("cannot read {path}: {cause}")]
    Source {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error("cannot write the copy {path}: {cause}")]
    Copy {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error("the copy {path} failed its integrity check: {problem}")]
    Corrupt { path: PathBuf, problem: String },
    #[error("cannot finish the copy at {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
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
    // The partial copy's own file is the lock of a backup to `target`: held while it is written,
    // released when this process ends, however it ends. A partial copy nobody holds was left by
    // an interrupted backup and is ours to replace (`VACUUM INTO` writes into an empty file).
    let held = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&partial)
        .map_err(|cause| BackupError::Io {
            path: partial.clone(),
            cause,
        })?;
    match held.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(BackupError::InProgress(target.to_owned()))
        }
        Err(std::fs::TryLockError::Error(cause)) => {
            return Err(BackupError::Io {
                path: partial,
                cause,
            })
        }
    }
    let outcome = held
        .set_len(0)
        .map_err(|cause| BackupError::Io {
            path: partial.clone(),
            cause,
        })
        .and_then(|()| copy_and_check(source, &partial))
        .and_then(|()| finish(&partial, target));
    if outcome.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    drop(held);
    outcome?;
    let bytes = std::fs::metadata(target)
        .map_err(|cause| BackupError::Io {
            path: target.to_owned(),
            cause,
        })?
        .len();
    Ok(bytes)
}

/// Gives the checked copy its name, never replacing a file that took that name meanwhile (a link
/// fails where a rename would overwrite). A file system without links (FAT, some network shares)
/// gets a rename after one more look.
fn finish(partial: &Path, target: &Path) -> Result<(), BackupError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |cause| BackupError::Io { path, cause }
    };
    match std::fs::hard_link(partial, target) {
        Ok(()) => std::fs::remove_file(partial).map_err(io_error(partial)),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(BackupError::TargetExists(target.to_owned()))
        }
        Err(_) if target.exists() => Err(BackupError::TargetExists(target.to_owned())),
        Err(_) => std::fs::rename(partial, target).map_err(io_error(target)),
    }
}

fn copy_and_check(source: &Path, partial: &Path) -> Result<(), BackupError> {
    let reading = connection::open_reader(source).map_err(|error| BackupError::Source {
        path: source.to_owned(),
        cause: error,
    })?;
    let is_reward: bool = reading
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accounts')",
            [],
            |row| row.get(0),
        )
        .map_err(|error| BackupError::Source {
            path: source.to_owned(),
            cause: error,
        })?;
    if !is_reward {
        return Err(BackupError::NotReward(source.to_owned()));
    }
    let target = partial.to_string_lossy().into_owned();
    reading
        .execute("VACUUM INTO ?1", [&target])
        .map_err(|error| BackupError::Copy {
            path: partial.to_owned(),
            cause: error,
        })?;
    drop(reading);
    check_integrity(partial)
}

fn check_integrity(path: &Path) -> Result<(), BackupError> {
    let copy = rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|cause| BackupError::Copy {
            path: path.to_owned(),
            cause,
        })?;
    let mut statement =
        copy.prepare("PRAGMA integrity_check")
            .map_err(|cause| BackupError::Copy {
                path: path.to_owned(),
                cause,
            })?;
    let findings: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|cause| BackupError::Copy {
            path: path.to_owned(),
            cause,
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

    #[test]
    fn a_backup_under_way_holds_its_path_and_a_leftover_is_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = dir.path().join("reward.db");
        crate::SqliteStore::open(&source).expect("open");
        // A leftover of an interrupted backup, which nobody holds: replaced.
        let target = dir.path().join("copy.db");
        std::fs::write(partial_path(&target), b"half a copy").expect("leftover");
        backup(&source, &target).expect("backup over a leftover");
        assert!(!partial_path(&target).exists());
        // A backup under way (its partial copy held): another one to the same path is refused
        // and leaves that copy alone.
        let second = dir.path().join("second.db");
        let under_way = std::fs::File::create(partial_path(&second)).expect("partial");
        std::fs::write(partial_path(&second), b"being written").expect("write");
        under_way.lock().expect("lock");
        assert!(matches!(
            backup(&source, &second),
            Err(BackupError::InProgress(_))
        ));
        assert_eq!(
            std::fs::read(partial_path(&second)).expect("still there"),
            b"being written"
        );
        assert!(!second.exists());
        drop(under_way);
        backup(&source, &second).expect("once the other one ended");
        // A file that took the name while the copy was written is never replaced.
        let third = dir.path().join("third.db");
        std::fs::write(&third, b"someone else's").expect("write");
        std::fs::write(partial_path(&third), b"a checked copy").expect("write");
        assert!(matches!(
            finish(&partial_path(&third), &third),
            Err(BackupError::TargetExists(_))
        ));
        assert_eq!(std::fs::read(&third).expect("kept"), b"someone else's");
    }
}
