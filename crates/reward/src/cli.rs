//! The command line (SPEC §2). Every setting is a flag and an environment variable of the same
//! meaning; `reward serve --help` lists them.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use reward_core::retry::parse_duration;
use reward_server::config::PublicUrl;

#[derive(Parser)]
#[command(
    name = "reward",
    version,
    about = "Reward: rewards and webhooks in one binary."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the API, the dashboard and the delivery workers.
    Serve(Box<ServeArgs>),
    /// Manage accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Measure: start a server (or use --target), drive load through its API and report
    /// throughput, latency percentiles, peak memory and CPU per delivery.
    Bench(crate::bench::BenchArgs),
    /// Create the database if needed (PostgreSQL too, when the user may) and apply every pending
    /// migration, then exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Copy everything from an SQLite database into an empty PostgreSQL one, to move to several
    /// nodes. Stop `reward serve` on the source first. Prints one JSON line of rows per table,
    /// read back from the target.
    Copy(CopyArgs),
    /// Receive webhooks locally: verify each signature, print the event, answer 204 (400 when
    /// the signature is bad).
    Listen(ListenArgs),
    /// Copy a SQLite database consistently while it is being served, check the copy, and print
    /// {"path", "bytes", "seconds"} as one JSON line. The secret key is not in the copy.
    Backup(BackupArgs),
}

#[derive(Args)]
pub struct BackupArgs {
    /// Where the copy goes: a new file (an existing one is never overwritten).
    #[arg(long, value_name = "PATH", value_parser = parse_file_path)]
    pub to: std::path::PathBuf,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// OpenTelemetry traces: the standard `OTEL_*` variables, each also a flag of the same meaning
/// (checked by `reward_server::traces::TraceSettings`). Off unless an endpoint is set.
/// `OTEL_EXPORTER_OTLP_HEADERS` is read from the environment by the OTLP exporter itself.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "OpenTelemetry traces (off unless an endpoint is set)")]
pub struct TraceArgs {
    /// The collector's OTLP/HTTP address; `/v1/traces` is appended.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// The full traces URL instead, used as it is.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", value_name = "URL")]
    pub otel_exporter_otlp_traces_endpoint: Option<String>,
    /// Only `http/protobuf` is built in [default: http/protobuf].
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL")]
    pub otel_exporter_otlp_protocol: Option<String>,
    /// The traces' protocol, over OTEL_EXPORTER_OTLP_PROTOCOL.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")]
    pub otel_exporter_otlp_traces_protocol: Option<String>,
    /// The `service.name` spans carry [default: reward].
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,
    /// One export's timeout, milliseconds [default: 10000].
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TIMEOUT", value_name = "MS")]
    pub otel_exporter_otlp_timeout: Option<String>,
    /// How long finished spans wait to go out together, milliseconds [default: 5000].
    #[arg(long, env = "OTEL_BSP_SCHEDULE_DELAY", value_name = "MS")]
    pub otel_bsp_schedule_delay: Option<String>,
    /// Spans waiting for export at most; past it they are dropped (and counted) [default: 2048].
    #[arg(long, env = "OTEL_BSP_MAX_QUEUE_SIZE", value_name = "SPANS")]
    pub otel_bsp_max_queue_size: Option<String>,
    /// Spans in one export at most [default: 512].
    #[arg(long, env = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", value_name = "SPANS")]
    pub otel_bsp_max_export_batch_size: Option<String>,
    /// `true` turns tracing off whatever else is set [default: false].
    #[arg(long, env = "OTEL_SDK_DISABLED", value_name = "BOOL")]
    pub otel_sdk_disabled: Option<String>,
}

impl TraceArgs {
    /// The value of a setting by its variable's name: the flag, else the variable (clap reads
    /// it), else none.
    pub fn lookup(&self, variable: &str) -> Option<String> {
        let value = match variable {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => &self.otel_exporter_otlp_endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => &self.otel_exporter_otlp_traces_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL" => &self.otel_exporter_otlp_protocol,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" => &self.otel_exporter_otlp_traces_protocol,
            "OTEL_SERVICE_NAME" => &self.otel_service_name,
            "OTEL_EXPORTER_OTLP_TIMEOUT" => &self.otel_exporter_otlp_timeout,
            "OTEL_BSP_SCHEDULE_DELAY" => &self.otel_bsp_schedule_delay,
            "OTEL_BSP_MAX_QUEUE_SIZE" => &self.otel_bsp_max_queue_size,
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" => &self.otel_bsp_max_export_batch_size,
            "OTEL_SDK_DISABLED" => &self.otel_sdk_disabled,
            _ => return None,
        };
        value.clone()
    }
}

#[derive(Args)]
pub struct CopyArgs {
    /// The database to copy: sqlite://PATH, not served while the copy runs.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// Where to copy it: postgres://..., an empty database (migrated first).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Base64 of 32 bytes: the key the source's webhook secrets are sealed with. Default: the
    /// key file beside the source database (PATH.key), as `reward serve` uses it.
    #[arg(long, env = "REWARD_FROM_SECRET_KEY", hide_env_values = true)]
    pub from_secret_key: Option<String>,
    /// Base64 of 32 bytes: the key the target's nodes will run with (their REWARD_SECRET_KEY);
    /// every secret is sealed again with it. Required.
    #[arg(long, env = "REWARD_TO_SECRET_KEY", hide_env_values = true)]
    pub to_secret_key: Option<String>,
}

#[derive(Args)]
pub struct ListenArgs {
    /// The webhook's signing secret (whsec_...).
    #[arg(long, env = "REWARD_LISTEN_SECRET")]
    pub secret: String,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
}

#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// Where data lives: sqlite://PATH (created when missing) or postgres://...
    #[arg(long, env = "REWARD_DATABASE_URL", default_value = reward_server::Config::DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// PostgreSQL: where each node listens for work the others announce. `LISTEN` needs a session
    /// of its own, so behind PgBouncer in transaction mode point this at PostgreSQL itself (or a
    /// session-mode pool). Default: the database URL.
    #[arg(long, env = "REWARD_DATABASE_LISTEN_URL")]
    pub database_listen_url: Option<String>,
    /// PostgreSQL: prepare each statement once per connection and keep it. false sends every
    /// statement unnamed, parsed each time: for PgBouncer before 1.21 in transaction mode.
    #[arg(
        long,
        env = "REWARD_DATABASE_PREPARED_STATEMENTS",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    pub database_prepared_statements: bool,
    /// PostgreSQL: connections this node keeps open at most, besides the one listening (4 to
    /// 1000). Every node's, plus one each, must fit in the server's max_connections (100 by
    /// default), or in PgBouncer's max_client_conn.
    #[arg(
        long,
        env = "REWARD_DATABASE_POOL_SIZE",
        default_value_t = reward_server::store::POOL_SIZE,
        value_parser = pool_size
    )]
    pub database_pool_size: usize,
}

