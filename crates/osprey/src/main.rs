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
    let cli = cli::Cli::parse();
    let ui = ui::Ui::new(cli.global.quiet);
    if let Err(e) = ui::init_logging(&cli.global) {
        ui.error(&e);
        std::process::exit(exit::INPUT_ERROR);
    }
    let outcome = commands::run(cli.command, &ui);
    std::process::exit(exit::report(outcome, &ui));
}
