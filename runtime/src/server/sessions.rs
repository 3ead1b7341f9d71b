//! Bearer tokens recently checked, kept in memory, so that a request does
//! not read its token and its user from the database each time.
//!
//! Why a cached caller is never wrong for longer than a notification takes:
//! everything that changes what a token stands for — a revoked token
//! (logout, a revoked personal token, a password change, a deactivation, a
//! guest's access ending) or a user's changed attributes — calls
//! [`changed`] in its transaction. That forgets the user on this replica
//! at once and `NOTIFY`s every replica, whose hub forgets the user when the
//! notification arrives (after the commit), and forgets everyone when its
//! listener reconnects, having perhaps missed one. A lookup that read the
//! database before a change is not kept if any user was forgotten
//! meanwhile (a generation number). The token's expiry and a guest's end
//! of access are checked on every use, and an entry is read again after
//! [`TTL`] whatever happens.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

use super::auth::Caller;

/// The longest an entry is used without reading it again.
pub const TTL: Duration = Duration::from_secs(10);
/// Most entries kept; past that the cache starts afresh.
const MAX_ENTRIES: usize = 100_000;

struct Entry {
    caller: Caller,
    read_at: Instant,
    /// The earlier of the token's expiry and the end of a guest's access.
    expires: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct Sessions {
    entries: Mutex<HashMap<Vec<u8>, Entry>>,
    /// Bumped whenever anyone is forgotten.
    generation: AtomicU64,
}

impl Sessions {
    /// The caller the token with this hash stands for, if known and current.
    pub fn get(&self, hash: &[u8]) -> Option<Caller> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(hash)?;
        let current = entry.read_at.elapsed() < TTL
            && entry.expires.is_none_or(|expires| expires > Utc::now());
        if current {
            Some(entry.caller.clone())
        } else {
            entries.remove(hash);
            None
        }
    }

    /// The generation to pass to [`Sessions::put`] with what is read next.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps what was read for a token, unless someone was forgotten since
    /// `generation` (what was read may predate that change).
    pub fn put(
        &self,
        hash: Vec<u8>,
        caller: Caller,
        expires: Option<DateTime<Utc>>,
        generation: u64,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation() != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let read_at = Instant::now();
        entries.insert(
            hash,
            Entry {
                caller,
                read_at,
                expires,
            },
        );
    }

    /// Forgets every token of `user_id`.
    pub fn forget(&self, user_id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.retain(|_, entry| entry.caller.user_id != user_id);
    }

    /// Forgets everyone (notifications may have been missed).
    pub fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }
}

/// What `user_id`'s tokens stand for changes in `executor`'s transaction
/// (tokens revoked, attributes changed): forgotten here now, and on every
/// replica when it commits; open WebSockets check their token then.
pub async fn changed<'e>(
    sessions: &Sessions,
    executor: impl sqlx::PgExecutor<'e>,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sessions.forget(user_id);
    super::events::sessions_revoked(executor, user_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: &str) -> Caller {
        Caller {
            user_id: user.into(),
            role: crate::server::authz::roles::Role::Member,
            token_id: format!("token-of-{user}"),
            attributes: Default::default(),
            guest_policy: None,
        }
    }

    #[test]
    fn a_lookup_read_before_someone_was_forgotten_is_not_kept() {
        let sessions = Sessions::default();
        let before = sessions.generation();
        sessions.forget("bob");
        sessions.put(b"a".to_vec(), caller("alice"), None, before);
        assert!(sessions.get(b"a").is_none());
        let now = sessions.generation();
        sessions.put(b"a".to_vec(), caller("alice"), None, now);
        assert_eq!(sessions.get(b"a").unwrap().user_id, "alice");
    }

    #[test]
    fn forgetting_a_user_drops_only_their_tokens_and_expiry_is_checked() {
        let sessions = Sessions::default();
        let generation = sessions.generation();
        sessions.put(b"a1".to_vec(), caller("alice"), None, generation);
        sessions.put(b"a2".to_vec(), caller("alice"), None, generation);
        sessions.put(b"b".to_vec(), caller("bob"), None, generation);
        let past = Utc::now() - chrono::Duration::seconds(1);
        sessions.put(b"c".to_vec(), caller("carol"), Some(past), generation);
        assert!(sessions.get(b"c").is_none(), "an expired token is not used");
        sessions.forget("alice");
        assert!(sessions.get(b"a1").is_none() && sessions.get(b"a2").is_none());
        assert_eq!(sessions.get(b"b").unwrap().user_id, "bob");
    }
}
