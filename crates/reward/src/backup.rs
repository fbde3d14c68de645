//! `reward backup --to PATH`: a consistent, checked copy of a live SQLite database
//! (see reward_store_sqlite::backup for how), and where the key that opens its secrets lives.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use reward_store::secrets::SecretCipher;
use serde_json::json;

use crate::cli::BackupArgs;
use reward_server::store::redacted;

pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    let url = args.database.database_url;
    // Messages show the URL without its password.
    let shown = redacted(&url);
    let Some(source) = reward_store_sqlite::path_from_url(&url) else {
        if reward_store_postgres::is_postgres_url(&url) {
            let password_note = if shown == url {
                ""
            } else {
                " (with the password in place of ***)"
            };
            anyhow::bail!(
                "reward backup copies SQLite databases; on PostgreSQL use pg_dump: \
                 pg_dump --format=custom --file={} '{shown}'{password_note}",
                args.to.display(),
            );
        }
        anyhow::bail!("--database-url: expected sqlite://PATH, not '{shown}'");
    };
    if args.database.database_listen_url.is_some() {
        anyhow::bail!(
            "--database-listen-url / REWARD_DATABASE_LISTEN_URL is for PostgreSQL only; \
             the backup is of SQLite ({shown})"
        );
    }
    let target = args.to;
    let started = Instant::now();
    let bytes = {
        let (source, target) = (source.clone(), target.clone());
        tokio::task::spawn_blocking(move || reward_store_sqlite::backup::backup(&source, &target))
            .await
            .context("the backup task stopped")??
    };
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{}", key_reminder(&source, &target));
    println!(
        "{}",
        json!({"path": target.display().to_string(), "bytes": bytes, "seconds": seconds})
    );
    Ok(())
}

/// One line: the secret key is not in the backup, and where it is.
fn key_reminder(source: &Path, target: &Path) -> String {
    if std::env::var_os("REWARD_SECRET_KEY").is_some() {
        return "note: the backup does not hold the secret key (REWARD_SECRET_KEY): serve the \
                copy with the same REWARD_SECRET_KEY"
            .to_owned();
    }
    let key_file = SecretCipher::key_file_beside(source);
    let not_yet = if key_file.exists() {
        ""
    } else {
        " (not created yet: `reward serve` creates it)"
    };
    format!(
        "note: the backup does not hold the secret key; it is in {}{not_yet}: copy it to {} to \
         serve the copy, and keep it apart from the backup",
        key_file.display(),
        SecretCipher::key_file_beside(target).display()
    )
}
