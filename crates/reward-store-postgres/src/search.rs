//! Running the searches of `reward_store::search` (deliveries and events by filters and time).

use reward_store::search::{PageQuery, Value};
use reward_store::StoreResult;
use tokio_postgres::Row;

use crate::errors::from_pg;
use crate::statements::{Db, Param};

/// `SELECT {columns}` of the search. Statements are cached per text: one per combination of
/// filters, each with its own plan.
pub async fn rows(client: &impl Db, columns: &str, query: &PageQuery) -> StoreResult<Vec<Row>> {
    let sql = query.select(columns);
    let values: Vec<&dyn Param> = query
        .values
        .iter()
        .map(|value| match value {
            Value::Text(text) => text as &dyn Param,
            Value::Integer(number) => number as &dyn Param,
        })
        .collect();
    client.query(&sql, &values).await.map_err(from_pg)
}
