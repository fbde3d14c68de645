//! Writing a whole copied database into an empty one, for `reward copy` (rows as they are, in the
//! columns [`reward_store::transfer::TABLES`] lists).
//!
//! Everything goes in one transaction: a copy that fails anywhere leaves the target as empty as it
//! found it. The transaction first locks every table against writes and checks that each is
//! empty, so two copies (or a node serving the target) cannot interleave with it. No sequence
//! needs moving on afterwards: every id in the schema is a text id made by the application.

use reward_store::transfer::{Cell, Kind, Row, Table, TABLES};
use thiserror::Error;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Transaction};

use crate::connect;
use crate::errors::describe;

#[derive(Debug, Error)]
pub enum TargetError {
    #[error("{0}")]
    Url(crate::OpenError),
    #[error("cannot connect to the target: {}", describe(.0))]
    Connect(tokio_postgres::Error),
    #[error(
        "the target already has {rows} row(s) in {table}: copy only into an empty database \
         (nothing was changed there)"
    )]
    NotEmpty { table: &'static str, rows: i64 },
    #[error("cannot migrate the target: {0}")]
    Migrate(crate::migrations::MigrateError),
    #[error("writing {table} into the target: {}", describe(.cause))]
    Write {
        table: &'static str,
        cause: tokio_postgres::Error,
    },
    #[error("{table}: {written} row(s) written but {found} read back; nothing was committed")]
    Mismatch {
        table: &'static str,
        written: u64,
        found: i64,
    },
    #[error("{table}.{column}: a value of another kind than the column's")]
    Kind {
        table: &'static str,
        column: &'static str,
    },
    #[error("the target: {}", describe(.0))]
    Other(tokio_postgres::Error),
}

/// Not a copied table: the deliveries' search keys, written by the database with them.
const DELIVERY_KEYS: &str = "delivery_keys";

/// One connection to the target database.
pub struct PostgresTarget {
    client: Client,
}

impl PostgresTarget {
    pub async fn connect(url: &str) -> Result<Self, TargetError> {
        let config = connect::config_from_url(url).map_err(TargetError::Url)?;
        let (client, connection) = config.connect(NoTls).await.map_err(TargetError::Connect)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "the connection to the copy's target ended");
            }
        });
        Ok(Self { client })
    }

    /// Refuses a target that already holds accounts, before anything is changed there (not even
    /// a migration). A database without the table yet is empty.
    pub async fn refuse_if_it_has_accounts(&self) -> Result<(), TargetError> {
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('accounts') IS NOT NULL", &[])
            .await
            .map_err(TargetError::Other)?
            .get(0);
        if !exists {
            return Ok(());
        }
        let rows = count(&self.client, "accounts")
            .await
            .map_err(TargetError::Other)?;
        if rows > 0 {
            return Err(TargetError::NotEmpty {
                table: "accounts",
                rows,
            });
        }
        Ok(())
    }

    /// Applies every pending migration, as `reward migrate` does; returns how many ran.
    pub async fn migrate(&mut self) -> Result<usize, TargetError> {
        crate::migrations::migrate(&mut self.client)
            .await
            .map_err(TargetError::Migrate)
    }

    /// Starts the copy's transaction: every copied table locked against writes, and found empty.
    pub async fn begin(&mut self) -> Result<Import<'_>, TargetError> {
        let transaction = self
            .client
            .transaction()
            .await
            .map_err(TargetError::Other)?;
        let mut names: Vec<&str> = TABLES.iter().map(|table| table.name).collect();
        // Written by the database from the copied deliveries (migration 0016's trigger).
        names.push(DELIVERY_KEYS);
        // SHARE ROW EXCLUSIVE conflicts with every write and with itself, not with reads.
        transaction
            .batch_execute(&format!(
                "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
                names.join(", ")
            ))
            .await
            .map_err(TargetError::Other)?;
        for table in TABLES {
            let rows = count(&transaction, table.name)
                .await
                .map_err(TargetError::Other)?;
            if rows > 0 {
                return Err(TargetError::NotEmpty {
                    table: table.name,
                    rows,
                });
            }
        }
        Ok(Import { transaction })
    }
}

