//! `GET /api/v1/admin/audit` ([`crate::server::audit`]).

use axum::{
    extract::{Query, State},
    Json,
};
use serde::Deserialize;

use crate::server::{
    audit::{self, AuditEntry},
    auth::Caller,
    error::{ApiError, ApiResult},
    state::AppState,
};

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
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is between 1 and 1000"));
    }
    let filter = audit::Filter {
        after: query.after.unwrap_or(0),
        kind: query.kind.as_deref(),
        user_id: query.user_id.as_deref(),
        channel_id: query.channel_id.as_deref(),
        policy: query.policy.as_deref(),
        limit,
    };
    Ok(Json(audit::entries(&state, filter).await?))
}
