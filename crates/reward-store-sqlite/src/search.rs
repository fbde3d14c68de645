//! Running the searches of `reward_store::search` (deliveries and events by filters and time).

use reward_store::search::{PageQuery, Value};
use reward_store::StoreResult;
use rusqlite::types::ToSqlOutput;
use rusqlite::{params_from_iter, Connection, Row, ToSql};

use crate::errors::from_sqlite;

/// `SELECT {columns}` of the search; its `$n` placeholders are SQLite named parameters numbered
/// in order of appearance, so the values bind by position.
pub fn rows<T>(
    connection: &Connection,
    columns: &str,
    query: &PageQuery,
    from_row: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let sql = query.select(columns);
    let mut statement = connection.prepare_cached(&sql).map_err(from_sqlite)?;
    statement
        .query_map(params_from_iter(query.values.iter().map(Bound)), from_row)
        .and_then(Iterator::collect)
        .map_err(from_sqlite)
}

struct Bound<'a>(&'a Value);

impl ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self.0 {
            Value::Text(text) => text.to_sql(),
            Value::Integer(number) => number.to_sql(),
        }
    }
}
