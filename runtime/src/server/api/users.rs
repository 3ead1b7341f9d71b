//! The user directory and account management over HTTP
//! ([`crate::server::accounts`]).

use axum::{extract::State, http::StatusCode, Json};

use crate::server::{
    accounts::{self, ChangePassword, Directory, UserPage},
    api::extract::{Body, Path, Query},
    auth::{Caller, ClientAddress, User},
    error::{ApiError, ApiResult},
    state::AppState,
};

/// The users the caller may find, by username, in pages.
#[utoipa::path(get, path = "/api/v1/users", params(Directory), responses((status = 200, body = UserPage), (status = 403, description = "deactivated accounts are for system admins", body = ApiError)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<Directory>,
) -> ApiResult<Json<UserPage>> {
    Ok(Json(accounts::directory(&state, &caller, query).await?))
}

/// The caller changes their password; their other sessions end.
#[utoipa::path(post, path = "/api/v1/users/me/password", request_body = ChangePassword, responses((status = 204, description = "changed; other sessions ended"), (status = 403, description = "the current password is wrong", body = ApiError), (status = 409, description = "the account has no password here (it signs in through its identity provider)", body = ApiError)), security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(address): ClientAddress,
    Body(request): Body<ChangePassword>,
) -> ApiResult<StatusCode> {
    accounts::change_password(&state, &caller, request, address).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A system admin deactivates a user: every session and token is revoked;
/// what they wrote stays.
#[utoipa::path(post, path = "/api/v1/users/{id}/deactivate", params(("id" = String, Path)), responses((status = 200, body = User), (status = 403, description = "not a system admin", body = ApiError), (status = 404, description = "no such local user", body = ApiError), (status = 409, description = "one cannot deactivate oneself", body = ApiError)), security(("bearer" = [])))]
pub async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(accounts::deactivate(&state, &caller, &id).await?))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionsEnded {
    pub sessions_ended: u64,
}

/// A system admin ends every login session of a user: their open pages
/// return to the sign-in page and their live streams close. Personal
/// access tokens stay (revoke those, or deactivate the account).
#[utoipa::path(post, path = "/api/v1/users/{id}/sessions/end", params(("id" = String, Path)), responses((status = 200, body = SessionsEnded), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "not a system admin", body = ApiError), (status = 404, description = "no such local user", body = ApiError)), security(("bearer" = [])))]
pub async fn end_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionsEnded>> {
    Ok(Json(SessionsEnded {
        sessions_ended: accounts::end_sessions(&state, &caller, &id).await?,
    }))
}

/// A system admin reactivates a user, who signs in again with their password.
#[utoipa::path(post, path = "/api/v1/users/{id}/reactivate", params(("id" = String, Path)), responses((status = 200, body = User), (status = 403, description = "not a system admin", body = ApiError), (status = 404, description = "no such local user", body = ApiError), (status = 409, description = "one cannot reactivate oneself", body = ApiError)), security(("bearer" = [])))]
pub async fn reactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(accounts::reactivate(&state, &caller, &id).await?))
}
