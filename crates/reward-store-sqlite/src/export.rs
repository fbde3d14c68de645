//! Reading a whole database out, table by table, for `reward copy` (rows as they are, in the
//! columns [`reward_store::transfer::TABLES`] lists).
//!
//! The source must not be served while it is read: the export holds the database's exclusive lock
//! from [`SqliteSource::open`] until it is dropped. Taking it fails at once while any other
//! connection has the file open (a running `reward serve` keeps its writer and readers open: in
//! WAL mode each holds a shared lock for as long as it is open), so a served source is refused
//! rather than copied half-way through a change; and no server can start on it while the copy runs.

use std::path::{Path, PathBuf};

use reward_store::transfer::{Cell, Kind, Row, Table};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use thiserror::Error;

use crate::migrations;

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("{0}: no such database file")]
    Missing(PathBuf),
    #[error(
        "{0} is open in another process: stop `reward serve` on it first (`fuser {0}` lists the \
         processes that still hold it)"
    )]
    InUse(PathBuf),
    #[error(
        "{path} is at schema version {found} and this reward's is {expected}: run `reward migrate \
         --database-url sqlite://{path}` with this reward first"
    )]
    OlderSchema {
        path: PathBuf,
        found: usize,
        expected: usize,
    },
    #[error(
        "{path} is at schema version {found}, newer than this reward's {expected}: copy it with \
         the reward that wrote it"
    )]
    NewerSchema {
        path: PathBuf,
        found: usize,
        expected: usize,
    },
    #[error("reading {path}: {cause}")]
    Sqlite {
        path: PathBuf,
        cause: rusqlite::Error,
    },
}

/// A database opened for export, locked against every other connection until dropped.
pub struct SqliteSource {
    path: PathBuf,
    connection: Connection,
}

impl SqliteSource {
    /// Opens the file (never creating it), takes its exclusive lock and checks that its schema is
    /// the one [`reward_store::transfer::TABLES`] describes.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        if !path.is_file() {
            return Err(SourceError::Missing(path.to_owned()));
        }
        let failed = |cause| SourceError::Sqlite {
            path: path.to_owned(),
            cause,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags).map_err(failed)?;
        // Exclusive locking mode keeps the lock taken below until the connection closes. No busy
        // timeout: a lock held by a server is not going away.
        connection
            .pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(failed)?;
        connection
            .busy_timeout(std::time::Duration::ZERO)
            .map_err(failed)?;
        match connection.execute_batch("BEGIN EXCLUSIVE") {
            Ok(()) => {}
            Err(error) if is_busy(&error) => return Err(SourceError::InUse(path.to_owned())),
            Err(error) => return Err(failed(error)),
        }
        let found = migrations::applied(&connection).map_err(failed)?;
        let expected = migrations::COUNT;
        if found < expected {
            return Err(SourceError::OlderSchema {
                path: path.to_owned(),
                found,
                expected,
            });
        }
        if found > expected {
            return Err(SourceError::NewerSchema {
                path: path.to_owned(),
                found,
                expected,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            connection,
        })
    }

    /// Reads every row of `table` that the copy carries, handing them to `deliver` in batches of
    /// up to `batch_rows`; returns how many rows were read. Stops at the first error `deliver`
    /// returns.
    pub fn read_table<E: From<SourceError>>(
        &self,
        table: &Table,
        batch_rows: usize,
        mut deliver: impl FnMut(Vec<Row>) -> Result<(), E>,
    ) -> Result<u64, E> {
        let failed = |cause| SourceError::Sqlite {
            path: self.path.clone(),
            cause,
        };
        let sql = format!(
            "SELECT {} FROM {} {}",
            table.column_list(),
            table.name,
            left_out(table.name)
        );
        let mut statement = self.connection.prepare(&sql).map_err(failed)?;
        let mut rows = statement.query([]).map_err(failed)?;
        let mut batch = Vec::with_capacity(batch_rows);
        let mut read = 0u64;
        while let Some(row) = rows.next().map_err(failed)? {
            let cells = table
                .columns
                .iter()
                .enumerate()
                .map(|(index, column)| cell(row, index, column.kind))
                .collect::<rusqlite::Result<Row>>()
                .map_err(failed)?;
            batch.push(cells);
            read += 1;
            if batch.len() >= batch_rows {
                deliver(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(batch_rows),
                ))?;
            }
        }
        if !batch.is_empty() {
            deliver(batch)?;
        }
        Ok(read)
    }
}

