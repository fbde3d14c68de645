//! Opening SQLite files: where the URL points, and the settings every connection gets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// The file a `sqlite://` URL names: `sqlite://reward-data/reward.db` is relative to the working
/// directory, `sqlite:///var/lib/reward.db` is absolute. `sqlite:` alone also works.
pub fn path_from_url(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    (!rest.is_empty()).then(|| PathBuf::from(rest))
}

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The writing connection: creates the file, WAL journal, and a full fsync on every commit, so an
/// acknowledged write survives a crash or power loss (group commit keeps that cheap).
pub fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "OFF")?;
    // Statement journals (a multi-row statement inside the batch's transaction) and sorts stay
    // in memory rather than in temporary files: when jobs still ran in savepoints, those file
    // writes took a tenth of the writer's time. Large changes are cut into chunks, so this stays
    // small.
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    // 16 MiB of page cache: the queue's hot indexes stay in memory.
    connection.pragma_update(None, "cache_size", -16_384)?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// A reading connection: read-only, so a bug can never write outside the writer's transactions.
pub fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_files() {
        assert_eq!(
            path_from_url("sqlite://reward-data/reward.db"),
            Some("reward-data/reward.db".into())
        );
        assert_eq!(
            path_from_url("sqlite:///tmp/x.db"),
            Some("/tmp/x.db".into())
        );
        assert_eq!(path_from_url("sqlite:x.db?mode=rwc"), Some("x.db".into()));
        assert_eq!(path_from_url("postgres://x"), None);
        assert_eq!(path_from_url("sqlite://"), None);
    }
}
