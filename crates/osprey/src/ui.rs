//! Talking to the person at the terminal: errors, warnings and progress on stderr, results on
//! stdout. Progress bars appear only when stderr is a terminal and `--quiet` is off.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::GlobalArgs;

pub struct Ui {
    quiet: bool,
    interactive: bool,
}

impl Ui {
    pub fn new(quiet: bool) -> Ui {
        Ui {
            quiet,
            interactive: std::io::stderr().is_terminal(),
        }
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// One line on stderr, never wrapped: newlines inside become "; ".
    pub fn error(&self, msg: &str) {
        eprintln!("osprey: error: {}", one_line(msg));
    }

    /// A line of information on stderr (not shown with `-q`).
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("osprey: {}", one_line(msg));
        }
    }

    pub fn warn(&self, msg: &str) {
        if !self.quiet {
            eprintln!("osprey: warning: {}", one_line(msg));
        }
    }

    /// A progress bar counting `len` steps, hidden unless stderr is an interactive terminal.
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        if self.quiet || !self.interactive {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({elapsed})")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }
}

fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Logs go to stderr, filtered by `--log-level` (or `OSPREY_LOG`); `--quiet` keeps only errors.
pub fn init_logging(global: &GlobalArgs) -> Result<(), String> {
    let directive = if global.quiet {
        "error"
    } else {
        global.log_level.as_str()
    };
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(directive)
        .map_err(|e| format!("--log-level {directive:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    Ok(())
}
