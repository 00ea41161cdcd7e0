//! One module per command family.

mod audit;
mod audit_import;
mod db;
mod db_update;
mod graph;
mod image;
mod malware;
mod output;
mod sbom;
mod scan;
mod serve;

use crate::cli::Command;
use crate::exit::Failure;
use crate::ui::Ui;

/// Runs a command; the `Ok` value is the exit code.
pub fn run(command: Command, ui: &Ui) -> Result<i32, Failure> {
    match command {
        Command::Image(cmd) => image::run(cmd, ui),
        Command::Sbom(args) => sbom::run(args, ui),
        Command::Db(cmd) => db::run(cmd, ui),
        Command::Audit(cmd) => audit::run(cmd, ui),
        Command::Malware(cmd) => malware::run(cmd, ui),
        Command::Graph(cmd) => graph::run(cmd, ui),
        Command::Serve(args) => serve::serve(args, ui),
        Command::Token(cmd) => serve::token(cmd, ui),
    }
}
