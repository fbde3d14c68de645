//! `reward`: one binary for the API, the dashboard, the delivery workers and their tools.
//! Each subcommand lives in its own module; this file only parses and dispatches.

mod accounts;
mod backup;
mod bench;
mod cli;
mod copy;
mod listen;
mod serve;
mod settings;

use std::process::ExitCode;

/// jemalloc: less CPU per delivery than the system allocator, measured (docs/decisions.md).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = match settings::parse() {
        Ok(cli) => cli,
        Err((message, code)) => {
            // Help and --version are answers, not errors: stdout, exit 0.
            if code == 0 {
                print!("{message}");
            } else {
                eprint!("{message}");
            }
            return ExitCode::from(u8::try_from(code).unwrap_or(2));
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            cli::Command::Serve(args) => serve::run(*args).await,
            cli::Command::Accounts(command) => accounts::run(command).await,
            cli::Command::Listen(args) => listen::run(args).await,
            cli::Command::Backup(args) => backup::run(args).await,
            cli::Command::Bench(args) => bench::run(args).await,
            cli::Command::Migrate { database } => accounts::migrate(database).await,
            cli::Command::Copy(args) => copy::run(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
