//! The workspace server. Not built yet: it says so and exits non-zero.

use std::process::ExitCode;

fn main() -> ExitCode {
    entente_runtime::not_built::report(
        "entente-server",
        "tracked by the \"Workspace server core\" issue",
    )
}
