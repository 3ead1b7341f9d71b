//! The audit log: an append-only record of access decisions that changed
//! something, policy changes and guest lifecycle events. The table refuses
//! updates and deletes (a trigger), so not even the server rewrites history.
//! Read by system admins at `GET /api/v1/admin/audit` ([`super::api::audit`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{error::ApiResult, state::AppState};

/// What happened; the `kind` column.
pub mod kind {
    /// A user was refused a channel they asked for (join, or being added).
    pub const ACCESS_DENIED: &str = "access.denied";
    /// A member lost a channel: a policy or their attributes changed.
    pub const ACCESS_REVOKED: &str = "access.revoked";
    /// An audit-mode policy would have denied access.
    pub const ACCESS_WOULD_DENY: &str = "access.would_deny";
    pub const POLICY_ADDED: &str = "policy.added";
    pub const POLICY_CHANGED: &str = "policy.changed";
    pub const POLICY_REMOVED: &str = "policy.removed";
    pub const ATTRIBUTES_CHANGED: &str = "user.attributes_changed";
    pub const CHANNEL_LABELS_CHANGED: &str = "channel.labels_changed";
    pub const GUEST_INVITED: &str = "guest.invited";
    pub const GUEST_JOINED: &str = "guest.joined";
    pub const GUEST_EXPIRED: &str = "guest.expired";
    /// Sign-ins for an account or from an address locked after repeated
    /// wrong passwords.
    pub const AUTH_THROTTLED: &str = "auth.throttled";
    /// An invitation presented again, after expiry, or under a vanished policy.
    pub const INVITATION_REFUSED: &str = "guest.invitation_refused";
    /// A user changed their password (their other sessions ended).
    pub const PASSWORD_CHANGED: &str = "user.password_changed";
    /// A system admin deactivated a user (every token revoked) or
    /// reactivated one.
    pub const USER_DEACTIVATED: &str = "user.deactivated";
    pub const USER_REACTIVATED: &str = "user.reactivated";
    /// A system admin ended every login session of a user.
    pub const SESSIONS_ENDED: &str = "user.sessions_ended";
    /// A channel was renamed, or its purpose or header changed.
    pub const CHANNEL_UPDATED: &str = "channel.updated";
    /// Someone signed in through the identity provider (and, the first
    /// time, got an account).
    pub const SSO_SIGNED_IN: &str = "auth.sso_signed_in";
    /// The identity provider vouched for someone this workspace refused
    /// (another tenant, groups it could not read), or the sign-in failed
    /// a check (a token that does not verify, a replayed code).
    pub const SSO_REFUSED: &str = "auth.sso_refused";
}

pub use super::db::audit::{record, Entry};

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    /// Who did it, when someone did (absent for the server's own sweeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub reason: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// Which entries to read: after `seq` `after`, of a kind (`access.revoked`)
/// or family (`guest.`), about a user, channel or policy.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub after: i64,
    pub kind: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub channel_id: Option<&'a str>,
    pub policy: Option<&'a str>,
    pub limit: i64,
}

/// The entries `filter` selects, oldest first. Findings noted by requests
/// before this one are among them.
pub async fn entries(state: &AppState, filter: Filter<'_>) -> ApiResult<Vec<AuditEntry>> {
    state.findings.flush().await;
    let kind_pattern = filter.kind.map(|k| {
        if k.ends_with('.') {
            format!("{}%", k.replace('%', ""))
        } else {
            k.replace('%', "")
        }
    });
    Ok(sqlx::query_as!(
        AuditEntry,
        "SELECT seq, at, kind, actor_id, user_id, channel_id, policy, reason, data FROM audit_log
         WHERE seq > $1
           AND ($2::text IS NULL OR kind LIKE $2)
           AND ($3::text IS NULL OR user_id = $3)
           AND ($4::text IS NULL OR channel_id = $4)
           AND ($5::text IS NULL OR policy = $5)
         ORDER BY seq LIMIT $6",
        filter.after,
        kind_pattern,
        filter.user_id,
        filter.channel_id,
        filter.policy,
        filter.limit
    )
    .fetch_all(&state.db)
    .await?)
}