/// Rows the copy leaves out: the deliveries (and their attempts) of a webhook deleted while its
/// deliveries were still being removed in chunks (`webhook_deletions`). The webhook is gone; the
/// upkeep would have removed them, and the target has no such table to finish it.
fn left_out(table: &str) -> &'static str {
    match table {
        "deliveries" => {
            "WHERE NOT EXISTS (SELECT 1 FROM webhook_deletions w
                WHERE w.account_id = deliveries.account_id AND w.webhook_id = deliveries.webhook_id)"
        }
        "attempts" => {
            "WHERE NOT EXISTS (SELECT 1 FROM deliveries d JOIN webhook_deletions w
                ON w.account_id = d.account_id AND w.webhook_id = d.webhook_id
                WHERE d.account_id = attempts.account_id AND d.id = attempts.delivery_id)"
        }
        _ => "",
    }
}

fn cell(row: &rusqlite::Row<'_>, index: usize, kind: Kind) -> rusqlite::Result<Cell> {
    Ok(match kind {
        Kind::Text => row
            .get::<_, Option<String>>(index)?
            .map_or(Cell::Null, Cell::Text),
        Kind::Integer => row
            .get::<_, Option<i64>>(index)?
            .map_or(Cell::Null, Cell::Integer),
        Kind::Flag => row
            .get::<_, Option<i64>>(index)?
            .map_or(Cell::Null, |value| Cell::Flag(value != 0)),
    })
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use reward_store::transfer::tables::NOT_COPIED;
    use reward_store::transfer::TABLES;

    use super::*;

    fn temp_database(name: &str) -> PathBuf {
        let folder =
            std::env::temp_dir().join(format!("reward-export-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).expect("folder");
        folder.join("reward.db")
    }

    /// The one list of columns must name every column this schema has: a migration that adds
    /// one (to both backends) adds it there too, or a copy would silently drop it.
    #[test]
    fn the_copied_columns_are_every_column_of_the_schema() {
        let path = temp_database("schema");
        let mut connection = crate::connection::open_writer(&path).expect("open");
        migrations::migrate(&mut connection).expect("migrate");
        let mut statement = connection
            .prepare(
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
            )
            .expect("prepare");
        let schema: BTreeSet<(String, String)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let listed: BTreeSet<(String, String)> = TABLES
            .iter()
            .flat_map(|table| {
                table
                    .columns
                    .iter()
                    .map(|column| (table.name.to_owned(), column.name.to_owned()))
            })
            .collect();
        let not_copied: Vec<&str> = NOT_COPIED.iter().map(|(table, _)| *table).collect();
        let unlisted: Vec<_> = schema
            .iter()
            .filter(|(table, _)| !not_copied.contains(&table.as_str()))
            .filter(|column| !listed.contains(*column))
            .collect();
        assert!(unlisted.is_empty(), "not in transfer::TABLES: {unlisted:?}");
        let missing: Vec<_> = listed.difference(&schema).collect();
        assert!(missing.is_empty(), "not in the schema: {missing:?}");
        drop(statement);
        drop(connection);
        let _ = std::fs::remove_dir_all(path.parent().expect("folder"));
    }

    #[test]
    fn a_database_open_elsewhere_is_refused_and_a_free_one_is_read() {
        let path = temp_database("lock");
        let mut connection = crate::connection::open_writer(&path).expect("open");
        migrations::migrate(&mut connection).expect("migrate");
        connection
            .execute(
                "INSERT INTO accounts (id, name, created_at) VALUES ('acc_1', 'Acme', 5)",
                [],
            )
            .expect("insert");
        assert!(matches!(
            SqliteSource::open(&path),
            Err(SourceError::InUse(_))
        ));
        drop(connection);
        let source = SqliteSource::open(&path).expect("free now");
        let accounts = &TABLES[0];
        let mut rows = Vec::new();
        let read = source
            .read_table(accounts, 10, |batch| {
                rows.extend(batch);
                Ok::<_, SourceError>(())
            })
            .expect("read");
        assert_eq!(read, 1);
        assert_eq!(
            rows,
            vec![vec![
                Cell::Text("acc_1".into()),
                Cell::Text("Acme".into()),
                Cell::Integer(5)
            ]]
        );
        // While the export holds it, no server can open it either.
        let other = crate::connection::open_reader(&path).expect("open");
        other
            .busy_timeout(std::time::Duration::ZERO)
            .expect("timeout");
        assert!(other
            .query_row("SELECT count(*) FROM accounts", [], |row| row
                .get::<_, i64>(0))
            .is_err());
        drop(source);
        assert!(matches!(
            SqliteSource::open(&path.with_file_name("nope.db")),
            Err(SourceError::Missing(_))
        ));
        let _ = std::fs::remove_dir_all(path.parent().expect("folder"));
    }
}
