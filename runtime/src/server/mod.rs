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
//! Guests come in through single-use invitations under a GuestPolicy
//! ([`guests`]); AccessPolicies gate channels by user attributes
//! ([`policy`]), enforced on every request and over time ([`sweep`]); what
//! changed is in an append-only audit log ([`audit`]).
//!
//! Files go to an S3-compatible store.
//!
//! The config file is reloaded on change for what can change live ([`reload`]).
//!
//! Every endpoint is documented in the OpenAPI 3 document at
//! `/api/v1/openapi.json`, generated from the handlers.
//!
//! The operator reads health and counts from the admin gRPC endpoint
//! ([`admin`]).

pub mod access_admin;
pub mod accounts;
pub mod admin;
pub mod ai;
pub mod api;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod calls;
pub mod channels;
pub mod db;
pub mod error;
pub mod events;
pub mod federation;
pub mod files;
pub mod guests;
pub mod input;
pub mod listen;
pub mod oidc;
pub mod ops;
pub mod outbound;
pub mod passwords;
pub mod posts;
pub mod reload;
pub mod search;
pub mod sessions;
pub mod state;
pub mod store;
pub mod teams;
pub mod throttle;
pub mod translate;
pub mod web;

/// What unit tests across the server share.
#[cfg(test)]
pub(crate) mod tests_support {
    use entente_crds::config::RuntimeConfig;

    /// A small valid RuntimeConfig.
    pub fn config() -> RuntimeConfig {
        RuntimeConfig::parse(
            r#"
version: 1
workspace: {id: w, displayName: W, organisation: O, siteUrl: "http://x"}
listen: {http: "127.0.0.1:8080", federation: "127.0.0.1:8443", admin: "127.0.0.1:9090"}
database: {url: {env: DB}, poolSize: 5}
objectStorage: {endpoint: "http://s3", region: r, bucket: b, forcePathStyle: true, accessKeyId: {env: K}, secretAccessKey: {env: S}}
identity: {local: {enabled: true, adminUsername: admin, adminPassword: {env: P}, minPasswordLength: 12}}
federation: {tls: {certFile: /c, keyFile: /k, caFile: /a}}
limits: {maxUploadBytes: 100, maxRequestBodyBytes: 100, requestsPerMinute: 60}
"#,
            "test",
        )
        .unwrap()
    }
}

use std::time::Duration;

use axum::{extract::DefaultBodyLimit, routing::get, Json, Router};
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
    #[error("invalid RuntimeConfig: {0}")]
    Config(&'static str),
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("this database was migrated by a newer Entente (migration {newest}, which this version does not know): run that version or a newer one; an older one never runs on newer data")]
    NewerDatabase { newest: i64 },
    #[error("cannot create the bootstrap admin: {0}")]
    Bootstrap(db::Error),
    #[error("cannot create the channels shared with partners: {0}")]
    SharedChannels(db::Error),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("identity.oidc: {0}")]
    Oidc(String),
    #[error("ai: {0}")]
    Ai(String),
    #[error("translation: {0}")]
    Translation(String),
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
    // Refused before anything is applied: an older binary on newer data.
    let applied: Option<i64> = sqlx::query_scalar(
        "SELECT max(version) FROM _sqlx_migrations WHERE success AND to_regclass('_sqlx_migrations') IS NOT NULL",
    )
    .fetch_optional(db)
    .await
    .ok()
    .flatten();
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newest) = applied.filter(|newest| *newest > known) {
        return Err(ServerError::NewerDatabase { newest });
    }
    MIGRATOR.run(db).await?;
    Ok(())
}

/// [`open`], then starts what a serving server runs beside its requests:
/// the access sweep and the federation senders.
pub async fn prepare(config: RuntimeConfig) -> Result<AppState, ServerError> {
    let state = open(config).await?;
    tokio::spawn(authz::sweep::run(state.clone()));
    tokio::spawn(federation::send::run(state.clone()));
    tokio::spawn(calls::sweep(state.clone()));
    tokio::spawn(auth::TokenUsage::run(state.clone()));
    tokio::spawn(events::Sequencer::run(state.db.clone()));
    tokio::spawn(ai::agents::run(state.clone()));
    tokio::spawn(translate::run(state.clone()));
    Ok(state)
}

