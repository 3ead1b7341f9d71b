//! Admin endpoints of attribute-based access over HTTP
//! ([`crate::server::access_admin`]).

use std::collections::BTreeMap;

use axum::{extract::State, Json};

use crate::server::{
    access_admin::{self, Simulate, Simulation},
    api::extract::{Body, Path},
    auth::Caller,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// A system admin sets a named channel's labels (replacing them). Members
/// the policies no longer admit leave at once.
#[utoipa::path(put, path = "/api/v1/channels/{id}/labels", params(("id" = String, Path)), request_body = access_admin::Labels, responses((status = 200, description = "the labels now", body = Object), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn set_labels(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
    Body(labels): Body<access_admin::Labels>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    caller.require_admin()?;
    let labels = access_admin::set_labels(&state, &caller.user_id, &channel_id, labels.0).await?;
    Ok(Json(labels))
}

/// What a policy change would do, decided by the same code that enforces it.
#[utoipa::path(post, path = "/api/v1/admin/access-policies/simulate", request_body = Simulate, responses((status = 200, body = Simulation), (status = 400, description = "invalid input; an expression that does not compile names the error", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError)), security(("bearer" = [])))]
pub async fn simulate(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<Simulate>,
) -> ApiResult<Json<Simulation>> {
    caller.require_admin()?;
    Ok(Json(access_admin::simulate(&state, request).await?))
}
