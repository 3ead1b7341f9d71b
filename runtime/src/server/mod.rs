//! The workspace server: REST API under `/api/v1` on PostgreSQL.
//!
//! Built so far: accounts (argon2id passwords, sessions, personal access
//! tokens, the bootstrap admin, attributes), channels (public, private, direct,
//! group; members, channel admins, archive), posts (threads, edits with
//! history, deletes, reactions, pins, mentions, cursor pagination, read
//! markers with unread and mention counts), live events over WebSocket with
//! resume (fanned out between replicas by `LISTEN/NOTIFY`), search, per-user
//! rate limits, request ids, metrics, `/healthz` and `/readyz`.
//!
//! Files go to an S3-compatible store.
//!
//! The config file is reloaded on change for what can change live ([`reload`]).
//!
//! Not built yet (the "Workspace server core" issue stays open): the OpenAPI
//! document and the admin gRPC endpoint.

pub mod access;
pub mod auth;
pub mod channels;
pub mod error;
pub mod events;
pub mod files;
#[macro_use]
pub mod posts;
pub mod ops;
pub mod reload;
pub mod search;
pub mod state;
pub mod store;
pub mod ws;

use std::time::Duration;

use axum::{
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    routing::{delete, get, post, put},
    Json, Router,
};
use entente_crds::config::RuntimeConfig;
use sqlx::{postgres::PgPoolOptions, PgPool};

pub use state::AppState;

/// Why the server could not start or migrate.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot read {what}: {source}")]
    Secret {
        what: &'static str,
        source: entente_crds::config::SecretError,
    },
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the bootstrap admin: {0}")]
    Bootstrap(sqlx::Error),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// The embedded migrations; `entente-server migrate` and start-up apply them.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn connect(config: &RuntimeConfig) -> Result<PgPool, ServerError> {
    let url = config
        .database
        .url
        .read()
        .map_err(|source| ServerError::Secret {
            what: "the database URL",
            source,
        })?;
    PgPoolOptions::new()
        .max_connections(config.database.pool_size)
        // A request waits this long for a connection before answering 503.
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
        .map_err(ServerError::Connect)
}

/// Applies pending migrations (idempotent; safe with several replicas, which
/// sqlx serialises with an advisory lock).
pub async fn migrate(db: &PgPool) -> Result<(), ServerError> {
    MIGRATOR.run(db).await?;
    Ok(())
}

/// Connects, migrates, creates the bootstrap admin if missing, and returns the state.
pub async fn prepare(config: RuntimeConfig) -> Result<AppState, ServerError> {
    let db = connect(&config).await?;
    migrate(&db).await?;
    let local = &config.identity.local;
    if local.enabled {
        let password = local
            .admin_password
            .read()
            .map_err(|source| ServerError::Secret {
                what: "the admin password",
                source,
            })?;
        if auth::bootstrap_admin(
            &db,
            &local.admin_username,
            local.admin_email.as_deref(),
            &password,
        )
        .await
        .map_err(ServerError::Bootstrap)?
        {
            tracing::info!(username = %local.admin_username, "created the bootstrap admin");
        }
    }
    let store = store::ObjectStore::new(&config.object_storage)?;
    let hub = events::Hub::start(db.clone())
        .await
        .map_err(ServerError::Connect)?;
    Ok(AppState::new(db, store, config, hub))
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    mut state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let (sessions, mut drained) = tokio::sync::mpsc::channel::<()>(1);
    state.sessions = sessions;
    let sender = state.shutdown_sender.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Upgraded connections are not the HTTP server's to wait for: tell
            // every WebSocket to close, so clients reconnect elsewhere.
            let _ = sender.send(true);
        })
        .await
        .map_err(ServerError::Serve)?;
    // Let the WebSockets send their close frames before the process exits.
    let _ = tokio::time::timeout(Duration::from_secs(10), drained.recv()).await;
    Ok(())
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.config().limits.max_request_body_bytes as usize;
    let api = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/users", post(auth::create_user))
        .route("/users/me", get(auth::me))
        .route(
            "/users/me/tokens",
            get(auth::list_tokens).post(auth::create_token),
        )
        .route("/users/me/tokens/{id}", delete(auth::revoke_token))
        .route("/users/{id}/attributes", put(auth::set_attributes))
        .route("/channels", get(channels::list).post(channels::create))
        .route("/channels/direct", post(channels::direct))
        .route("/channels/group", post(channels::group))
        .route("/channels/{id}", get(channels::get))
        .route("/channels/{id}/join", post(channels::join))
        .route("/channels/{id}/leave", post(channels::leave))
        .route("/channels/{id}/archive", post(channels::archive))
        .route("/channels/{id}/members", post(channels::add))
        .route("/channels/{id}/members/{user}", delete(channels::kick))
        .route("/channels/{id}/posts", get(posts::list).post(posts::create))
        .route("/channels/{id}/pinned", get(posts::pinned))
        .route("/channels/{id}/read", post(posts::mark_read))
        .route(
            "/posts/{id}",
            axum::routing::patch(posts::edit).delete(posts::delete),
        )
        .route("/posts/{id}/history", get(posts::history))
        .route("/posts/{id}/thread", get(posts::thread))
        .route("/posts/{id}/pin", post(posts::pin).delete(posts::unpin))
        .route(
            "/posts/{id}/reactions/{emoji}",
            put(posts::react).delete(posts::unreact),
        )
        .route("/channels/{id}/files", post(files::upload))
        .route("/files/{id}", get(files::download))
        .route("/search", get(search::search))
        .route("/ws", get(ws::connect));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(ops::metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::observe,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Ready when the database and the object store both answer.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let limit = Duration::from_secs(2);
    let (database, objects) = tokio::join!(
        tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&state.db)),
        tokio::time::timeout(limit, state.store.check()),
    );
    let database = match database {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 2s".to_string()),
    };
    let objects = match objects {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 2s".to_string()),
    };
    let status = if database.is_ok() && objects.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let show = |r: Result<(), String>| r.err().unwrap_or_else(|| "ok".into());
    (
        status,
        Json(serde_json::json!({"database": show(database), "objectStorage": show(objects)})),
    )
}
