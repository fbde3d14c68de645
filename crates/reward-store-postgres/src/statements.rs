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

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use deadpool_postgres::GenericClient as _;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Error, Row};

use crate::functions::{Function, Returns, StatementFunctions};

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
    /// Like [`Db::query`], for a statement run in every batch of the busiest writes: in a
    /// transaction sending unnamed statements, as a call of its function, which keeps its plan
    /// (see [`crate::functions`]).
    async fn query_hot(&self, sql: &str, params: &[&dyn Param]) -> Result<Vec<Row>, Error> {
        self.query(sql, params).await
    }
}

/// `sql` with every placeholder `$n` renumbered `$(n + by)`: statements written on their own,
/// from `$1`, put together into one (data-modifying `WITH` parts), each after the parameters of
/// those before it. Reward's statements hold no `$` but in placeholders.
pub fn shift_placeholders(sql: &str, by: usize) -> String {
    let mut shifted = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        shifted.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match rest[..digits].parse::<usize>() {
            Ok(number) => shifted.push_str(&(number + by).to_string()),
            Err(_) => shifted.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    shifted.push_str(rest);
    shifted
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
    functions: Option<Arc<StatementFunctions>>,
}

impl Conn {
    /// `functions`: where unnamed statements' functions are made (see [`crate::functions`]).
    pub fn new(
        client: deadpool_postgres::Client,
        statements: Statements,
        functions: Option<Arc<StatementFunctions>>,
    ) -> Self {
        Self {
            client,
            statements,
            functions,
        }
    }

    /// A transaction on this connection; its `BEGIN` goes out with its first statement.
    pub fn transaction(&mut self) -> Tx<'_> {
        self.transaction_with(BEGIN)
    }

    /// A transaction opened by `begin` (`BEGIN` with options), sent with its first statement.
    pub fn transaction_with(&mut self, begin: &'static str) -> Tx<'_> {
        Tx {
            sender: Sender {
                client: &self.client,
                statements: self.statements,
            },
            functions: self.functions.as_deref(),
            begin,
            begun: AtomicBool::new(false),
            ended: AtomicBool::new(false),
        }
    }

    /// The connection itself, for what does not go through [`Db`]: migrations. Statements sent
    /// on it directly are prepared, whatever the mode.
    pub fn client_mut(&mut self) -> &mut deadpool_postgres::Client {
        &mut self.client
    }
}

db_for!(Conn, client);

/// What opens a transaction by default.
const BEGIN: &str = "BEGIN";

/// A connection borrowed to send statements, in its mode.
#[derive(Clone, Copy)]
struct Sender<'a> {
    client: &'a deadpool_postgres::Client,
    statements: Statements,
}

db_for!(Sender<'_>, client);

/// A transaction on a pooled connection, sending statements as the connection does.
///
/// Its `BEGIN` is not a round trip of its own: it is sent just before the first statement,
/// which follows it without waiting for its answer (the connection runs what it is sent in
/// order), so a transaction costs the server one wake-up less. Statements sent at once
/// (`try_join!`) are fine: whichever goes first sends `BEGIN` ahead of itself. Dropped without
/// [`Tx::commit`], it sends `ROLLBACK` the same way, unanswered, before the connection goes back
/// to the pool, as tokio-postgres's own transactions do.
pub struct Tx<'a> {
    sender: Sender<'a>,
    functions: Option<&'a StatementFunctions>,
    begin: &'static str,
    /// `BEGIN` was sent.
    begun: AtomicBool,
    /// `COMMIT` was sent: nothing is left to roll back.
    ended: AtomicBool,
}

