//! How statements reach the server: prepared once per connection, or unnamed every time.
//!
//! [`Statements::Prepared`] (the default) prepares each statement on a connection the first time
//! it runs there and keeps it, so later calls skip parsing and planning. Prepared statements live
//! in the server's session, though, and PgBouncer in transaction mode hands each transaction
//! whichever server connection is free: before 1.21 (Debian's is 1.18) a statement prepared on
//! one is missing on the next, and names of different nodes clash. [`Statements::Unnamed`] sends
//! each statement unnamed with its parameters and their types in one message (`query_typed`):
//! still one round trip, nothing left on the server, parsed every time. docs/decisions.md has
//! the choice and docs/scaling.md what it costs.
//!
//! Every statement goes through [`Db`], implemented by a pooled connection ([`Conn`]) and a
//! transaction on one ([`Tx`]), which carry the mode. Parameters are [`Param`]s: a value and the
//! PostgreSQL type it is sent as, declared from its Rust type (`&str` as `text`, `i64` as
//! `bigint`, `Vec<String>` as `text[]`, ...), as an unnamed statement needs them.

use async_trait::async_trait;
use deadpool_postgres::GenericClient as _;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Error, Row};

/// How a connection sends its statements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Statements {
    /// Prepared and cached per connection (`REWARD_DATABASE_PREPARED_STATEMENTS=true`).
    #[default]
    Prepared,
    /// Unnamed, parsed on every call: for poolers that cannot carry prepared statements.
    Unnamed,
}

/// A statement's parameter: the value and the type it is declared as.
pub trait Param: ToSql + Sync {
    fn declared_type(&self) -> Type;
    fn as_to_sql(&self) -> &(dyn ToSql + Sync);
}

impl<T: Typed + ToSql + Sync> Param for T {
    fn declared_type(&self) -> Type {
        T::TYPE
    }

    fn as_to_sql(&self) -> &(dyn ToSql + Sync) {
        self
    }
}

/// The PostgreSQL type a Rust value is sent as.
pub trait Typed {
    const TYPE: Type;
}

/// A type arrays of which are sent as the array type `ARRAY`.
pub trait Element: Typed {
    const ARRAY: Type;
}

macro_rules! typed {
    ($($rust:ty => $type:ident, $array:ident;)*) => {$(
        impl Typed for $rust {
            const TYPE: Type = Type::$type;
        }
        impl Element for $rust {
            const ARRAY: Type = Type::$array;
        }
    )*};
}

typed! {
    str => TEXT, TEXT_ARRAY;
    String => TEXT, TEXT_ARRAY;
    i64 => INT8, INT8_ARRAY;
    i32 => INT4, INT4_ARRAY;
    i16 => INT2, INT2_ARRAY;
    bool => BOOL, BOOL_ARRAY;
}

impl<T: Typed + ?Sized> Typed for &T {
    const TYPE: Type = T::TYPE;
}

impl<T: Element + ?Sized> Element for &T {
    const ARRAY: Type = T::ARRAY;
}

/// NULL or a value: declared as the value's type.
impl<T: Typed> Typed for Option<T> {
    const TYPE: Type = T::TYPE;
}

impl<T: Element> Element for Option<T> {
    const ARRAY: Type = T::ARRAY;
}

impl<T: Element> Typed for Vec<T> {
    const TYPE: Type = T::ARRAY;
}

impl<T: Element> Typed for [T] {
    const TYPE: Type = T::ARRAY;
}

/// Runs statements on a connection or in a transaction, as its [`Statements`] mode says.
#[async_trait]
pub trait Db: Sync {
    async fn query(&self, sql: &str, params: &[&dyn Param]) -> Result<Vec<Row>, Error>;
    /// Exactly one row, or an error.
    async fn query_one(&self, sql: &str, params: &[&dyn Param]) -> Result<Row, Error>;
    /// At most one row, or an error.
    async fn query_opt(&self, sql: &str, params: &[&dyn Param]) -> Result<Option<Row>, Error>;
    /// The number of rows changed.
    async fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64, Error>;
    /// Runs `sql`, without parameters, in the simple query protocol, which prepares nothing.
    async fn batch_execute(&self, sql: &str) -> Result<(), Error>;
}

