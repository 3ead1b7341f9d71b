//! Brute-force throttling of credential checks — sign-ins, invitation
//! redemptions — and of credentials issued (personal access tokens): per
//! account and per client address, each failure past a free allowance locks
//! the key for twice as long as the last (1 s, 2 s, 4 s, … at most 15 min);
//! a success clears the account's count. Failures are forgotten after
//! [`FORGET_AFTER`] of quiet. [`Attempt`] is how the domain uses it: check,
//! count (auditing each lock), clear.
//!
//! Kept in each server's memory: with several replicas an attacker gets the
//! allowance once per replica, which the backoff still makes slow. The
//! table is bounded: past [`MAX_KEYS`], keys quiet longest are dropped.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{audit, error::ApiError, state::AppState};

/// Failures an account may have before it is locked.
pub const ACCOUNT_FREE: u32 = 5;
/// Failures an address may have before it is locked (several people may
/// share one, behind a proxy or a NAT).
pub const ADDRESS_FREE: u32 = 20;
/// The longest lock.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// Failures older than this, with none since, are forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Keys kept at most.
pub const MAX_KEYS: usize = 100_000;

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

#[derive(Default)]
pub struct Throttle {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    /// How long until every key in `keys` may try again (`None`: now).
    pub fn wait(&self, keys: &[&str], now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|key| entries.get(*key)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    /// Counts a failure of `key`, `free` of which are allowed; the lock it
    /// now has, if this failure started one.
    pub fn failed(&self, key: &str, free: u32, now: Instant) -> Option<Duration> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_KEYS && !entries.contains_key(key) {
            entries.retain(|_, e| now.duration_since(e.last) < FORGET_AFTER);
            if entries.len() >= MAX_KEYS {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.last)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        let entry = entries.entry(key.to_string()).or_insert(Entry {
            failures: 0,
            locked_until: None,
            last: now,
        });
        if now.duration_since(entry.last) >= FORGET_AFTER {
            entry.failures = 0;
        }
        entry.failures += 1;
        entry.last = now;
        let over = entry.failures.saturating_sub(free);
        if over == 0 {
            return None;
        }
        let lock = Duration::from_secs(1u64 << (over - 1).min(20)).min(MAX_LOCK);
        entry.locked_until = Some(now + lock);
        Some(lock)
    }

    /// `key` succeeded: its failures are forgotten.
    pub fn succeeded(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// One throttled attempt: its keys (an account, an address) and what is
/// being attempted, for the 429's message and the audit log.
pub struct Attempt {
    /// `(key, free failures)`.
    keys: Vec<(String, u32)>,
    /// What failures are, in the plural: "wrong passwords".
    what: &'static str,
}

impl Attempt {
    /// An attempt on `account` (a key such as `account:alice`) from `address`.
    pub fn new(what: &'static str, account: Option<String>, address: Option<IpAddr>) -> Attempt {
        let keys = account
            .map(|account| (account, ACCOUNT_FREE))
            .into_iter()
            .chain(address.map(|a| (format!("address:{a}"), ADDRESS_FREE)))
            .collect();
        Attempt { keys, what }
    }

    /// `429 throttled` with `Retry-After` while any key is locked.
    pub fn allowed(&self, throttle: &Throttle) -> Result<(), ApiError> {
        let keys: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        match throttle.wait(&keys, Instant::now()) {
            Some(wait) => Err(self.throttled(wait)),
            None => Ok(()),
        }
    }

    /// Counts a failure on every key; each lock it starts is audited.
    pub async fn failed(&self, state: &AppState) -> Result<(), ApiError> {
        let now = Instant::now();
        for (key, free) in &self.keys {
            if let Some(lock) = state.throttle.failed(key, *free, now) {
                audit::record(
                    &state.db,
                    audit::Entry {
                        kind: audit::kind::AUTH_THROTTLED,
                        reason: format!(
                            "{key}: {} {}; locked for {} s",
                            free + 1,
                            self.what,
                            lock.as_secs()
                        ),
                        data: serde_json::json!({"key": key, "lockSeconds": lock.as_secs()}),
                        ..Default::default()
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    /// The attempt succeeded: the account's failures are forgotten (an
    /// address's are not: others may be failing from it).
    pub fn succeeded(&self, throttle: &Throttle) {
        for (key, _) in &self.keys {
            if !key.starts_with("address:") {
                throttle.succeeded(key);
            }
        }
    }

    fn throttled(&self, wait: Duration) -> ApiError {
        let seconds = wait.as_secs().max(1);
        ApiError {
            status: axum::http::StatusCode::TOO_MANY_REQUESTS,
            code: "throttled",
            message: format!("too many {}; try again in {seconds} s", self.what),
            field: None,
            retry_after: Some(seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_allowance_each_failure_doubles_the_lock() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..ACCOUNT_FREE {
            assert_eq!(throttle.failed("account:ana", ACCOUNT_FREE, t0), None);
        }
        assert_eq!(throttle.wait(&["account:ana"], t0), None);
        let locks: Vec<u64> = (0..4)
            .map(|_| {
                throttle
                    .failed("account:ana", ACCOUNT_FREE, t0)
                    .unwrap()
                    .as_secs()
            })
            .collect();
        assert_eq!(locks, [1, 2, 4, 8]);
        assert_eq!(
            throttle.wait(&["address:a", "account:ana"], t0),
            Some(Duration::from_secs(8))
        );
        assert_eq!(
            throttle.wait(&["account:ana"], t0 + Duration::from_secs(9)),
            None
        );
        for _ in 0..30 {
            throttle.failed("account:ana", ACCOUNT_FREE, t0);
        }
        assert_eq!(throttle.wait(&["account:ana"], t0), Some(MAX_LOCK));
    }

    #[test]
    fn success_and_quiet_forget_failures() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..=ACCOUNT_FREE {
            throttle.failed("account:bo", ACCOUNT_FREE, t0);
        }
        throttle.succeeded("account:bo");
        assert_eq!(throttle.wait(&["account:bo"], t0), None);
        assert_eq!(throttle.failed("account:bo", ACCOUNT_FREE, t0), None);
        for _ in 0..ACCOUNT_FREE {
            throttle.failed("account:cy", ACCOUNT_FREE, t0);
        }
        let later = t0 + FORGET_AFTER;
        assert_eq!(throttle.failed("account:cy", ACCOUNT_FREE, later), None);
    }
}
