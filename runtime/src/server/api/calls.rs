//! A channel's call over HTTP ([`crate::server::calls`]).

use axum::{extract::State, http::StatusCode, Json};

use crate::server::{
    api::extract::Path,
    auth::Caller,
    authz::gate::may_call,
    calls::{self, Call, Ticket},
    error::{ApiError, ApiResult},
    state::AppState,
};

/// `GET /api/v1/channels/{id}/call`: the channel's call in progress.
#[utoipa::path(get, path = "/api/v1/channels/{id}/call", params(("id" = String, Path)), responses((status = 200, body = Call), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "not a member, or calls not enabled", body = ApiError), (status = 404, description = "no call in progress, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
) -> ApiResult<Json<Call>> {
    calls::configured(&state)?;
    may_call(&state, &caller, &channel_id).await?;
    Ok(Json(calls::current(&state, &channel_id).await?))
}

/// `POST /api/v1/channels/{id}/call`: joins the channel's call, starting it
/// on the least loaded healthy SFU node if there is none; returns the join
/// token.
#[utoipa::path(post, path = "/api/v1/channels/{id}/call", params(("id" = String, Path)), responses((status = 200, body = Ticket), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "not a member, or calls not enabled", body = ApiError), (status = 404, description = "not yours to see", body = ApiError), (status = 503, description = "no media server is available", body = ApiError)), security(("bearer" = [])))]
pub async fn join(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
) -> ApiResult<Json<Ticket>> {
    calls::configured(&state)?;
    may_call(&state, &caller, &channel_id).await?;
    Ok(Json(
        calls::join(&state, &caller.user_id, &channel_id).await?,
    ))
}

/// `POST /api/v1/channels/{id}/call/leave`: the caller leaves; the last one
/// out ends the call.
#[utoipa::path(post, path = "/api/v1/channels/{id}/call/leave", params(("id" = String, Path)), responses((status = 204, description = "left"), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "not a member, or calls not enabled", body = ApiError), (status = 404, description = "not in a call here", body = ApiError)), security(("bearer" = [])))]
pub async fn leave(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
) -> ApiResult<StatusCode> {
    calls::configured(&state)?;
    may_call(&state, &caller, &channel_id).await?;
    if !calls::depart(&state, &channel_id, &caller.user_id).await? {
        return Err(ApiError::not_found("call you are in"));
    }
    Ok(StatusCode::NO_CONTENT)
}
