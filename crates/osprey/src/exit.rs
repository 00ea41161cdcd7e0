//! Exit codes and the one-line error report.

use crate::ui::Ui;

/// Input or usage errors: exit 2.
pub const INPUT_ERROR: i32 = 2;
/// Internal errors: exit 3.
pub const INTERNAL_ERROR: i32 = 3;
// Exit code 1 (findings at or above a gate) arrives with the first gating command.

/// Errors a command returns, sorted into the two exit codes.
#[derive(Debug)]
pub enum Failure {
    Input(String),
    Internal(String),
    /// The reader of our output went away (`osprey … | head`): stop quietly.
    ClosedPipe,
}

impl From<osprey_image::ImageError> for Failure {
    fn from(e: osprey_image::ImageError) -> Self {
        if e.is_input_error() {
            Failure::Input(e.to_string())
        } else {
            Failure::Internal(e.to_string())
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        // Writing results failed: a closed pipe is normal, a full disk is not the input's fault.
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::ClosedPipe
        } else {
            Failure::Internal(format!("writing output: {e}"))
        }
    }
}

/// Prints the failure as one line and returns the exit code.
pub fn report(outcome: Result<i32, Failure>, ui: &Ui) -> i32 {
    match outcome {
        Ok(code) => code,
        Err(Failure::Input(msg)) => {
            ui.error(&msg);
            INPUT_ERROR
        }
        Err(Failure::Internal(msg)) => {
            ui.error(&msg);
            INTERNAL_ERROR
        }
        Err(Failure::ClosedPipe) => 0,
    }
}
