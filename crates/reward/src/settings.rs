//! Reading the command line, with an optional TOML config file under `serve`.
//!
//! Precedence, highest first: a flag, its environment variable, the `--config` file, the default.
//! The file's keys are the flags' names with `_` (`retry_base = "30s"`). Its values are checked by
//! the very same parsers as flags, by handing them to clap as if typed, so a bad value anywhere
//! stops start-up with one line naming the setting.

use std::ffi::OsString;
use std::path::Path;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::Cli;

/// The parsed command line, or the message to print and the exit code.
pub fn parse() -> Result<Cli, (String, i32)> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let matches = match Cli::command().try_get_matches_from(&args) {
        Ok(matches) => matches,
        Err(error) => return Err(render(error)),
    };
    let matches = match serve_config_path(&matches) {
        None => matches,
        Some(path) => {
            let extra = config_args(&path, &matches).map_err(|message| (message, 2))?;
            let mut with_file = args.clone();
            with_file.extend(extra);
            Cli::command()
                .try_get_matches_from(&with_file)
                .map_err(render)?
        }
    };
    Cli::from_arg_matches(&matches).map_err(render)
}

fn serve_config_path(matches: &ArgMatches) -> Option<std::path::PathBuf> {
    let ("serve", serve) = matches.subcommand()? else {
        return None;
    };
    serve.get_one::<std::path::PathBuf>("config").cloned()
}

/// The file's settings as `--flag value` pairs, for settings given neither as a flag nor in the
/// environment.
fn config_args(path: &Path, matches: &ArgMatches) -> Result<Vec<OsString>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("error: --config {}: {error}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|error| {
        format!(
            "error: --config {}: {}",
            path.display(),
            one_line(&error.to_string())
        )
    })?;
    let Some(("serve", serve)) = matches.subcommand() else {
        return Ok(Vec::new());
    };
    let command = Cli::command();
    let serve_command = command
        .find_subcommand("serve")
        .ok_or("error: no serve command")?;
    let mut extra = Vec::new();
    for (key, value) in table {
        let known = serve_command
            .get_arguments()
            .any(|arg| arg.get_id() == key.as_str() && key != "config");
        if !known {
            return Err(format!(
                "error: --config {}: unknown setting '{key}'",
                path.display()
            ));
        }
        let text = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Float(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            _ => {
                return Err(format!(
                    "error: --config {}: '{key}' must be a string, number or boolean",
                    path.display()
                ))
            }
        };
        // Neither a flag nor its variable gave it: the file does (a setting without a default,
        // like `public_url`, has no source at all).
        if matches!(
            serve.value_source(&key),
            None | Some(ValueSource::DefaultValue)
        ) {
            extra.push(OsString::from(format!("--{}", key.replace('_', "-"))));
            extra.push(OsString::from(text));
        }
    }
    Ok(extra)
}

/// One clear line for a bad setting: the environment variable and the flag it came through.
/// Help and version requests keep clap's own output.
fn render(error: clap::Error) -> (String, i32) {
    let code = error.exit_code();
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return (error.render().to_string(), code);
    }
    if error.kind() == ErrorKind::ValueValidation || error.kind() == ErrorKind::InvalidValue {
        let context = |kind| match error.get(kind) {
            Some(ContextValue::String(text)) => Some(text.clone()),
            Some(ContextValue::Strings(texts)) => Some(texts.join(", ")),
            _ => None,
        };
        let flag = context(ContextKind::InvalidArg).unwrap_or_default();
        let value = context(ContextKind::InvalidValue).unwrap_or_default();
        let flag_name = flag
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        // Name the setting every way it can be given: config key, variable, flag.
        let key = flag_name.trim_start_matches('-').replace('-', "_");
        let setting = match env_name_of(&flag_name) {
            Some(env) => format!("{key} ({env}, {flag_name})"),
            None => format!("{key} ({flag_name})"),
        };
        let reason = std::error::Error::source(&error)
            .map(|source| source.to_string())
            .or_else(|| {
                context(ContextKind::ValidValue).map(|valid| format!("expected one of {valid}"))
            })
            .unwrap_or_else(|| "invalid value".to_owned());
        return (
            format!("error: {setting}: invalid value '{value}': {reason}\n"),
            code,
        );
    }
    (error.render().to_string(), code)
}

/// The environment variable behind a `--flag` of `serve`, if it has one.
fn env_name_of(flag: &str) -> Option<String> {
    let long = flag.strip_prefix("--")?;
    let command = Cli::command();
    let arg = command
        .get_subcommands()
        .flat_map(|sub| sub.get_arguments().collect::<Vec<_>>())
        .find(|arg| arg.get_long() == Some(long))?;
    arg.get_env().map(|env| env.to_string_lossy().into_owned())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