/// A pool size within what a node can use.
fn pool_size(text: &str) -> Result<usize, String> {
    use reward_server::store::{MAX_POOL_SIZE, MIN_POOL_SIZE};
    text.parse::<usize>()
        .ok()
        .filter(|size| (MIN_POOL_SIZE..=MAX_POOL_SIZE).contains(size))
        .ok_or_else(|| {
            format!("a whole number of connections from {MIN_POOL_SIZE} to {MAX_POOL_SIZE}")
        })
}

impl DatabaseArgs {
    /// The settings beside the URL, as the store takes them.
    pub fn options(&self) -> reward_server::store::ConnectOptions {
        reward_server::store::ConnectOptions {
            listen_url: self.database_listen_url.clone(),
            statements: if self.database_prepared_statements {
                reward_server::store::Statements::Prepared
            } else {
                reward_server::store::Statements::Unnamed
            },
            pool_size: Some(self.database_pool_size),
        }
    }
}

#[derive(Args)]
pub struct ServeArgs {
    /// A TOML file of settings (keys as the flags, with `_`: `retry_base = "30s"`). Flags and
    /// environment variables override it; it overrides the defaults.
    #[arg(long, env = "REWARD_CONFIG")]
    pub config: Option<std::path::PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "REWARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Retries after a delivery's first attempt.
    #[arg(long, env = "REWARD_MAX_RETRIES", default_value_t = 5)]
    pub max_retries: u32,

    /// Delay before the first retry (e.g. 30s, 250ms, 2h).
    #[arg(long, env = "REWARD_RETRY_BASE", default_value = "30s", value_parser = parse_duration)]
    pub retry_base: Duration,