/// Connects, migrates, creates the bootstrap admin if missing, and returns
/// the state, starting nothing: for admin commands that act once.
pub async fn open(config: RuntimeConfig) -> Result<AppState, ServerError> {
    let db = connect(&config).await?;
    migrate(&db).await?;
    let local = &config.identity.local;
    // With local sign-in off, an admin password given still makes the
    // bootstrap admin: the break-glass account for when the identity
    // provider is away.
    if local.enabled && local.admin_password.is_none() {
        return Err(ServerError::Config(
            "identity.local.adminPassword is required when local login is enabled",
        ));
    }
    if let Some(secret) = &local.admin_password {
        let password = secret.read().map_err(|source| ServerError::Secret {
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
    federation::ensure_shared_channels(&db, &config)
        .await
        .map_err(ServerError::SharedChannels)?;
    let sessions = std::sync::Arc::new(sessions::Sessions::default());
    let hub = events::Hub::start(db.clone(), sessions.clone())
        .await
        .map_err(ServerError::Connect)?;
    let oidc = match &config.identity.oidc {
        Some(oidc) => Some(std::sync::Arc::new(
            oidc::Oidc::new(oidc, &config.workspace.site_url).map_err(ServerError::Oidc)?,
        )),
        None => None,
    };
    let ai = match &config.ai {
        Some(ai) => Some(std::sync::Arc::new(
            ai::Ai::start(&db, ai).await.map_err(ServerError::Ai)?,
        )),
        None => None,
    };
    let translator = match &config.translation {
        Some(translation) => Some(std::sync::Arc::new(
            translate::Translator::new(translation, ai.clone())
                .map_err(ServerError::Translation)?,
        )),
        None => None,
    };
    let mut state = AppState::new(db, store, config, hub, sessions, oidc, ai);
    state.translator = translator;
    Ok(state)
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
    let app = router(state.clone());
    listen::serve(state, app, listener, async move {
        shutdown.await;
        // Upgraded connections are not the HTTP server's to wait for: tell
        // every WebSocket to close, so clients reconnect elsewhere.
        let _ = sender.send(true);
    })
    .await?;
    // Let the WebSockets send their close frames before the process exits.
    let _ = tokio::time::timeout(Duration::from_secs(10), drained.recv()).await;
    Ok(())
}

/// Serves `/metrics` (and nothing else) on `listener` until `shutdown`
/// resolves: apart from the API, so the public port does not expose them.
pub async fn serve_metrics(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let app = Router::new()
        .route("/metrics", get(api::health::metrics))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServerError::Serve)
}

/// The OpenAPI document's frame; the paths come from the handlers themselves.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Entente workspace API", description = "One organisation's collaboration workspace: accounts, channels, posts, files, search and live events. The live event stream (`/api/v1/ws`) sends `Event`s; the `EventChange` schema lists every `type` and its `data`."),
    modifiers(&BearerAuth),
    components(schemas(events::Event, events::Change))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "a session token from /api/v1/auth/login, or a personal access token",
                        ))
                        .build(),
                ),
            );
    }
}

/// Every route with its documentation: a handler cannot be served without
/// appearing in `/api/v1/openapi.json`.
fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    use utoipa_axum::{router::OpenApiRouter, routes};
    let routes = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::auth::login))
        .routes(routes!(api::auth::logout))
        .routes(routes!(api::auth::session))
        .routes(routes!(api::auth::providers))
        .routes(routes!(api::auth::oidc_start))
        .routes(routes!(api::auth::oidc_callback))
        .routes(routes!(api::auth::oidc_logout))
        .routes(routes!(api::users::list, api::auth::create_user))
        .routes(routes!(api::users::change_password))
        .routes(routes!(api::users::deactivate))
        .routes(routes!(api::users::reactivate))
        .routes(routes!(api::users::end_sessions))
        .routes(routes!(api::auth::me))
        .routes(routes!(api::auth::list_tokens, api::auth::create_token))
        .routes(routes!(api::auth::revoke_token))
        .routes(routes!(api::auth::set_attributes))
        .routes(routes!(api::channels::list, api::channels::create))
        .routes(routes!(api::channels::direct))
        .routes(routes!(api::channels::group))
        .routes(routes!(api::channels::get, api::channels::update))
        .routes(routes!(api::channels::join))
        .routes(routes!(api::channels::leave))
        .routes(routes!(api::channels::archive))
        .routes(routes!(api::channels::members, api::channels::add))
        .routes(routes!(api::channels::kick))
        .routes(routes!(api::access_admin::set_labels))
        .routes(routes!(api::access_admin::simulate))
        .routes(routes!(api::audit::list))
        .routes(routes!(api::teams::package))
        .routes(routes!(api::guests::invite))
        .routes(routes!(api::guests::redeem))
        .routes(routes!(api::calls::get, api::calls::join))
        .routes(routes!(api::calls::leave))
        .routes(routes!(api::posts::list, api::posts::create))
        .routes(routes!(api::posts::pinned))
        .routes(routes!(api::posts::mark_read))
        .routes(routes!(api::posts::edit, api::posts::delete))
        .routes(routes!(api::posts::history))
        .routes(routes!(api::posts::thread))
        .routes(routes!(api::posts::pin, api::posts::unpin))
        .routes(routes!(api::posts::react, api::posts::unreact))
        .routes(routes!(api::files::upload))
        .routes(routes!(api::files::download))
        .routes(routes!(api::search::search))
        .routes(routes!(api::ai::summarise))
        .routes(routes!(api::ai::agents))
        .routes(routes!(api::ai::usage))
        .routes(routes!(api::ai::status))
        .routes(routes!(api::translation::set_language))
        .routes(routes!(api::translation::set_channel))
        .routes(routes!(api::translation::set_mine))
        .routes(routes!(api::translation::status))
        .routes(routes!(api::translation::offered))
        .routes(routes!(api::ws::connect))
        .routes(routes!(api::health::healthz))
        .routes(routes!(api::health::readyz));
    routes.split_for_parts()
}

/// The OpenAPI 3 document of a server asking for passwords of at least
/// `min_password` characters, as served at `/api/v1/openapi.json`.
pub fn openapi_for(min_password: usize) -> utoipa::openapi::OpenApi {
    let mut document = routes().1;
    api::contract::complete(&mut document, min_password);
    document
}

/// The OpenAPI 3 document with the default password length.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi_for(12)
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.config().limits.max_request_body_bytes as usize;
    let (router, mut document) = routes();
    api::contract::complete(
        &mut document,
        state.config().identity.local.min_password_length as usize,
    );
    let document = std::sync::Arc::new(document);
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .fallback(web::serve)
        .method_not_allowed_fallback(api::extract::wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::observe,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
