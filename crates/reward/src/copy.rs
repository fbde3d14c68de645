//! `reward copy --from sqlite://PATH --to postgres://...`: the move from one machine to several
//! nodes. Every table of [`reward_store::transfer::TABLES`] is read out of the source and written
//! into the empty target in one transaction, secrets opened with the source's key and sealed again
//! with the target's; then one JSON line of rows per table, counted in the target, goes to stdout.
//!
//! Decided here (README, "Running several nodes"): only SQLite → PostgreSQL (a PostgreSQL
//! database moves with `pg_dump`; back to SQLite is not a move anyone needs to scale); a served
//! source is refused (the export takes the file's exclusive lock, which a running server's open
//! connections prevent, and holds it to the end, so no server starts on it meanwhile); a target
//! with rows is refused before anything is changed there; leases of the stopped source are
//! dropped, so the target's nodes claim those deliveries at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use reward_store::secrets::SecretCipher;
use reward_store::transfer::{reseal_row, Keys, Row, Table, Treatment, TABLES};
use reward_store_postgres::import::{Import, PostgresTarget};
use reward_store_sqlite::export::SqliteSource;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::cli::CopyArgs;
use reward_server::store::redacted;

/// Rows read, sealed and inserted together: one INSERT per batch, and a bound on what is held in
/// memory (events hold payloads of up to a few KiB).
const BATCH_ROWS: usize = 500;
/// Batches read ahead of the target.
const BATCHES_AHEAD: usize = 4;
/// How often the progress line on stderr is renewed within a table.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub async fn run(args: CopyArgs) -> anyhow::Result<()> {
    let source_path = source_path(&args.from)?;
    if !reward_store_postgres::is_postgres_url(&args.to) {
        anyhow::bail!(
            "--to: copy writes into PostgreSQL only (postgres://...), not '{}'",
            redacted(&args.to)
        );
    }
    let target_key = args.to_secret_key.as_deref().context(
        "--to-secret-key / REWARD_TO_SECRET_KEY is required: the key the target's nodes will run \
         with as REWARD_SECRET_KEY (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)",
    )?;
    let target_key = SecretCipher::from_base64(target_key)
        .map_err(|error| anyhow::anyhow!("--to-secret-key / REWARD_TO_SECRET_KEY: {error}"))?;
    let source_key = source_key(args.from_secret_key.as_deref(), &source_path)?;

    let source = SqliteSource::open(&source_path)?;
    // Every sealed value must open before the target is touched: a wrong or missing source key
    // found halfway would leave the target migrated (though empty), and a failed copy changes
    // nothing there.
    let (source, source_key, target_key) = tokio::task::spawn_blocking(move || {
        check_sealed_values_open(&source, &source_key, &target_key)
            .map(|()| (source, source_key, target_key))
    })
    .await
    .context("the source's check stopped")??;
    let mut target = PostgresTarget::connect(&args.to).await?;
    target.refuse_if_it_has_accounts().await?;
    target.migrate().await?;
    let import = target.begin().await?;
    let written = carry(source, &import, source_key, target_key).await?;
    let counts = import.commit(&written).await?;

    let line: Map<String, Value> = counts
        .into_iter()
        .map(|(table, rows)| (table.to_owned(), Value::from(rows)))
        .collect();
    println!("{}", Value::Object(line));
    Ok(())
}

/// The source's file, from `--from`.
fn source_path(url: &str) -> anyhow::Result<PathBuf> {
    if reward_store_postgres::is_postgres_url(url) {
        anyhow::bail!(
            "--from: copy reads from SQLite only (sqlite://PATH); move a PostgreSQL database with \
             pg_dump"
        );
    }
    reward_store_sqlite::path_from_url(url)
        .with_context(|| format!("--from: '{}' is not sqlite://PATH", redacted(url)))
}

/// The key the source's secrets open with: the given one, else the key file beside the
/// database, read but never created. Without either, only secrets stored plain (before
/// encryption) can be copied.
fn source_key(given: Option<&str>, database: &Path) -> anyhow::Result<SourceKey> {
    if let Some(key) = given {
        let cipher = SecretCipher::from_base64(key).map_err(|error| {
            anyhow::anyhow!("--from-secret-key / REWARD_FROM_SECRET_KEY: {error}")
        })?;
        return Ok(SourceKey {
            cipher,
            origin: "--from-secret-key".to_owned(),
        });
    }
    let file = SecretCipher::key_file_beside(database);
    if !file.is_file() {
        return Ok(SourceKey {
            cipher: SecretCipher::plaintext(),
            origin: format!(
                "none: no --from-secret-key and no key file at {}",
                file.display()
            ),
        });
    }
    let cipher = SecretCipher::read_key_file(&file).map_err(|error| anyhow::anyhow!(error))?;
    Ok(SourceKey {
        cipher,
        origin: format!("the key file {}", file.display()),
    })
}

