//! `GET /api/v1/admin/audit` ([`crate::server::audit`]).

use axum::{extract::State, Json};
use serde::Deserialize;

use crate::server::{
    api::extract::{Query, Valid},
    audit::{self, AuditEntry},
    auth::Caller,
    error::{ApiError, ApiResult},
    input,
    state::AppState,
};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries after this `seq` (the last one you have), oldest first.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// 100 unless given.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// An exact kind such as `access.revoked`, or a family such as `guest.`.
    #[param(format = "line", min_length = 1, max_length = 128)]
    pub kind: Option<String>,
    #[param(pattern = "^[0-9A-HJKMNP-TV-Z]{26}$")]
    pub user_id: Option<String>,
    #[param(pattern = "^[0-9A-HJKMNP-TV-Z]{26}$")]
    pub channel_id: Option<String>,
    #[param(format = "line", min_length = 1, max_length = 253)]
    pub policy: Option<String>,
}

impl Valid for AuditQuery {
    fn valid(&self) -> ApiResult<()> {
        if self.after.is_some_and(|after| after < 0) {
            return Err(ApiError::invalid("after", "after is a seq, 0 or more"));
        }
        input::limit(self.limit, 1000)?;
        if let Some(kind) = &self.kind {
            input::line(kind, 128).map_err(input::at("kind"))?;
        }
        if let Some(id) = &self.user_id {
            input::id(id).map_err(input::at("userId"))?;
        }
        if let Some(id) = &self.channel_id {
            input::id(id).map_err(input::at("channelId"))?;
        }
        if let Some(policy) = &self.policy {
            input::line(policy, 253).map_err(input::at("policy"))?;
        }
        Ok(())
    }
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
