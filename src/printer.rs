//! The only place that writes to the terminal. Results (stack events and
//! outputs, build summaries, log lines) go to stdout; progress and messages
//! to stderr, as sam prints them. A progress bar and colours appear only on
//! a terminal; a closed pipe (`accel logs | head`) is never an error.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Where a command's output goes. Clones share the terminal's state.
#[derive(Debug, Clone)]
pub(crate) struct Printer {
    /// stdout is a terminal and `NO_COLOR` is unset.
    color: bool,
    /// stderr is an interactive terminal (not CI): progress bars allowed.
    interactive: bool,
    /// `--debug`: [`Printer::debug`] lines are shown.
    debug: Arc<AtomicBool>,
    /// The build's progress bar while one runs; lines go above it.
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Printer {
    /// A printer for this process's terminal.
    pub(crate) fn new(no_color: bool, ci: bool) -> Printer {
        Printer {
            color: std::io::stdout().is_terminal() && !no_color,
            interactive: std::io::stderr().is_terminal() && !ci,
            debug: Arc::new(AtomicBool::new(false)),
            bar: Arc::new(Mutex::new(None)),
        }
    }

    /// Shows [`Printer::debug`] lines from now on (`--debug`, `SAM_DEBUG`).
    pub(crate) fn enable_debug(&self) {
        self.debug.store(true, Ordering::Relaxed);
    }

    /// Whether `--debug` is on.
    pub(crate) fn debugging(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }

    /// A debug line on stderr, in sam's `--debug` format
    /// (`2024-01-02 12:53:20,123 | text`); nothing without `--debug`.
    pub(crate) fn debug(&self, text: impl Display) {
        if self.debugging() {
            let now = crate::time::now_ms();
            let (millis, whole) = (now.rem_euclid(1000), crate::time::iso(now - now.rem_euclid(1000)));
            let seconds = whole.get(..19).unwrap_or_default().replace('T', " ");
            self.note(format_args!("{seconds},{millis:03} | {text}"));
        }
    }

    /// Whether stdout takes colours.
    pub(crate) fn color(&self) -> bool {
        self.color
    }

    /// A result line on stdout.
    pub(crate) fn out(&self, text: impl Display) {
        // One write per line: stdout may be unbuffered, a formatted write is
        // then a system call per piece.
        let _ = std::io::stdout().lock().write_all(format!("{text}\n").as_bytes());
    }

    /// Text on stdout as is (already ending in a newline), flushed at once
    /// so a tail shows each line when it arrives.
    pub(crate) fn out_raw(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// A message on stderr, above the progress bar when one is shown.
    pub(crate) fn note(&self, text: impl Display) {
        match self.bar.lock().ok().as_deref().and_then(Option::as_ref) {
            Some(bar) => bar.println(text.to_string()),
            // stderr is unbuffered: one write per line, not one per piece.
            None => {
                let _ = std::io::stderr().lock().write_all(format!("{text}\n").as_bytes());
            }
        }
    }

    /// The one line an error ends a command with: the error and each cause
    /// whose text it does not already hold.
    pub(crate) fn error(&self, error: &anyhow::Error) {
        let mut text = error.to_string();
        for cause in error.chain().skip(1) {
            let cause = cause.to_string();
            if !text.contains(&cause) {
                text = format!("{text}: {cause}");
            }
        }
        self.note(format_args!("Error: {text}"));
    }

    /// A usage error, `--help` or `--version`, as clap renders it: on stderr
    /// for errors, stdout otherwise. Returns clap's exit code (2 for usage).
    pub(crate) fn clap_error(&self, error: &clap::Error) -> std::process::ExitCode {
        let text = error.render();
        if error.use_stderr() {
            let _ = write!(std::io::stderr().lock(), "{text}");
        } else {
            let _ = write!(std::io::stdout().lock(), "{text}");
        }
        std::process::ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
    }

    /// A build of `total` units starts: a bar on a terminal, nothing elsewhere.
    pub(crate) fn progress_start(&self, total: usize) {
        if !self.interactive {
            return;
        }
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) = ProgressStyle::with_template("{spinner} building {pos}/{len} {wide_msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(100));
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    /// One unit of the build is ready.
    pub(crate) fn progress_step(&self, label: &str) {
        if let Some(bar) = self.bar.lock().ok().as_deref().and_then(Option::as_ref) {
            bar.inc(1);
            bar.set_message(label.to_string());
        }
    }

    /// The build is over: the bar goes away.
    pub(crate) fn progress_finish(&self) {
        if let Some(bar) = self.bar.lock().ok().and_then(|mut slot| slot.take()) {
            bar.finish_and_clear();
        }
    }
}
