//! The hottest statements as PL/pgSQL functions, for connections that cannot keep prepared
//! statements ([`Statements::Unnamed`](crate::statements::Statements): PgBouncer before 1.21 in
//! transaction mode).
//!
//! An unnamed statement is parsed and planned on every call, and the largest of Reward's (a
//! trigger-event batch's inserts, a batch of attempts, their roll-ups) take longer to plan than
//! a small batch takes to run; three nodes make three times the batches, so through PgBouncer
//! they paid for it three times over (docs/scaling.md). A PL/pgSQL function keeps the plans of
//! its statements in the server session that runs it, and PgBouncer keeps its server sessions
//! open, so a statement sent as a call of its function (`SELECT f($1, ...)`: a call is quick to
//! plan) is planned once per server connection instead of once per call.
//!
//! Each function is named after a digest of its statement and parameter types, so a name always
//! means one body: it is created the first time a node needs it (on a connection of its own,
//! outside any transaction; another node creating it at the same moment is no error) and never
//! replaced. A node that cannot create it (no right to, say) sends the statement itself, as
//! before. One dropped while a node relies on it fails that call, and the node creates it again
//! for the next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Config, NoTls};

use crate::statements::Param;

/// Where a statement's function stands on this node.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    Created,
    /// Being created by one call; the others send the statement itself meanwhile (one
    /// connection to create it, not one per call arriving at once).
    Creating,
    /// Creating it failed: the statement is sent itself until then, when creating is tried
    /// again (the failure may have been the database restarting).
    Unavailable {
        until: Instant,
    },
}

/// The map behind `mutex`; a panic while another call held it left nothing half-changed that a
/// later call could trip over (each change is one insert or remove).
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long a node sends a statement itself after failing to create its function.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The functions of one node's statements, created on demand.
pub struct StatementFunctions {
    config: Config,
    known: Mutex<HashMap<String, Known>>,
    /// Each statement's functions by its text, so a call does not digest the text again: a
    /// function's name is a SHA-256 of the whole statement, which is most of what a hot call
    /// costs the node otherwise.
    named: Mutex<HashMap<String, Vec<Arc<Function>>>>,
    retry_after: Duration,
}

/// What a statement's function returns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    /// The count of rows the statement changed (a statement that returns no rows).
    Changed,
    /// The statement's rows.
    Rows,
}

/// A statement as a function: its name, and the call that runs the statement with the same
/// parameters.
pub struct Function {
    pub name: String,
    pub call: String,
    signature: String,
    types: Vec<Type>,
    returns: Returns,
}

impl Function {
    /// `sql` taking `params`, returning what `returns` says.
    pub fn of(sql: &str, params: &[&dyn Param], returns: Returns) -> Self {
        let types: Vec<Type> = params.iter().map(|param| param.declared_type()).collect();
        // The types' own names (`_text` for `text[]`, `int8`, ...), as PostgreSQL spells them.
        let signature = types.iter().map(Type::name).collect::<Vec<_>>().join(", ");
        let kind = match returns {
            Returns::Changed => "changed",
            Returns::Rows => "rows",
        };
        let digest =
            reward_core::digest::sha256_hex(format!("{kind}\n{signature}\n{sql}").as_bytes());
        let name = format!("reward_statement_{}", &digest[..24]);
        let arguments: Vec<String> = (1..=params.len()).map(|n| format!("${n}")).collect();
        let call = match returns {
            Returns::Changed => format!("SELECT {name}({})", arguments.join(", ")),
            Returns::Rows => format!("SELECT * FROM {name}({})", arguments.join(", ")),
        };
        Self {
            name,
            call,
            signature,
            types,
            returns,
        }
    }

    /// Whether this is the function of a statement taking `params` and returning `returns`.
    fn takes(&self, params: &[&dyn Param], returns: Returns) -> bool {
        self.returns == returns
            && self.types.len() == params.len()
            && self
                .types
                .iter()
                .zip(params)
                .all(|(declared, param)| *declared == param.declared_type())
    }

