//! The one way a command that does not exist yet answers: plainly, on stderr,
//! with a non-zero status, so nothing mistakes it for working.

use std::process::ExitCode;

/// Status for "this command is not built yet" (distinct from 1, a real failure).
pub const NOT_BUILT: u8 = 2;

pub fn report(command: &str, tracked_by: &str) -> ExitCode {
    eprintln!("{command}: not built yet ({tracked_by}). Nothing was started.");
    ExitCode::from(NOT_BUILT)
}
