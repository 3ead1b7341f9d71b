//! What every handler shares.

use std::sync::{Arc, RwLock};

use entente_crds::config::RuntimeConfig;
use sqlx::PgPool;
use tokio::sync::watch;

use super::{
    authz::{findings::Recorder, policy::Policies},
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
    /// Where the read gate notes audit-mode findings, recorded off the read path.
    pub findings: Recorder,
    /// Password hashing and checking, a bounded number at a time.
    pub passwords: Arc<super::passwords::Passwords>,
    /// Failed sign-ins, per account and per address.
    pub throttle: Arc<super::throttle::Throttle>,
    /// Bearer tokens recently checked (forgotten when they change).
    pub session_cache: Arc<super::sessions::Sessions>,
    /// Local users' new posts, written in groups.
    pub posts: Arc<super::posts::writer::Writer>,
    /// When tokens were last used, written in batches.
    pub token_usage: Arc<super::auth::TokenUsage>,
    /// Typing indicators per user: each is fanned out to every member.
    pub typing: Arc<RateLimit>,
    /// Wakes the access sweep ([`super::authz::sweep::run`]) early.
    pub sweep_requested: Arc<tokio::sync::Notify>,
    /// Partners whose queue is full under `PauseSharedChannels`: local
    /// posts in the channels shared with them wait (kept by
    /// [`super::federation::send::run`]).
    pub paused_partners: Arc<RwLock<std::collections::BTreeSet<String>>>,
    /// Per partner, when the link towards it is next free under its
    /// bandwidth cap: events and files share one budget.
    pub pacers: Arc<std::sync::Mutex<std::collections::HashMap<String, super::federation::Pacer>>>,
    /// The OpenID Connect provider users sign in through, if configured
    /// (`identity.oidc`; a change needs a restart).
    pub oidc: Option<Arc<super::oidc::Oidc>>,
    /// The language model and its agents, if configured (`ai`; a change
    /// needs a restart).
    pub ai: Option<Arc<super::ai::Ai>>,
    /// The translation provider, if configured (`translation`; a change
    /// needs a restart).
    pub translator: Option<Arc<super::translate::Translator>>,
}

struct Live {
    config: Arc<RuntimeConfig>,
    rate_limit: Arc<RateLimit>,
    /// The access and guest rules of `config`, compiled.
    policies: Arc<Policies>,
}

impl AppState {
    pub(crate) fn new(
        db: PgPool,
        store: super::store::ObjectStore,
        config: RuntimeConfig,
        hub: Hub,
        sessions: Arc<super::sessions::Sessions>,
        oidc: Option<Arc<super::oidc::Oidc>>,
        ai: Option<Arc<super::ai::Ai>>,
    ) -> AppState {
        let (shutdown_sender, shutdown) = watch::channel(false);
        let findings = Recorder::start(db.clone());
        let passwords = super::passwords::Passwords::configured(config.limits.password_workers);
        AppState {
            db,
            store,
            live: Arc::new(RwLock::new(Live {
                rate_limit: RateLimit::per_minute(config.limits.requests_per_minute),
                policies: Arc::new(Policies::from_config(&config)),
                config: Arc::new(config),
            })),
            hub,
            metrics: Arc::new(Metrics::default()),
            shutdown,
            shutdown_sender: Arc::new(shutdown_sender),
            sessions: tokio::sync::mpsc::channel(1).0,
            sweep_requested: Arc::new(tokio::sync::Notify::new()),
            findings,
            passwords,
            throttle: Default::default(),
            typing: RateLimit::typing(),
            token_usage: Default::default(),
            posts: Default::default(),
            session_cache: sessions,
            paused_partners: Default::default(),
            pacers: Default::default(),
            oidc,
            ai,
            translator: None,
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

    /// The access and guest rules in effect now.
    pub fn policies(&self) -> Arc<Policies> {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .policies
            .clone()
    }

    /// Puts `config` in effect; the rate limiter restarts only if its quota
    /// changed, and a change of access or guest rules is swept at once.
    pub fn apply(&self, config: RuntimeConfig) {
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        if config.limits.requests_per_minute != live.config.limits.requests_per_minute {
            live.rate_limit = RateLimit::per_minute(config.limits.requests_per_minute);
        }
        let rules_changed =
            config.access != live.config.access || config.guests != live.config.guests;
        if rules_changed {
            live.policies = Arc::new(Policies::from_config(&config));
        }
        live.config = Arc::new(config);
        drop(live);
        if rules_changed {
            self.sweep_requested.notify_one();
        }
    }
}
