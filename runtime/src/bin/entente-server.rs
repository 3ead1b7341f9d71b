//! The workspace server.
//!
//!   entente-server serve   --config FILE   migrate, then serve the API
//!   entente-server migrate --config FILE   apply database migrations and exit (upgrade Jobs)

use std::{path::PathBuf, process::ExitCode};

use entente_crds::config::RuntimeConfig;
use entente_runtime::server;

const USAGE: &str = "usage: entente-server serve|migrate --config FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, config_path) = match args.as_slice() {
        [command, flag, path]
            if flag == "--config" && (command == "serve" || command == "migrate") =>
        {
            (command.clone(), PathBuf::from(path))
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    init_logging();
    let config = match RuntimeConfig::load(&config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("entente-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    let result: Result<(), server::ServerError> = runtime.block_on(async {
        if command == "migrate" {
            let db = server::connect(&config).await?;
            server::migrate(&db).await?;
            tracing::info!("migrations applied");
            return Ok(());
        }
        let (address, admin_address, federation_address, metrics_address) = (
            config.listen.http,
            config.listen.admin,
            config.listen.federation,
            config.listen.metrics,
        );
        let state = server::prepare(config).await?;
        tokio::spawn(server::reload::watch(
            state.clone(),
            config_path.clone(),
            std::time::Duration::from_secs(2),
        ));
        let bind = |address| async move {
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|source| server::ServerError::Listen { address, source })
        };
        let (listener, admin_listener, federation_listener) = (
            bind(address).await?,
            bind(admin_address).await?,
            bind(federation_address).await?,
        );
        let metrics_listener = match metrics_address {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        tracing::info!(%address, admin = %admin_address, federation = %federation_address, metrics = ?metrics_address, "serving");
        // One signal stops both the API and the admin endpoint.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        });
        let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Some(listener) = metrics_listener {
            tokio::spawn(server::serve_metrics(
                state.clone(),
                listener,
                until_stopped(stopped.clone()),
            ));
        }
        tokio::try_join!(
            server::serve(state.clone(), listener, until_stopped(stopped.clone())),
            server::admin::serve(state.clone(), admin_listener, until_stopped(stopped.clone())),
            server::federation::tls::serve(state, federation_listener, until_stopped(stopped)),
        )?;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("entente-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// JSON logs to stderr; `RUST_LOG` filters (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// SIGTERM (Kubernetes) or Ctrl-C: stop accepting, finish what is in flight.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
