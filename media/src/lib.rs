//! Media services for calls.
//!
//! - `entente-sfu`: the selective forwarding unit ([`sfu`]): WebSocket
//!   signalling with join tokens the workspace server signs ([`signal`],
//!   [`server`]), rooms keyed by call id, every publisher's tracks forwarded
//!   to every other participant without transcoding.
//! - `entente-offloader` (recording, transcription, captions): not built
//!   yet; the binary says so and exits with status 2.

pub mod metrics;
pub mod server;
pub mod sfu;
pub mod signal;
pub mod turn_tcp;

/// Makes ring the process's TLS and DTLS provider. Called before anything
/// handshakes: when more than one provider is compiled in (feature
/// unification across a workspace), rustls will not guess, and DTLS fails.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Status for "this command is not built yet".
pub const NOT_BUILT: u8 = 2;

pub fn not_built(command: &str) -> std::process::ExitCode {
    eprintln!("{command}: not built yet (tracked by the \"Calls\" issue). Nothing was started.");
    std::process::ExitCode::from(NOT_BUILT)
}
