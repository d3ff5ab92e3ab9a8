//! `accel completion SHELL`: print the shell's completion script.

use std::process::ExitCode;

use clap_complete::Shell;

use crate::cli::render;
use crate::printer::Printer;

pub(super) fn run(shell: Shell, printer: &Printer) -> ExitCode {
    printer.out_raw(&String::from_utf8_lossy(&render::completion(shell)));
    ExitCode::SUCCESS
}