/// The copy's transaction on the target; dropped without [`Import::commit`], it leaves nothing.
pub struct Import<'a> {
    transaction: Transaction<'a>,
}

impl Import<'_> {
    /// Inserts `rows` of `table` in one statement (a column of values per parameter).
    pub async fn insert(&self, table: &Table, rows: &[Row]) -> Result<(), TargetError> {
        let failed = |cause| TargetError::Write {
            table: table.name,
            cause,
        };
        let columns = columns_of(table, rows)?;
        let casts: Vec<String> = table
            .columns
            .iter()
            .enumerate()
            .map(|(index, column)| format!("${}::{}[]", index + 1, array_type(column.kind)))
            .collect();
        // Values are cast on assignment to the column's own type (BIGINT to INTEGER or SMALLINT),
        // so a value that does not fit fails the statement instead of changing.
        let sql = format!(
            "INSERT INTO {} ({}) SELECT * FROM unnest({})",
            table.name,
            table.column_list(),
            casts.join(", ")
        );
        let statement = self.transaction.prepare(&sql).await.map_err(failed)?;
        let parameters: Vec<&(dyn ToSql + Sync)> = columns.iter().map(Values::as_sql).collect();
        self.transaction
            .execute(&statement, &parameters)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Every copied table's rows counted inside the transaction, checked against what was
    /// written; then committed. Returns the counts, in [`TABLES`] order.
    pub async fn commit(
        self,
        written: &[(&'static str, u64)],
    ) -> Result<Vec<(&'static str, i64)>, TargetError> {
        let mut counts = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            let found = count(&self.transaction, table.name)
                .await
                .map_err(TargetError::Other)?;
            let sent = written
                .iter()
                .find(|(name, _)| *name == table.name)
                .map_or(0, |(_, rows)| *rows);
            if i64::try_from(sent).ok() != Some(found) {
                return Err(TargetError::Mismatch {
                    table: table.name,
                    written: sent,
                    found,
                });
            }
            counts.push((table.name, found));
        }
        self.transaction
            .commit()
            .await
            .map_err(TargetError::Other)?;
        Ok(counts)
    }
}

async fn count(
    client: &impl tokio_postgres::GenericClient,
    table: &str,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .get(0))
}

fn array_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "text",
        Kind::Integer => "bigint",
        Kind::Flag => "boolean",
    }
}

/// One column's values across a batch of rows: one array parameter.
enum Values {
    Text(Vec<Option<String>>),
    Integer(Vec<Option<i64>>),
    Flag(Vec<Option<bool>>),
}

impl Values {
    /// Adds a cell; false when it is not of the column's kind (NULL fits every column).
    fn push(&mut self, cell: &Cell) -> bool {
        match (self, cell) {
            (Values::Text(values), Cell::Null) => values.push(None),
            (Values::Integer(values), Cell::Null) => values.push(None),
            (Values::Flag(values), Cell::Null) => values.push(None),
            (Values::Text(values), Cell::Text(text)) => values.push(Some(text.clone())),
            (Values::Integer(values), Cell::Integer(value)) => values.push(Some(*value)),
            (Values::Flag(values), Cell::Flag(value)) => values.push(Some(*value)),
            _ => return false,
        }
        true
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Values::Text(values) => values,
            Values::Integer(values) => values,
            Values::Flag(values) => values,
        }
    }
}

/// The rows turned into columns, each cell checked against its column's kind (a cell of another
/// kind is a bug between the export and the catalogue, refused rather than written as NULL).
fn columns_of(table: &Table, rows: &[Row]) -> Result<Vec<Values>, TargetError> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(index, column)| {
            let mut values = match column.kind {
                Kind::Text => Values::Text(Vec::with_capacity(rows.len())),
                Kind::Integer => Values::Integer(Vec::with_capacity(rows.len())),
                Kind::Flag => Values::Flag(Vec::with_capacity(rows.len())),
            };
            for row in rows {
                let cell = row.get(index).unwrap_or(&Cell::Null);
                let fits = values.push(cell);
                if !fits {
                    return Err(TargetError::Kind {
                        table: table.name,
                        column: column.name,
                    });
                }
            }
            Ok(values)
        })
        .collect()
}
