//! accel: a fast, drop-in replacement for `sam build`, `sam sync` and
//! `sam logs`.
//!
//! Data flows one way: the command line ([`cli`]) and the environment are
//! resolved into [`settings`]; a command ([`commands`]) loads the project's
//! template ([`template`], [`project`]), plans (builds with [`builder`],
//! sync plans with [`sync`]), applies through AWS ([`aws`], [`deploy`],
//! [`package`]) and reports through the one [`printer`].

mod aws;
mod builder;
mod cli;
mod commands;
mod deploy;
mod files;
mod held;
mod layout;
mod logs;
mod package;
mod printer;
mod project;
mod report;
mod settings;
mod sync;
mod template;
mod time;
mod watch;
mod work;

use std::ffi::OsString;
use std::process::ExitCode;

/// Runs accel with `argv` (program name first) and returns sam's exit code.
pub fn run(argv: impl IntoIterator<Item = OsString>) -> ExitCode {
    let env = settings::Environment::read();
    let printer = printer::Printer::new(env.no_color, env.ci);
    match commands::run(argv.into_iter().collect(), &env, &printer) {
        Ok(code) => code,
        Err(error) => {
            printer.error(&error);
            ExitCode::FAILURE
        }
    }
}