    /// The statement that makes the function of `sql`, whose rows (if it returns them) have
    /// `columns`' types. `$n` in the body are the function's parameters, in order.
    fn definition(&self, sql: &str, columns: &[String]) -> String {
        let (name, signature) = (&self.name, &self.signature);
        match self.returns {
            // The variable's name is one no statement's column has (PL/pgSQL refuses a name
            // that could be either).
            Returns::Changed => format!(
                "CREATE FUNCTION {name}({signature}) RETURNS bigint LANGUAGE plpgsql AS \
                 $reward_statement$\n\
                 DECLARE reward_rows_changed bigint;\n\
                 BEGIN\n{sql};\n\
                 GET DIAGNOSTICS reward_rows_changed = ROW_COUNT;\n\
                 RETURN reward_rows_changed;\n\
                 END\n$reward_statement$"
            ),
            // The result columns are named by position (callers read them so); a name in the
            // statement is always its column's.
            Returns::Rows => {
                let table: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(index, type_name)| format!("reward_column_{} {type_name}", index + 1))
                    .collect();
                format!(
                    "CREATE FUNCTION {name}({signature}) RETURNS TABLE ({}) LANGUAGE plpgsql AS \
                     $reward_statement$\n\
                     #variable_conflict use_column\n\
                     BEGIN\n\
                     RETURN QUERY {sql};\n\
                     END\n$reward_statement$",
                    table.join(", ")
                )
            }
        }
    }
}

impl StatementFunctions {
    /// Functions created through connections made from `config` (the node's database URL).
    pub fn new(config: Config) -> Self {
        Self::retrying_after(config, RETRY_AFTER)
    }

    fn retrying_after(config: Config, retry_after: Duration) -> Self {
        Self {
            config,
            known: Mutex::new(HashMap::new()),
            named: Mutex::new(HashMap::new()),
            retry_after,
        }
    }

    /// `sql`'s function, created if this node has not yet; `None` when it cannot be (the
    /// statement is then sent itself).
    pub async fn function_for(
        &self,
        sql: &str,
        params: &[&dyn Param],
        returns: Returns,
    ) -> Option<Arc<Function>> {
        if sql.contains("$reward_statement$") {
            return None;
        }
        let function = self.function_of(sql, params, returns);
        {
            let mut known = locked(&self.known);
            match known.get(&function.name) {
                Some(Known::Created) => return Some(function),
                Some(Known::Creating) => return None,
                Some(Known::Unavailable { until }) if Instant::now() < *until => return None,
                Some(Known::Unavailable { .. }) | None => {}
            }
            known.insert(function.name.clone(), Known::Creating);
        }
        // A call dropped while creating (its task cancelled) leaves no `Creating` behind.
        let creating = Creating {
            functions: self,
            name: &function.name,
        };
        let outcome = match self.create(&function, sql, params).await {
            Ok(()) => Known::Created,
            Err(error) => {
                tracing::warn!(
                    function = %function.name,
                    error = %crate::errors::describe(&error),
                    retry_in_seconds = self.retry_after.as_secs(),
                    "could not create a statement's function; sending the statement itself"
                );
                Known::Unavailable {
                    until: Instant::now() + self.retry_after,
                }
            }
        };
        creating.settle(outcome);
        (outcome == Known::Created).then_some(function)
    }

    /// [`Function::of`], worked out once per statement.
    fn function_of(&self, sql: &str, params: &[&dyn Param], returns: Returns) -> Arc<Function> {
        let mut named = locked(&self.named);
        if let Some(function) = named
            .get(sql)
            .and_then(|functions| functions.iter().find(|f| f.takes(params, returns)))
        {
            return Arc::clone(function);
        }
        let function = Arc::new(Function::of(sql, params, returns));
        named
            .entry(sql.to_owned())
            .or_default()
            .push(Arc::clone(&function));
        function
    }

    /// After a call failed because the function is gone: the next call creates it again.
    pub fn forget(&self, name: &str) {
        locked(&self.known).remove(name);
    }