impl Tx<'_> {
    /// Runs `last`, the transaction's final statements, and commits, all sent at once: one round
    /// trip where awaiting the statements and then `COMMIT` takes two (`BEGIN` goes with them
    /// when nothing was sent before). Returns each statement's count of changed rows.
    ///
    /// Every request leaves in order, `COMMIT` last: prepared statements are looked up (or
    /// prepared) first, and a statement's future queues its request the first time it is polled
    /// (`tokio-postgres` encodes and queues it before its first wait), so each future is polled
    /// once, in turn, before the next is made. A statement that fails before it is sent (a
    /// parameter that does not encode) stops there: nothing more is sent, and dropping the
    /// transaction rolls it back. One the server refuses aborts the transaction, so the `COMMIT`
    /// behind it rolls back instead; its error is returned.
    pub async fn execute_and_commit(
        self,
        last: &[(&str, &[&dyn Param])],
    ) -> Result<Vec<u64>, Error> {
        type Request<'s> = Pin<Box<dyn Future<Output = Result<u64, Error>> + Send + 's>>;
        if last.is_empty() {
            return self.commit().await.map(|()| Vec::new());
        }
        let client = self.sender.client;
        let mut sends: Vec<Request<'_>> = Vec::with_capacity(last.len() + 2);
        let begins = !self.begun.load(AtomicOrdering::SeqCst);
        if begins {
            let begin = self.begin;
            sends.push(Box::pin(async move {
                client.batch_execute(begin).await.map(|()| 0)
            }));
        }
        match self.sender.statements {
            Statements::Prepared => {
                for (sql, params) in last {
                    let statement = client.prepare_cached(sql).await?;
                    let params = untyped(params);
                    sends.push(Box::pin(async move {
                        client.execute(&statement, &params).await
                    }));
                }
            }
            Statements::Unnamed => {
                for (sql, params) in last {
                    let function = match self.functions {
                        Some(functions) => {
                            functions.function_for(sql, params, Returns::Changed).await
                        }
                        None => None,
                    };
                    let functions = self.functions;
                    let params = typed(params);
                    sends.push(match function {
                        None => Box::pin(async move { client.execute_typed(sql, &params).await }),
                        Some(function) => {
                            Box::pin(
                                async move { called(client, functions, &function, &params).await },
                            )
                        }
                    });
                }
            }
        }
        sends.push(Box::pin(async move {
            client.batch_execute("COMMIT").await.map(|()| 0)
        }));
        let mut early: Vec<Option<Result<u64, Error>>> = Vec::with_capacity(sends.len());
        let commit_at = sends.len() - 1;
        for (index, send) in sends.iter_mut().enumerate() {
            let output = sent_now(send.as_mut()).await;
            if let Some(Err(error)) = output {
                return Err(error);
            }
            early.push(output);
            if index == 0 {
                self.begun.store(true, AtomicOrdering::SeqCst);
            }
            if index == commit_at {
                self.ended.store(true, AtomicOrdering::SeqCst);
            }
        }
        let mut counts = Vec::with_capacity(sends.len());
        for (send, early) in sends.iter_mut().zip(early) {
            counts.push(match early {
                Some(output) => output?,
                None => send.await?,
            });
        }
        // What is left: the statements' counts, without BEGIN's and COMMIT's.
        counts.pop();
        if begins {
            counts.remove(0);
        }
        Ok(counts)
    }

    /// Commits what the transaction's statements did (nothing to send when none ran).
    pub async fn commit(self) -> Result<(), Error> {
        if !self.begun.load(AtomicOrdering::SeqCst) {
            return Ok(());
        }
        self.ended.store(true, AtomicOrdering::SeqCst);
        self.sender.client.batch_execute("COMMIT").await
    }

    /// Runs `statement`, sending `BEGIN` ahead of it when it is the transaction's first.
    async fn opened<T>(
        &self,
        statement: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        if self.begun.swap(true, AtomicOrdering::SeqCst) {
            return statement.await;
        }
        // Polled in this order, so `BEGIN` is sent first.
        let ((), value) = tokio::try_join!(
            biased;
            self.sender.client.batch_execute(self.begin),
            statement
        )?;
        Ok(value)
    }
}

/// Runs a statement as a call of its `function` (sent on the first poll, as the statement
/// itself would be); returns the rows it changed. A function found missing is made again for
/// the next call.
async fn called(
    client: &deadpool_postgres::Client,
    functions: Option<&StatementFunctions>,
    function: &Function,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<u64, Error> {
    match client.query_typed(&function.call, params).await {
        Ok(rows) => {
            let changed = rows.first().and_then(|row| row.get::<_, Option<i64>>(0));
            Ok(changed.map_or(0, |changed| u64::try_from(changed).unwrap_or(0)))
        }
        Err(error) => {
            if let Some(functions) = functions {
                forget_if_gone(functions, function, &error);
            }
            Err(error)
        }
    }
}

/// After a call of `function` failed: if the function is gone, the next call makes it again.
fn forget_if_gone(functions: &StatementFunctions, function: &Function, error: &Error) {
    if error.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_FUNCTION) {
        functions.forget(&function.name);
    }
}

