//! The commands, each a short recipe: settings → load → plan → apply →
//! report. Errors are `anyhow` here and only here; below, each module has
//! its own typed errors.

mod build;
mod completion;
mod logs;
mod man;
mod sync;

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::{self, CliError};
use crate::printer::Printer;
use crate::settings::{self, Environment, Settings};

/// Runs the command `argv` names (program name first): sam's exit codes,
/// 0 success, 1 error (printed by the caller), 2 usage error (printed here).
pub(crate) fn run(argv: Vec<OsString>, env: &Environment, printer: &Printer) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let cli = match cli::parse(argv, &cwd) {
        Ok(parsed) => {
            parsed.notes.iter().for_each(|note| printer.note(note));
            parsed.cli
        }
        Err(CliError::Clap(e)) => return Ok(printer.clap_error(&e)),
        Err(e) => return Err(e.into()),
    };
    if let Err(e) = cli::check_usage(&cli) {
        return Ok(printer.clap_error(&e));
    }
    if cli.global.debug {
        printer.enable_debug();
    }
    if let Some(reason) = cli::unsupported_feature(&cli) {
        bail!(reason);
    }
    let settings = settings::resolve(&cli, &cwd, env, crate::time::now_ms())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match settings {
            Settings::Build(settings) => build::run(&settings, printer).await,
            Settings::Sync(settings) => sync::run(&settings, printer).await,
            Settings::Logs(settings) => logs::run(&settings, printer).await,
            Settings::Completion(shell) => Ok(completion::run(shell, printer)),
            Settings::Man(out_dir) => man::run(out_dir.as_deref(), printer),
        }
    })
}