fn untyped<'a>(params: &[&'a dyn Param]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|param| param.as_to_sql()).collect()
}

fn typed<'a>(params: &[&'a dyn Param]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|param| (param.as_to_sql(), param.declared_type()))
        .collect()
}

/// `Db` for a type holding a `deadpool_postgres` client or transaction in `$field`.
macro_rules! db_for {
    ($type:ty, $field:ident) => {
        #[async_trait]
        impl Db for $type {
            async fn query(&self, sql: &str, params: &[&dyn Param]) -> Result<Vec<Row>, Error> {
                match self.statements {
                    Statements::Prepared => {
                        let statement = self.$field.prepare_cached(sql).await?;
                        self.$field.query(&statement, &untyped(params)).await
                    }
                    Statements::Unnamed => self.$field.query_typed(sql, &typed(params)).await,
                }
            }

            async fn query_one(&self, sql: &str, params: &[&dyn Param]) -> Result<Row, Error> {
                match self.statements {
                    Statements::Prepared => {
                        let statement = self.$field.prepare_cached(sql).await?;
                        self.$field.query_one(&statement, &untyped(params)).await
                    }
                    Statements::Unnamed => self.$field.query_typed_one(sql, &typed(params)).await,
                }
            }

            async fn query_opt(
                &self,
                sql: &str,
                params: &[&dyn Param],
            ) -> Result<Option<Row>, Error> {
                match self.statements {
                    Statements::Prepared => {
                        let statement = self.$field.prepare_cached(sql).await?;
                        self.$field.query_opt(&statement, &untyped(params)).await
                    }
                    Statements::Unnamed => self.$field.query_typed_opt(sql, &typed(params)).await,
                }
            }

            async fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64, Error> {
                match self.statements {
                    Statements::Prepared => {
                        let statement = self.$field.prepare_cached(sql).await?;
                        self.$field.execute(&statement, &untyped(params)).await
                    }
                    Statements::Unnamed => self.$field.execute_typed(sql, &typed(params)).await,
                }
            }

            async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
                self.$field.batch_execute(sql).await
            }
        }
    };
}

/// A pooled connection and how it sends statements.
pub struct Conn {
    client: deadpool_postgres::Client,
    statements: Statements,
}

impl Conn {
    pub fn new(client: deadpool_postgres::Client, statements: Statements) -> Self {
        Self { client, statements }
    }

    pub fn statements(&self) -> Statements {
        self.statements
    }

    pub async fn transaction(&mut self) -> Result<Tx<'_>, Error> {
        let statements = self.statements;
        Ok(Tx::new(self.client.transaction().await?, statements))
    }

    /// The connection itself, for what does not go through [`Db`]: migrations and transactions
    /// with options. Statements sent on it directly are prepared, whatever the mode.
    pub fn client_mut(&mut self) -> &mut deadpool_postgres::Client {
        &mut self.client
    }
}

db_for!(Conn, client);

/// A transaction on a pooled connection, sending statements as the connection does.
pub struct Tx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    statements: Statements,
}

impl<'a> Tx<'a> {
    pub fn new(tx: deadpool_postgres::Transaction<'a>, statements: Statements) -> Self {
        Self { tx, statements }
    }

    pub async fn commit(self) -> Result<(), Error> {
        self.tx.commit().await
    }
}

db_for!(Tx<'_>, tx);

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(params: &[&dyn Param]) -> Vec<Type> {
        params.iter().map(|param| param.declared_type()).collect()
    }

    #[test]
    fn parameters_are_declared_by_their_rust_type() {
        let text = String::from("a");
        let none: Option<i64> = None;
        let ids: Vec<&str> = vec!["a", "b"];
        let codes: Vec<Option<i32>> = vec![Some(200), None];
        let tables: [&str; 1] = ["deliveries"];
        assert_eq!(
            declared(&[
                &"a",
                &text,
                &7_i64,
                &none,
                &true,
                &ids,
                &codes,
                &tables.as_slice(),
                &Some(3_i16),
            ]),
            [
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::INT8,
                Type::BOOL,
                Type::TEXT_ARRAY,
                Type::INT4_ARRAY,
                Type::TEXT_ARRAY,
                Type::INT2,
            ]
        );
    }
}
