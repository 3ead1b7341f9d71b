//! Media services for calls: the SFU and the offloader.
//!
//! Not built yet: both binaries say so and exit with status 2. They will read
//! [`entente_crds::config::MediaConfig`] (the "Calls" issue).

/// Status for "this command is not built yet".
pub const NOT_BUILT: u8 = 2;

pub fn not_built(command: &str) -> std::process::ExitCode {
    eprintln!("{command}: not built yet (tracked by the \"Calls\" issue). Nothing was started.");
    std::process::ExitCode::from(NOT_BUILT)
}