/// Polls `future` once: its output if it is already done, else `None`, having done what it does
/// before its first wait (for a statement: queued its request).
async fn sent_now<T>(mut future: Pin<&mut (dyn Future<Output = T> + Send + '_)>) -> Option<T> {
    std::future::poll_fn(|cx| {
        Poll::Ready(match future.as_mut().poll(cx) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        })
    })
    .await
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if *self.begun.get_mut() && !*self.ended.get_mut() {
            // Polling it once sends it; its answer is not awaited.
            let rollback = std::pin::pin!(self.sender.client.batch_execute("ROLLBACK"));
            let _ = rollback.poll(&mut Context::from_waker(Waker::noop()));
        }
    }
}

#[async_trait]
impl Db for Tx<'_> {
    async fn query(&self, sql: &str, params: &[&dyn Param]) -> Result<Vec<Row>, Error> {
        self.opened(self.sender.query(sql, params)).await
    }

    async fn query_one(&self, sql: &str, params: &[&dyn Param]) -> Result<Row, Error> {
        self.opened(self.sender.query_one(sql, params)).await
    }

    async fn query_opt(&self, sql: &str, params: &[&dyn Param]) -> Result<Option<Row>, Error> {
        self.opened(self.sender.query_opt(sql, params)).await
    }

    async fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64, Error> {
        self.opened(self.sender.execute(sql, params)).await
    }

    async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        self.opened(self.sender.batch_execute(sql)).await
    }

    async fn query_hot(&self, sql: &str, params: &[&dyn Param]) -> Result<Vec<Row>, Error> {
        let functions = match (self.sender.statements, self.functions) {
            (Statements::Unnamed, Some(functions)) => functions,
            _ => return self.query(sql, params).await,
        };
        let client = self.sender.client;
        self.opened(async move {
            match functions.function_for(sql, params, Returns::Rows).await {
                None => self.sender.query(sql, params).await,
                Some(function) => {
                    let rows = client.query_typed(&function.call, &typed(params)).await;
                    if let Err(error) = &rows {
                        forget_if_gone(functions, &function, error);
                    }
                    rows
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_shift_and_the_rest_stays() {
        assert_eq!(
            shift_placeholders("SELECT $1::text[], $10, $2 WHERE x = '$'", 7),
            "SELECT $8::text[], $17, $9 WHERE x = '$'"
        );
        assert_eq!(shift_placeholders("SELECT 1", 3), "SELECT 1");
    }

    /// A pool of one connection (so every transaction below shares it) on a scratch database
    /// with a table `t (n int)`, in both modes.
    async fn pools() -> Option<(crate::testing::ScratchDatabase, Vec<crate::connect::Pool>)> {
        let database = crate::testing::ScratchDatabase::create("reward_statements").await?;
        let mut pools = Vec::new();
        for statements in [Statements::Prepared, Statements::Unnamed] {
            let config = crate::connect::config_from_url(database.url()).expect("url");
            pools.push(crate::connect::pool_of(config, statements, 1).expect("pool"));
        }
        let client = pools[0].get().await.expect("connect");
        client
            .batch_execute("CREATE TABLE t (n int)")
            .await
            .expect("table");
        Some((database, pools))
    }

    async fn count(client: &impl Db) -> i64 {
        let row = client
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .expect("count");
        row.get(0)
    }

    #[tokio::test]
    async fn statements_sent_at_once_share_the_transaction_begun_with_the_first() {
        let Some((_database, pools)) = pools().await else {
            return;
        };
        for pool in &pools {
            let mut client = pool.get().await.expect("connect");
            let tx = client.transaction();
            let transaction_id = "SELECT txid_current()::bigint";
            let (first, second, ()) = tokio::try_join!(
                tx.query_one(transaction_id, &[]),
                tx.query_one(transaction_id, &[]),
                async { tx.execute("INSERT INTO t VALUES (1)", &[]).await.map(drop) },
            )
            .expect("statements");
            assert_eq!(first.get::<_, i64>(0), second.get::<_, i64>(0));
            tx.commit().await.expect("commit");
            // Outside a transaction, each statement has its own.
            let (first, second) = tokio::try_join!(
                client.query_one(transaction_id, &[]),
                client.query_one(transaction_id, &[]),
            )
            .expect("statements");
            assert_ne!(first.get::<_, i64>(0), second.get::<_, i64>(0));
        }
        assert_eq!(count(&pools[0].get().await.expect("connect")).await, 2);
    }

    #[tokio::test]
    async fn a_transaction_dropped_uncommitted_is_rolled_back_before_the_connection_is_reused() {
        let Some((_database, pools)) = pools().await else {
            return;
        };
        for pool in &pools {
            {
                let mut client = pool.get().await.expect("connect");
                let tx = client.transaction();
                tx.execute("INSERT INTO t VALUES (1)", &[])
                    .await
                    .expect("insert");
                assert_eq!(count(&tx).await, 1);
            }
            // The pool's one connection again: out of the transaction, nothing written.
            let mut client = pool.get().await.expect("connect");
            assert_eq!(count(&client).await, 0);
            // VACUUM refuses to run inside a transaction block.
            client
                .batch_execute("VACUUM t")
                .await
                .expect("out of the transaction");
            // A transaction in which nothing ran commits nothing, and sends nothing.
            client.transaction().commit().await.expect("empty commit");
            // One that failed is rolled back as a whole, and the connection goes on.
            let tx = client.transaction();
            tx.execute("INSERT INTO t VALUES (2)", &[])
                .await
                .expect("insert");
            assert!(tx.execute("INSERT INTO t VALUES ('x')", &[]).await.is_err());
            drop(tx);
            assert_eq!(count(&client).await, 0);
        }
    }

    #[tokio::test]
    async fn final_statements_and_commit_are_sent_together_in_order() {
        let Some((_database, pools)) = pools().await else {
            return;
        };
        for pool in &pools {
            let mut client = pool.get().await.expect("connect");
            client
                .batch_execute("DROP TABLE IF EXISTS ids; CREATE TABLE ids (id bigint)")
                .await
                .expect("table");
            let before = count(&client).await;
            // Begun by the final statements themselves: BEGIN, both, COMMIT, all in one
            // transaction (had COMMIT gone before the second, that one would get its own id).
            let record_id = "INSERT INTO ids SELECT txid_current()";
            let counts = client
                .transaction()
                .execute_and_commit(&[(record_id, &[]), (record_id, &[])])
                .await
                .expect("statements and commit");
            assert_eq!(counts, [1, 1]);
            // After statements of its own: the same transaction to the end.
            let tx = client.transaction();
            tx.execute(record_id, &[]).await.expect("first");
            let counts = tx
                .execute_and_commit(&[
                    ("INSERT INTO t VALUES ($1::int)", &[&7_i32]),
                    (record_id, &[]),
                ])
                .await
                .expect("statements and commit");
            assert_eq!(counts, [1, 1]);
            let transactions = client
                .query_one("SELECT count(DISTINCT id), count(*) FROM ids", &[])
                .await
                .expect("ids");
            assert_eq!(transactions.get::<_, i64>(0), 2);
            assert_eq!(transactions.get::<_, i64>(1), 4);
            assert_eq!(count(&client).await, before + 1);

            // Refused by the server: the error comes back and the whole transaction, the
            // statement before it included, is rolled back.
            let tx = client.transaction();
            tx.execute("INSERT INTO t VALUES (1)", &[])
                .await
                .expect("insert");
            let refused = tx
                .execute_and_commit(&[
                    ("INSERT INTO t VALUES (2)", &[]),
                    ("INSERT INTO t VALUES ('x')", &[]),
                ])
                .await;
            assert!(refused.is_err());
            assert_eq!(count(&client).await, before + 1);
            // A parameter of the wrong type: refused before it is sent (prepared) or by the
            // server (unnamed); nothing is committed either way.
            let tx = client.transaction();
            tx.execute("INSERT INTO t VALUES (1)", &[])
                .await
                .expect("insert");
            let wrong = tx
                .execute_and_commit(&[("INSERT INTO t VALUES ($1)", &[&"one"])])
                .await;
            assert!(wrong.is_err());
            assert_eq!(count(&client).await, before + 1);
            // Out of any transaction: VACUUM refuses to run inside one.
            client
                .batch_execute("VACUUM t")
                .await
                .expect("no transaction left open");
            // Nothing to run: commits what ran before, or sends nothing at all.
            let tx = client.transaction();
            tx.execute("INSERT INTO t VALUES (3)", &[])
                .await
                .expect("insert");
            assert!(tx.execute_and_commit(&[]).await.expect("commit").is_empty());
            assert_eq!(count(&client).await, before + 2);
            let nothing = client.transaction().execute_and_commit(&[]).await;
            assert!(nothing.expect("nothing").is_empty());
            client
                .batch_execute("VACUUM t")
                .await
                .expect("no transaction left open");
        }
    }

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
