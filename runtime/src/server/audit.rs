//! The audit log: an append-only record of access decisions that changed
//! something, policy changes and guest lifecycle events. The table refuses
//! updates and deletes (a trigger), so not even the server rewrites history.

use axum::{
    extract::{Query, State},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    auth::Caller,
    error::{ApiError, ApiResult},
    state::AppState,
};

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
    /// An invitation presented again, after expiry, or under a vanished policy.
    pub const INVITATION_REFUSED: &str = "guest.invitation_refused";
}

pub use super::db::audit::{record, Entry};

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub actor_id: Option<String>,
    pub user_id: Option<String>,
    pub channel_id: Option<String>,
    pub policy: Option<String>,
    pub reason: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries after this `seq` (the last one you have), oldest first.
    pub after: Option<i64>,
    pub limit: Option<i64>,
    /// An exact kind such as `access.revoked`, or a family such as `guest.`.
    pub kind: Option<String>,
    pub user_id: Option<String>,
    pub channel_id: Option<String>,
    pub policy: Option<String>,
}

/// The audit log, oldest first, for system admins.
#[utoipa::path(get, path = "/api/v1/admin/audit", params(AuditQuery), responses((status = 200, body = Vec<AuditEntry>), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    caller.require_admin()?;
    // Findings noted by requests before this one are in what it reads.
    state.findings.flush().await;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is between 1 and 1000"));
    }
    let kind_pattern = query.kind.as_deref().map(|k| {
        if k.ends_with('.') {
            format!("{}%", k.replace('%', ""))
        } else {
            k.replace('%', "")
        }
    });
    let entries = sqlx::query_as(
        "SELECT seq, at, kind, actor_id, user_id, channel_id, policy, reason, data FROM audit_log
         WHERE seq > $1
           AND ($2::text IS NULL OR kind LIKE $2)
           AND ($3::text IS NULL OR user_id = $3)
           AND ($4::text IS NULL OR channel_id = $4)
           AND ($5::text IS NULL OR policy = $5)
         ORDER BY seq LIMIT $6",
    )
    .bind(query.after.unwrap_or(0))
    .bind(kind_pattern)
    .bind(&query.user_id)
    .bind(&query.channel_id)
    .bind(&query.policy)
    .bind(limit)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(entries))
}