    /// Backoff factor: retry k waits base × factor^(k-1).
    #[arg(long, env = "REWARD_RETRY_FACTOR", default_value_t = 6.0, value_parser = parse_factor)]
    pub retry_factor: f64,

    /// One delivery attempt's timeout.
    #[arg(long, env = "REWARD_DELIVERY_TIMEOUT", default_value = "15s", value_parser = parse_positive_duration)]
    pub delivery_timeout: Duration,

    /// Allow http:// and private or loopback targets (development and tests only).
    #[arg(
        long,
        env = "REWARD_ALLOW_INSECURE_TARGETS",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    pub allow_insecure_targets: bool,

    /// How long a claimed delivery stays reserved for the node that claimed it.
    #[arg(long, env = "REWARD_LEASE", default_value = "30s", value_parser = parse_positive_duration)]
    pub lease: Duration,

    /// Run the delivery worker in this process; false makes an API-only node (its events are
    /// delivered by the nodes that do run workers).
    #[arg(
        long,
        env = "REWARD_WORKER",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    pub worker: bool,

    /// API requests per second per account (bursts of twice that); over it, 429 with
    /// Retry-After. 0 turns the limit off.
    #[arg(long, env = "REWARD_RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,

    /// On SIGTERM (or Ctrl-C), keep serving this long with `/readyz` answering 503 before
    /// stopping, so a load balancer stops sending requests first (e.g. 10s; 0 stops at once).
    #[arg(long, env = "REWARD_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// Disable a webhook whose every delivery attempt has failed for this long (e.g. 5d, 12h).
    #[arg(long, env = "REWARD_DISABLE_AFTER", default_value = "5d", value_parser = parse_positive_duration)]
    pub disable_after: Duration,

    /// How long events are kept (with their finished deliveries and attempts; one with a
    /// delivery still pending stays until it is done).
    #[arg(long, env = "REWARD_EVENT_RETENTION", default_value = "30d", value_parser = parse_positive_duration)]
    pub event_retention: Duration,

    /// How long attempts keep the response body their endpoint answered; after it the body is
    /// cleared while the attempt's status and timing stay.
    #[arg(long, env = "REWARD_ATTEMPT_BODY_RETENTION", default_value = "30d", value_parser = parse_positive_duration)]
    pub attempt_body_retention: Duration,

    /// Base64 of 32 random bytes: the key sealing webhook signing secrets in the database.
    /// Without it, SQLite uses a key file beside the database (created, mode 0600); PostgreSQL
    /// needs it (the same on every node). Prefer the environment variable to the flag.
    #[arg(long, env = "REWARD_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// The address people reach this server at (e.g. https://rewards.example.com). https://
    /// marks the dashboard's cookies Secure whatever a request says; http:// never. Without it,
    /// cookies are Secure except for requests to localhost / 127.0.0.1 / [::1] that no proxy
    /// reports as HTTPS (local development).
    #[arg(long, env = "REWARD_PUBLIC_URL", value_parser = PublicUrl::parse)]
    pub public_url: Option<PublicUrl>,

    /// Log format: text (for people) or json (one object per line, for log pipelines).
    #[arg(long, env = "REWARD_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub traces: TraceArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Create an account; prints {"account_id", "api_key"} as one JSON line. The key is shown
    /// only here.
    Create {
        /// The account's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List accounts, one JSON line each: {"account_id", "name", "created_at"}.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Issue a new API key for an account and revoke all its others; prints
    /// {"account_id", "api_key"} as one JSON line.
    RotateKey {
        /// The account (acc_...).
        #[arg(long)]
        account: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

fn parse_factor(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(factor) if factor.is_finite() && factor >= 1.0 => Ok(factor),
        _ => Err(format!("'{text}' is not a number of at least 1")),
    }
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        duration if duration.is_zero() => Err(format!("'{text}' must be longer than zero")),
        duration => Ok(duration),
    }
}

/// A file path given on the command line: not empty, and a path rather than a URL (clap's own
/// parser answers an empty one with a sentence that stops halfway).
fn parse_file_path(given: &str) -> Result<std::path::PathBuf, String> {
    if given.trim().is_empty() {
        return Err("a file path is required (e.g. /var/backups/reward.db)".to_owned());
    }
    if given.contains("://") {
        return Err("a URL; give the new file's path (e.g. /var/backups/reward.db)".to_owned());
    }
    Ok(std::path::PathBuf::from(given))
}
