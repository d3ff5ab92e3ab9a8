//! The `accel` binary: parse the command line, run the command, map the
//! outcome to sam's exit codes (0 success, 1 error, 2 usage error).

use std::path::Path;
use std::process::ExitCode;

use accel::cli::{self, CliError, Command, Invocation};
use accel::project::Project;
use anyhow::{Result, bail};

fn main() -> ExitCode {
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(e) => return fail(anyhow::anyhow!("cannot read the current directory: {e}")),
    };
    let invocation = match cli::parse(std::env::args_os(), &cwd) {
        Ok(invocation) => invocation,
        Err(CliError::Clap(e)) => e.exit(),
        Err(e) => return fail(e.into()),
    };
    if let Err(e) = cli::check_usage(&invocation.cli) {
        e.exit();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(e.into()),
    };
    match runtime.block_on(run(invocation, &cwd)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(error: anyhow::Error) -> ExitCode {
    eprintln!("Error: {error:#}");
    ExitCode::from(1)
}

async fn run(invocation: Invocation, cwd: &Path) -> Result<()> {
    let Invocation { cli, .. } = invocation;
    if let Some(reason) = cli::unsupported_feature(&cli) {
        bail!(reason);
    }
    match &cli.command {
        Command::Build(args) => {
            Project::load(cwd, &args.template, &cli.global)?;
            bail!(
                "`accel build` is not implemented yet: the template is valid, but nothing was built"
            )
        }
        Command::Sync(args) => {
            Project::load(cwd, &args.template, &cli.global)?;
            bail!(
                "`accel sync` is not implemented yet: the template is valid, but nothing was deployed"
            )
        }
        Command::Logs(_) => bail!("`accel logs` is not implemented yet"),
    }
}
