//! What every handler shares.

use std::sync::{Arc, RwLock};

use entente_crds::config::RuntimeConfig;
use sqlx::PgPool;
use tokio::sync::watch;

use super::{
    events::Hub,
    ops::{Metrics, RateLimit},
};

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub store: super::store::ObjectStore,
    /// The parts of the configuration that can change while serving.
    live: Arc<RwLock<Live>>,
    /// This replica's live-event fan-out.
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    /// Becomes `true` when the server shuts down, so WebSockets close cleanly.
    pub shutdown: watch::Receiver<bool>,
    pub(crate) shutdown_sender: Arc<watch::Sender<bool>>,
    /// Each WebSocket session holds a clone; shutdown waits until all are gone.
    pub(crate) sessions: tokio::sync::mpsc::Sender<()>,
}

struct Live {
    config: Arc<RuntimeConfig>,
    rate_limit: Arc<RateLimit>,
}

impl AppState {
    pub(crate) fn new(
        db: PgPool,
        store: super::store::ObjectStore,
        config: RuntimeConfig,
        hub: Hub,
    ) -> AppState {
        let (shutdown_sender, shutdown) = watch::channel(false);
        AppState {
            db,
            store,
            live: Arc::new(RwLock::new(Live {
                rate_limit: RateLimit::per_minute(config.limits.requests_per_minute),
                config: Arc::new(config),
            })),
            hub,
            metrics: Arc::new(Metrics::default()),
            shutdown,
            shutdown_sender: Arc::new(shutdown_sender),
            sessions: tokio::sync::mpsc::channel(1).0,
        }
    }

    /// The configuration in effect now.
    pub fn config(&self) -> Arc<RuntimeConfig> {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .clone()
    }

    pub fn rate_limit(&self) -> Arc<RateLimit> {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .rate_limit
            .clone()
    }

    /// Puts `config` in effect; the rate limiter restarts only if its quota changed.
    pub fn apply(&self, config: RuntimeConfig) {
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        if config.limits.requests_per_minute != live.config.limits.requests_per_minute {
            live.rate_limit = RateLimit::per_minute(config.limits.requests_per_minute);
        }
        live.config = Arc::new(config);
    }
}