    async fn create(
        &self,
        function: &Function,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<(), tokio_postgres::Error> {
        let (mut client, connection) = self.config.connect(NoTls).await?;
        let driving = tokio::spawn(connection);
        let outcome = async {
            // One transaction, so through PgBouncer every message goes to one server connection:
            // describing the statement prepares it under a name, and that name is closed again
            // there (the statement dropped before COMMIT) instead of staying behind for the next
            // client of that server connection, whose own first statement has the same name.
            let tx = client.transaction().await?;
            // The types of the rows it returns, as the server describes the statement.
            let mut columns = Vec::new();
            if function.returns == Returns::Rows {
                let types: Vec<_> = params.iter().map(|param| param.declared_type()).collect();
                let described = tx.prepare_typed(sql, &types).await?;
                columns = described
                    .columns()
                    .iter()
                    .map(|column| column.type_().name().to_owned())
                    .collect();
            }
            tx.batch_execute(&function.definition(sql, &columns))
                .await?;
            tx.commit().await
        }
        .await;
        drop(client);
        let _ = driving.await;
        match outcome {
            Ok(()) => Ok(()),
            // Made already, by this node before a restart or by another one just now.
            Err(error)
                if matches!(
                    error.code(),
                    Some(&SqlState::DUPLICATE_FUNCTION) | Some(&SqlState::UNIQUE_VIOLATION)
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }
}

/// A function this node is creating, until it knows the outcome.
struct Creating<'a> {
    functions: &'a StatementFunctions,
    name: &'a str,
}

impl Creating<'_> {
    /// Records what creating it came to.
    fn settle(self, outcome: Known) {
        locked(&self.functions.known).insert(self.name.to_owned(), outcome);
        // Settled: nothing for `drop` to undo.
        std::mem::forget(self);
    }
}

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        self.functions.forget(self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statements::{Db, Statements};

    async fn scratch() -> Option<(crate::testing::ScratchDatabase, Config)> {
        let database = crate::testing::ScratchDatabase::create("reward_functions").await?;
        let config = crate::connect::config_from_url(database.url()).expect("url");
        Some((database, config))
    }

    async fn functions_made(client: &impl Db) -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM pg_proc WHERE proname LIKE 'reward_statement_%'",
                &[],
            )
            .await
            .expect("functions")
            .get(0)
    }

    #[tokio::test]
    async fn unnamed_hot_statements_run_as_functions_made_once_and_again_when_dropped() {
        let Some((_database, config)) = scratch().await else {
            return;
        };
        let pool = crate::connect::pool_of(config, Statements::Unnamed, 2).expect("pool");
        let mut client = pool.get().await.expect("connect");
        client
            .batch_execute("CREATE TABLE t (n int)")
            .await
            .expect("table");
        let insert = "INSERT INTO t SELECT unnest($1::int[])";
        for round in 0..3 {
            let numbers: Vec<i32> = vec![round, round + 10];
            let counts = client
                .transaction()
                .execute_and_commit(&[(insert, &[&numbers])])
                .await
                .expect("insert");
            assert_eq!(counts, [2]);
        }
        assert_eq!(functions_made(&client).await, 1);
        let total: i64 = client
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(total, 6);
        // Dropped behind the node's back: that call fails, the next one makes it again.
        let name = Function::of(insert, &[&vec![1_i32]], Returns::Changed).name;
        client
            .batch_execute(&format!("DROP FUNCTION {name}"))
            .await
            .expect("drop");
        let numbers = vec![7_i32];
        let gone = client
            .transaction()
            .execute_and_commit(&[(insert, &[&numbers])])
            .await;
        assert!(gone.is_err());
        let again = client
            .transaction()
            .execute_and_commit(&[(insert, &[&numbers])])
            .await;
        assert_eq!(again.expect("made again"), [1]);
        assert_eq!(functions_made(&client).await, 1);
        // Statements that return rows: their function returns the same rows, by position.
        let returning = "INSERT INTO t SELECT unnest($1::int[]) RETURNING n, n > 5, 'x' || n";
        for round in 0..2 {
            let numbers = vec![4_i32 + round, 6];
            let tx = client.transaction();
            let rows = tx.query_hot(returning, &[&numbers]).await.expect("rows");
            let read = tx
                .query_hot(
                    "SELECT count(*) FROM t WHERE n = ANY($1::int[])",
                    &[&numbers],
                )
                .await
                .expect("read");
            tx.commit().await.expect("commit");
            let got: Vec<(i32, bool, String)> = rows
                .iter()
                .map(|row| (row.get(0), row.get(1), row.get(2)))
                .collect();
            let first = 4 + round;
            assert_eq!(
                got,
                [
                    (first, first > 5, format!("x{first}")),
                    (6, true, "x6".to_owned())
                ]
            );
            assert!(read[0].get::<_, i64>(0) >= 2);
        }
        assert_eq!(functions_made(&client).await, 3);
        // Prepared statements keep their plans already: no function.
        let prepared = crate::connect::pool_of(
            crate::connect::config_from_url(_database.url()).expect("url"),
            Statements::Prepared,
            1,
        )
        .expect("pool");
        let mut client = prepared.get().await.expect("connect");
        let other = "INSERT INTO t SELECT unnest($1::int[]) + 1";
        client
            .transaction()
            .execute_and_commit(&[(other, &[&numbers])])
            .await
            .expect("insert");
        let tx = client.transaction();
        tx.query_hot("SELECT n + 1 FROM t WHERE n = ANY($1::int[])", &[&numbers])
            .await
            .expect("read");
        tx.commit().await.expect("commit");
        assert_eq!(functions_made(&client).await, 3);
    }

    #[tokio::test]
    async fn a_node_that_cannot_make_functions_sends_the_statements_themselves() {
        let Some((database, config)) = scratch().await else {
            return;
        };
        let owner = crate::connect::pool_of(config.clone(), Statements::Prepared, 1)
            .expect("pool")
            .get()
            .await
            .expect("connect");
        // A role that may write the table but create nothing (PostgreSQL 15 grants no one
        // CREATE in `public` by default).
        owner
            .batch_execute(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reward_no_create') THEN
                     CREATE ROLE reward_no_create LOGIN;
                   END IF;
                 END $$;
                 REVOKE CREATE ON SCHEMA public FROM PUBLIC;
                 CREATE TABLE t (n int);
                 GRANT ALL ON t TO reward_no_create;",
            )
            .await
            .expect("role");
        let mut limited = config;
        limited.user("reward_no_create");
        let pool = crate::connect::pool_of(limited.clone(), Statements::Unnamed, 1).expect("pool");
        let mut client = pool.get().await.expect("connect");
        let numbers = vec![1_i32, 2];
        for _ in 0..2 {
            let counts = client
                .transaction()
                .execute_and_commit(&[("INSERT INTO t SELECT unnest($1::int[])", &[&numbers])])
                .await
                .expect("sent itself");
            assert_eq!(counts, [2]);
        }
        assert_eq!(functions_made(&owner).await, 0);

        // Once the role may create, the node tries again after a while, not before.
        let functions = StatementFunctions::retrying_after(limited, Duration::from_millis(300));
        let insert = "INSERT INTO t SELECT unnest($1::int[])";
        let made = || async {
            functions
                .function_for(insert, &[&numbers], Returns::Changed)
                .await
                .is_some()
        };
        assert!(!made().await);
        owner
            .batch_execute("GRANT CREATE ON SCHEMA public TO reward_no_create")
            .await
            .expect("grant");
        assert!(!made().await, "not tried again at once");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(made().await, "tried again after the wait");
        assert_eq!(functions_made(&owner).await, 1);
        drop(database);
    }

    #[test]
    fn a_function_is_named_after_its_statement_and_parameter_types() {
        let ids: Vec<&str> = vec!["a"];
        let insert = "INSERT INTO t SELECT unnest($1::text[])";
        let first = Function::of(insert, &[&ids], Returns::Changed);
        let again = Function::of(insert, &[&ids], Returns::Changed);
        let other = Function::of(
            "INSERT INTO u SELECT unnest($1::text[])",
            &[&ids],
            Returns::Changed,
        );
        let numbers: Vec<i64> = vec![1];
        let typed_otherwise = Function::of(insert, &[&numbers], Returns::Changed);
        let returning_rows = Function::of(insert, &[&ids], Returns::Rows);
        assert_eq!(first.name, again.name);
        assert_ne!(first.name, other.name);
        assert_ne!(first.name, typed_otherwise.name);
        assert_ne!(first.name, returning_rows.name);
        assert_eq!(first.call, format!("SELECT {}($1)", first.name));
        assert_eq!(
            returning_rows.call,
            format!("SELECT * FROM {}($1)", returning_rows.name)
        );
        assert!(first
            .definition(insert, &[])
            .contains(&format!("{}(_text)", first.name)));
    }

    #[test]
    fn a_statement_s_function_is_worked_out_once_per_types_and_returns() {
        let functions = StatementFunctions::new(Config::new());
        let ids: Vec<&str> = vec!["a"];
        let numbers: Vec<i64> = vec![1];
        let insert = "INSERT INTO t SELECT unnest($1::text[])";
        let first = functions.function_of(insert, &[&ids], Returns::Changed);
        // The same text from another place in memory is the same statement.
        let elsewhere = String::from(insert);
        let again = functions.function_of(elsewhere.as_str(), &[&ids], Returns::Changed);
        assert!(Arc::ptr_eq(&first, &again), "worked out once");
        let typed_otherwise = functions.function_of(insert, &[&numbers], Returns::Changed);
        let returning_rows = functions.function_of(insert, &[&ids], Returns::Rows);
        for (memoized, fresh) in [
            (&first, Function::of(insert, &[&ids], Returns::Changed)),
            (
                &typed_otherwise,
                Function::of(insert, &[&numbers], Returns::Changed),
            ),
            (
                &returning_rows,
                Function::of(insert, &[&ids], Returns::Rows),
            ),
        ] {
            assert_eq!(memoized.name, fresh.name);
            assert_eq!(memoized.call, fresh.call);
        }
        assert_ne!(first.name, typed_otherwise.name);
        assert_ne!(first.name, returning_rows.name);
    }
}
