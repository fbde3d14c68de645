//! `reward serve`: logging, signals, and the server library.

use anyhow::Context;
use reward_core::names::TargetPolicy;
use reward_core::retry::RetryPolicy;
use reward_server::traces::TraceSettings;
use reward_server::Config;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::{LogFormat, ServeArgs};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Held until the server stops: dropping it flushes the log lines still queued.
    let _log_flush = init_logging(args.log_format);
    let traces = TraceSettings::from_lookup(|variable| args.traces.lookup(variable))
        .context("OpenTelemetry settings")?;
    if let Some(traces) = &traces {
        tracing::info!(
            endpoint = traces.endpoint,
            service = traces.service_name,
            "exporting OpenTelemetry traces (OTLP/HTTP, protobuf)"
        );
    }
    let config = Config {
        retry: RetryPolicy {
            max_retries: args.max_retries,
            base: args.retry_base,
            factor: args.retry_factor,
        },
        delivery_timeout: args.delivery_timeout,
        target_policy: if args.allow_insecure_targets {
            TargetPolicy::AllowInsecure
        } else {
            TargetPolicy::SecureOnly
        },
        lease: args.lease,
        run_worker: args.worker,
        rate_limit: args.rate_limit,
        disable_after: args.disable_after,
        shutdown_delay: args.shutdown_delay,
        event_retention: args.event_retention,
        attempt_body_retention: args.attempt_body_retention,
        secret_key: args.secret_key,
        public_url: args.public_url,
        database_options: args.database.options(),
        traces,
        ..Config::with_database_url(args.database.database_url)
    };
    if config.target_policy == TargetPolicy::AllowInsecure {
        tracing::warn!(
            "REWARD_ALLOW_INSECURE_TARGETS is on: http:// and private targets are allowed"
        );
    }
    if config.public_url.is_none() && !args.listen.ip().is_loopback() {
        tracing::warn!(
            "REWARD_PUBLIC_URL is not set: dashboard cookies are marked Secure (sent over https:// only) \
             except for requests to localhost; set it to the address people use, \
             e.g. https://rewards.example.com (or http://... to serve plain HTTP on purpose)"
        );
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("REWARD_LISTEN: cannot listen on {}", args.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    reward_server::run(config, listener, shutdown).await
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`): readable text, or one JSON object per
/// line with `REWARD_LOG_FORMAT=json`.
///
/// Lines are written by a dedicated thread, so a request or an attempt never waits on a write to
/// stderr; when that thread falls behind, callers wait rather than lose lines (`lossy(false)`).
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("reward-log-writer")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    guard
}

/// Cancels `shutdown` on SIGTERM or ctrl-c.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
    shutdown.cancel();
}
