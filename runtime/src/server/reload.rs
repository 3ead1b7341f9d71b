//! Config reload: the operator rewrites the mounted RuntimeConfig and the
//! server picks up what it can without a restart.
//!
//! Live: everything but the sections [`RuntimeConfig::restart_sections`]
//! names (so partners, guests, access policies, retention, legal holds, and
//! the upload size and request-rate limits). A restart section changed is
//! logged as needing a restart, by name, and the running value is kept. A file that does
//! not parse is refused with a log line; the server keeps serving.

use std::{path::PathBuf, time::Duration};

use entente_crds::config::RuntimeConfig;

use super::state::AppState;

/// The config to run with after `new` appeared, and the sections of `new`
/// that cannot take effect until a restart ([`RuntimeConfig::reload`]).
pub fn merge(current: &RuntimeConfig, new: &RuntimeConfig) -> (RuntimeConfig, Vec<&'static str>) {
    current.reload(new)
}

/// Polls `path` every `every` and applies changes (polling, not inotify:
/// Kubernetes updates a mounted Secret by swapping a symlink, which file
/// watches often miss).
pub async fn watch(state: AppState, path: PathBuf, every: Duration) {
    let mut last = std::fs::read_to_string(&path).ok();
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read the config; keeping the running one");
                continue;
            }
        };
        if last.as_deref() == Some(text.as_str()) {
            continue;
        }
        last = Some(text.clone());
        let new = match RuntimeConfig::parse(&text, &path.display().to_string()) {
            Ok(new) => new,
            Err(e) => {
                tracing::error!(error = %e, "config change refused; keeping the running config");
                continue;
            }
        };
        let current = state.config();
        let (effective, restart) = merge(&current, &new);
        if effective != *current {
            state.apply(effective);
            tracing::info!(file = %path.display(), "config reloaded");
        }
        if !restart.is_empty() {
            tracing::warn!(sections = ?restart, "these config changes take effect only after a restart");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::tests_support::config;

    #[test]
    fn live_sections_apply_and_the_rest_waits_for_a_restart() {
        let current = config();
        let mut new = current.clone();
        new.limits.requests_per_minute = 5;
        new.retention.message_days = Some(30);
        new.listen.http = "127.0.0.1:9999".parse().unwrap();
        new.database.pool_size = 50;
        let (effective, restart) = merge(&current, &new);
        assert_eq!(effective.limits.requests_per_minute, 5);
        assert_eq!(effective.retention.message_days, Some(30));
        assert_eq!(
            effective.listen.http, current.listen.http,
            "kept until a restart"
        );
        assert_eq!(effective.database.pool_size, 5);
        assert_eq!(restart, ["listen", "database"]);
    }

    #[test]
    fn the_request_body_limit_needs_a_restart() {
        let current = config();
        let mut new = current.clone();
        new.limits.max_request_body_bytes = 1;
        let (effective, restart) = merge(&current, &new);
        assert_eq!(effective.limits.max_request_body_bytes, 100);
        assert_eq!(restart, ["limits.maxRequestBodyBytes"]);
    }
}
