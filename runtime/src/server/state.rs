//! What every handler shares.

use std::sync::Arc;

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
    pub config: Arc<RuntimeConfig>,
    /// This replica's live-event fan-out.
    pub hub: Hub,
    /// Becomes `true` when the server shuts down, so WebSockets close cleanly.
    pub shutdown: watch::Receiver<bool>,
    pub(crate) shutdown_sender: Arc<watch::Sender<bool>>,
    pub metrics: Arc<Metrics>,
    pub rate_limit: Arc<RateLimit>,
    /// Each WebSocket session holds a clone; shutdown waits until all are gone.
    pub(crate) sessions: tokio::sync::mpsc::Sender<()>,
}
