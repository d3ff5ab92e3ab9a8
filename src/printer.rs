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

use crate::report::{Event, Human};

/// Where a command's output goes. Clones share the terminal's state.
#[derive(Debug, Clone)]
pub(crate) struct Printer {
    /// stdout is a terminal and `NO_COLOR` is unset.
    color: bool,
    /// stderr is an interactive terminal (not CI): progress bars allowed.
    interactive: bool,
    /// `--debug`: [`Printer::debug`] lines are shown.
    debug: Arc<AtomicBool>,
    /// `--output json`: events as JSON lines on stdout.
    json: Arc<AtomicBool>,
    /// The live line of the [`Task`] under way; lines go above it.
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Printer {
    /// A printer for this process's terminal.
    pub(crate) fn new(no_color: bool, ci: bool) -> Printer {
        Printer {
            color: std::io::stdout().is_terminal() && !no_color,
            interactive: std::io::stderr().is_terminal() && !ci,
            debug: Arc::new(AtomicBool::new(false)),
            json: Arc::new(AtomicBool::new(false)),
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
        let write = || {
            let _ = std::io::stdout().lock().write_all(format!("{text}\n").as_bytes());
        };
        // The live line is on stderr, the same terminal: clear it first.
        match self.bar.lock().ok().as_deref().and_then(Option::as_ref) {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
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
        self.failed(text);
    }

    /// An `Error: …` line on stderr, and with `--output json` its `error`
    /// event: for the end of a command, and for each failed sync of the
    /// watch loop, which goes on.
    pub(crate) fn failed(&self, text: impl Display) {
        if self.json() {
            self.event(&Event::Error { message: text.to_string() });
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

    /// A wait that may last: a live line on a terminal (spinner, what is
    /// under way, elapsed time, the latest step), one line per finished step
    /// elsewhere. `total` counts the steps when they are known. While a task
    /// lives, [`Printer::note`] and [`Printer::out`] print above its line.
    pub(crate) fn task(&self, what: impl Display, total: Option<usize>) -> Task {
        let mut slot = self.bar.lock().ok();
        // One live line at a time: a task inside another prints its steps.
        let free = slot.as_deref().is_some_and(Option::is_none);
        let bar = (self.interactive && free).then(|| {
            let (bar, template) = match total {
                Some(total) => {
                    (ProgressBar::new(total as u64), "{spinner} {prefix} {pos}/{len} [{elapsed}] {wide_msg}")
                }
                None => (ProgressBar::new_spinner(), "{spinner} {prefix} [{elapsed}] {wide_msg}"),
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_prefix(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        if let (Some(bar), Some(slot)) = (&bar, slot.as_deref_mut()) {
            *slot = Some(bar.clone());
        }
        Task { printer: self.clone(), bar }
    }

    /// `--output json`: [`Printer::event`] writes JSON lines on stdout, and
    /// nothing else goes there.
    pub(crate) fn enable_json(&self) {
        self.json.store(true, Ordering::Relaxed);
    }

    /// Whether `--output json` is on.
    pub(crate) fn json(&self) -> bool {
        self.json.load(Ordering::Relaxed)
    }

    /// One event of a command: its JSON object on a line of stdout with
    /// `--output json`, its human form (if it has one) otherwise.
    pub(crate) fn event(&self, event: &Event) {
        if self.json() {
            self.out(serde_json::to_string(event).unwrap_or_default());
            return;
        }
        match event.human() {
            Some(Human::Out(text)) => self.out(text),
            Some(Human::Note(text)) => self.note(text),
            None => {}
        }
    }
}

/// A wait under way (see [`Printer::task`]); its live line goes away when
/// it is dropped.
#[derive(Debug)]
pub(crate) struct Task {
    printer: Printer,
    /// The live line, on a terminal only.
    bar: Option<ProgressBar>,
}

impl Task {
    /// What is happening now: shown on the live line only.
    pub(crate) fn status(&self, text: impl Display) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_string());
        }
    }

    /// A step is done, reported by `event`: on a terminal it is counted on
    /// the live line; elsewhere it is printed as [`Printer::event`] does.
    pub(crate) fn step(&self, event: &Event) {
        match (&self.bar, event.human()) {
            (Some(bar), Some(Human::Note(line) | Human::Out(line))) if !self.printer.json() => {
                bar.inc(1);
                bar.set_message(line);
            }
            _ => self.printer.event(event),
        }
    }

    /// A step is done, shown on the live line only (its line, if any, is
    /// printed later by the caller).
    pub(crate) fn tick(&self, text: impl Display) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(text.to_string());
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            if let Ok(mut slot) = self.printer.bar.lock() {
                *slot = None;
            }
        }
    }
}
