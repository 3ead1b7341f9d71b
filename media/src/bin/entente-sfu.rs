//! entente-sfu --config FILE
//!
//! Serves WebSocket signalling, `/status` and `/metrics` on `sfu.listen` and
//! media over UDP. SIGTERM (or Ctrl-C) drains: no new calls, and the process
//! exits once the calls in progress have ended.

use std::{process::ExitCode, sync::Arc};

use entente_crds::config::MediaConfig;
use entente_media::{server, sfu::Sfu};

const USAGE: &str = "usage: entente-sfu --config FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match args.as_slice() {
        [flag, path] if flag == "--config" => std::path::PathBuf::from(path),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(64);
        }
    };
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webrtc=warn,webrtc_ice=warn".into()),
        )
        .init();
    entente_media::install_crypto();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run(&config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("entente-sfu: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn run(path: &std::path::Path) -> Result<(), String> {
    let config = MediaConfig::load(path).map_err(|e| e.to_string())?;
    let sfu_config = config
        .sfu
        .as_ref()
        .ok_or_else(|| format!("{}: this MediaConfig has no sfu section", path.display()))?;
    let key = config
        .join_token_key
        .read()
        .map_err(|e| format!("joinTokenKey: {e}"))?;
    if key.len() < 32 {
        return Err("joinTokenKey: the key must be at least 32 characters".into());
    }
    let sfu = Sfu::new(sfu_config, sfu_config.listen.ip(), &key)
        .await
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(sfu_config.listen)
        .await
        .map_err(|e| format!("sfu.listen {}: {e}", sfu_config.listen))?;
    tracing::info!(listen = %sfu_config.listen, cluster = %config.cluster, "entente-sfu serving");
    let shared = server::Shared {
        sfu: sfu.clone(),
        key: Arc::new(key.into_bytes()),
    };
    let drained = drained(sfu);
    axum::serve(listener, server::router(shared))
        .with_graceful_shutdown(drained)
        .await
        .map_err(|e| e.to_string())
}

/// Resolves once a stop signal came and the last call has ended.
async fn drained(sfu: Arc<Sfu>) {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let mut rooms = sfu.drain();
    let _ = rooms.wait_for(|count| *count == 0).await;
    tracing::info!("drained: no calls left");
}