/// Opens (and seals again, as the copy will) every sealed value of the source, keeping none.
/// Only tables with a sealed column are read: webhooks and kept idempotent answers, small
/// beside events and deliveries.
fn check_sealed_values_open(
    source: &SqliteSource,
    source_key: &SourceKey,
    target_key: &SecretCipher,
) -> anyhow::Result<()> {
    let keys = Keys {
        source: &source_key.cipher,
        target: target_key,
    };
    let sealed = |table: &&Table| {
        table.columns.iter().any(|column| {
            matches!(
                column.treatment,
                Treatment::SealedSecret
                    | Treatment::SealedPreviousSecrets
                    | Treatment::SealedHeaders
                    | Treatment::SealedAnswer
            )
        })
    };
    for table in TABLES.iter().filter(sealed) {
        source.read_table(table, BATCH_ROWS, |mut rows| -> anyhow::Result<()> {
            for row in &mut rows {
                reseal_row(table, row, &keys).map_err(|error| {
                    anyhow::anyhow!(
                        "{error}; the source's key: {} (nothing was changed in the target)",
                        source_key.origin
                    )
                })?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// The key the source's secrets open with.
struct SourceKey {
    cipher: SecretCipher,
    /// Where it came from, for the message when a secret does not open with it.
    origin: String,
}

/// A message from the reading thread.
enum Carried {
    Rows(&'static Table, Vec<Row>),
    Done(&'static Table, u64),
}

/// Reads (on a thread of its own: SQLite is blocking) and writes (here) at once, a few batches
/// apart; returns the rows written per table.
async fn carry(
    source: SqliteSource,
    import: &Import<'_>,
    source_key: SourceKey,
    target_key: SecretCipher,
) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let (sender, mut receiver) = mpsc::channel::<Carried>(BATCHES_AHEAD);
    let reading = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let keys = Keys {
            source: &source_key.cipher,
            target: &target_key,
        };
        for table in TABLES {
            let read = source.read_table(table, BATCH_ROWS, |mut rows| {
                for row in &mut rows {
                    reseal_row(table, row, &keys).map_err(|error| {
                        anyhow::anyhow!("{error}; the source's key: {}", source_key.origin)
                    })?;
                }
                sender
                    .blocking_send(Carried::Rows(table, rows))
                    .map_err(|_| anyhow::anyhow!("the target stopped taking rows"))
            })?;
            sender
                .blocking_send(Carried::Done(table, read))
                .map_err(|_| anyhow::anyhow!("the target stopped taking rows"))?;
        }
        Ok(())
    });

    let mut written = Vec::with_capacity(TABLES.len());
    let mut progress = Progress::default();
    let writing = async {
        while let Some(carried) = receiver.recv().await {
            match carried {
                Carried::Rows(table, rows) => {
                    import.insert(table, &rows).await?;
                    progress.rows(table.name, rows.len());
                }
                Carried::Done(table, rows) => {
                    progress.done(table.name, rows);
                    written.push((table.name, rows));
                }
            }
        }
        anyhow::Ok(())
    };
    let wrote = writing.await;
    // A failed write drops the receiver, which stops the reader; its error is then only the
    // echo of this one.
    drop(receiver);
    let read = reading.await.context("the reading thread")?;
    wrote?;
    read?;
    Ok(written)
}

/// The progress line on stderr: a table's rows so far, at most once a second, and its total.
#[derive(Default)]
struct Progress {
    table_rows: usize,
    last_shown: Option<Instant>,
}

impl Progress {
    fn rows(&mut self, table: &str, rows: usize) {
        self.table_rows += rows;
        let due = self
            .last_shown
            .is_none_or(|shown| shown.elapsed() >= PROGRESS_EVERY);
        if due {
            eprintln!("copy: {table}: {} rows so far", self.table_rows);
            self.last_shown = Some(Instant::now());
        }
    }

    fn done(&mut self, table: &str, rows: u64) {
        eprintln!("copy: {table}: {rows} rows copied");
        self.table_rows = 0;
        self.last_shown = Some(Instant::now());
    }
}
