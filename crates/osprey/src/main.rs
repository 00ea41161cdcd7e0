//! `osprey`: the command-line front of Osprey. It wires the engine crates to sources, terminals
//! and exit codes; engines themselves never print.
//!
//! Exit codes: 0 success, 1 findings at or above a gate, 2 usage or input error (one line naming
//! the input), 3 internal error.

mod cli;
mod commands;
mod exit;
mod ui;

use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    let ui = ui::Ui::new(cli.global.quiet);
    if let Err(e) = ui::init_logging(&cli.global) {
        ui.error(&e);
        std::process::exit(exit::INPUT_ERROR);
    }
    let outcome = commands::run(cli.command, &ui);
    std::process::exit(exit::report(outcome, &ui));
}

/// A command line clap refused: help and version as clap prints them, an error as one line
/// (clap's message, without its usage and `--help` hint) and exit code 2.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.to_string();
    let line = one_line(&text);
    eprintln!("{line}");
    std::process::exit(exit::INPUT_ERROR);
}

/// clap's message as one line: its lines up to the usage or the hint, joined.
fn one_line(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_errors_are_one_line() {
        let text = "error: the following required arguments were not provided:\n  <SOURCE>\n\nUsage: osprey sbom <SOURCE>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::one_line(text),
            "error: the following required arguments were not provided: <SOURCE>"
        );
    }
}
