//! `reward bench`: a load generator that ships in the binary (like `pgbench`). By default it
//! starts `reward serve` on a fresh temporary database, starts its own receiver on loopback, runs
//! the scenarios and prints a table per scenario (or JSON). Every delivery is counted exactly:
//! a scenario fails when one is missing.
//!
//! - [`scenarios`]: ceiling, ingest, deliver, ordered, fanout, filtered, latency, mixed, backlog.
//! - [`purge`]: a retention purge of many deliveries while writers record.
//! - [`soak`]: minutes of mixed load with failing endpoints, sampling the server's memory.
//! - [`receiver`]: the minimal receiver; [`target`]: the API client; [`process`]: the server
//!   child and its peak RSS and CPU time; [`stats`]: percentiles.

mod process;
mod purge;
mod receiver;
mod scenarios;
mod soak;
mod stats;
mod target;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

use process::{peak_rss_bytes, ServerChild};
use receiver::BenchReceiver;
use scenarios::{Bench, Report};
use target::Target;

const ALL_SCENARIOS: &str =
    "ceiling,ingest,deliver,ordered,fanout,filtered,latency,mixed,backlog,soak,purge";
/// What runs when `--scenarios` is not given: everything but the (long) soak and purge.
const DEFAULT_SCENARIOS: &str =
    "ceiling,ingest,deliver,ordered,fanout,filtered,latency,mixed,backlog";

#[derive(Args)]
pub struct BenchArgs {
    /// Scenarios to run, comma-separated: ceiling, ingest, deliver, ordered (deliver to a webhook
    /// that orders per user, 1,000 users), fanout, filtered (fan-out through payload filters),
    /// latency, mixed, backlog, soak, purge (a retention purge of --backlog deliveries while
    /// writers record at --rate; soak and purge run only when named).
    #[arg(long, default_value = DEFAULT_SCENARIOS, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// Events per burst scenario (ceiling requests, ingest, deliver, ordered, fanout).
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Concurrent API clients.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Webhooks in the fanout scenario.
    #[arg(long, default_value_t = 10)]
    pub fanout_webhooks: usize,
    /// Offered deliveries/s in the latency and mixed scenarios (mixed sends a tenth as many events,
    /// each to its 10 webhooks).
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// How long the latency and mixed scenarios offer load, in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u32,
    /// How long the soak offers its mixed load, in seconds.
    #[arg(long, default_value_t = 600)]
    pub soak_seconds: u32,
    /// Deliveries queued in the backlog scenario.
    #[arg(long, default_value_t = 1_000_000)]
    pub backlog: usize,
    /// Run the server on this database instead of a fresh temporary SQLite file.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Measure a server that is already running (with --api-key) instead of starting one. It must
    /// allow insecure targets (the receiver is on loopback).
    #[arg(long, requires = "api_key")]
    pub target: Option<String>,
    /// The API key for --target.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    for scenario in &args.scenarios {
        if !ALL_SCENARIOS.split(',').any(|known| known == scenario) {
            bail!("--scenarios: unknown scenario '{scenario}' (known: {ALL_SCENARIOS})");
        }
    }
    let receiver = BenchReceiver::start()
        .await
        .context("starting the receiver")?;
    let (server, target) = match (&args.target, &args.api_key) {
        (Some(url), Some(key)) => (None, Target::new(url, key)?),
        _ => {
            let server = ServerChild::start(args.database_url.as_deref(), "2s").await?;
            let target = Target::new(&server.base_url, &server.api_key)?;
            (Some(server), target)
        }
    };
    target
        .prepare()
        .await
        .context("creating the bench trigger")?;
    let mut bench = Bench {
        target,
        receiver,
        concurrency: args.concurrency,
        server,
    };
    let mut reports = Vec::new();
    let outcome = run_scenarios(&mut bench, &args, &mut reports).await;
    if let Some(server) = bench.server.take() {
        server.stop().await;
    }
    print_reports(&args, &reports);
    outcome
}

async fn run_scenarios(
    bench: &mut Bench,
    args: &BenchArgs,
    reports: &mut Vec<(Report, Option<u64>)>,
) -> anyhow::Result<()> {
    for scenario in &args.scenarios {
        if !args.json {
            eprintln!("running {scenario} ...");
        }
        let report = match scenario.as_str() {
            "ceiling" => bench.ceiling(args.events).await,
            "ingest" => bench.ingest(args.events).await,
            "deliver" => bench.deliver("deliver", args.events, 1).await,
            "ordered" => bench.ordered(args.events).await,
            "fanout" => {
                bench
                    .deliver(
                        "fanout",
                        args.events.div_ceil(args.fanout_webhooks.max(1)),
                        args.fanout_webhooks,
                    )
                    .await
            }
            "filtered" => bench.filtered(args.events.div_ceil(5)).await,
            "latency" => bench.latency(args.rate, args.seconds).await,
            "mixed" => bench.mixed(args.rate, args.seconds).await,
            "backlog" => bench.backlog(args.backlog).await,
            "soak" => bench.soak(args.rate, args.soak_seconds).await,
            "purge" => bench.purge(args.backlog, args.rate, args.seconds).await,
            _ => unreachable!("scenarios are checked first"),
        }
        .with_context(|| format!("scenario {scenario}"))?;
        let peak_rss = bench.server_pid().and_then(peak_rss_bytes);
        reports.push((report, peak_rss));
    }
    Ok(())
}

fn print_reports(args: &BenchArgs, reports: &[(Report, Option<u64>)]) {
    if args.json {
        let scenarios: Value = reports
            .iter()
            .map(|(report, rss)| {
                let mut value = report.json.clone();
                value["server_peak_rss_bytes"] = json!(rss);
                (report.name.to_owned(), value)
            })
            .collect::<serde_json::Map<String, Value>>()
            .into();
        println!(
            "{}",
            json!({"reward_version": env!("CARGO_PKG_VERSION"), "scenarios": scenarios})
        );
        return;
    }
    for (report, rss) in reports {
        println!("\n{}", report.name);
        let mut rows = report.rows.clone();
        if let Some(rss) = rss {
            rows.push((
                "server peak RSS so far (MiB)".into(),
                format!("{:.1}", *rss as f64 / 1_048_576.0),
            ));
        }
        let width = rows
            .iter()
            .map(|(label, _)| label.chars().count())
            .max()
            .unwrap_or(0);
        for (label, value) in rows {
            println!("  {label:<width$}  {value}");
        }
    }
}
