//! Running the searches of `reward_store::search` (deliveries and events by filters and time).

use deadpool_postgres::GenericClient;
use reward_store::search::{PageQuery, Value};
use reward_store::StoreResult;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::errors::from_pg;

/// `SELECT {columns} FROM {table}` with the search's clause. Statements are cached per text: one
/// per combination of filters, each with its own plan.
pub async fn rows(
    client: &impl GenericClient,
    columns: &str,
    table: &str,
    query: &PageQuery,
) -> StoreResult<Vec<Row>> {
    let sql = format!("SELECT {columns} FROM {table} {}", query.clause);
    let statement = client.prepare_cached(&sql).await.map_err(from_pg)?;
    let values: Vec<&(dyn ToSql + Sync)> = query
        .values
        .iter()
        .map(|value| match value {
            Value::Text(text) => text as &(dyn ToSql + Sync),
            Value::Integer(number) => number as &(dyn ToSql + Sync),
        })
        .collect();
    client.query(&statement, &values).await.map_err(from_pg)
}
