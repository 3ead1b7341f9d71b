//! What every handler shares.

use std::sync::Arc;

use entente_crds::config::RuntimeConfig;
use sqlx::PgPool;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<RuntimeConfig>,
}
