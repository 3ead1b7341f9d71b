//! Channels over HTTP: list, create, direct and group conversations, join,
//! leave, members, archive ([`crate::server::channels`]).

use axum::{extract::State, http::StatusCode, Json};

use crate::server::{
    api::extract::{Body, Path},
    auth::{self, Caller},
    channels::{
        self, AddMember, Channel, CreateChannel, DirectRequest, GroupRequest, UpdateChannel,
    },
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Every channel the caller may see: those they belong to, and for non-guests
/// the public ones, with unread and mention counts for their own.
#[utoipa::path(get, path = "/api/v1/channels", responses((status = 200, body = Vec<Channel>), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError)), security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Channel>>> {
    Ok(Json(channels::list(&state, &caller).await?))
}

#[utoipa::path(get, path = "/api/v1/channels/{id}", params(("id" = String, Path)), responses((status = 200, body = Channel), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Channel>> {
    Ok(Json(channels::get(&state, &caller, &id).await?))
}

/// Renames a channel or changes its purpose or header.
#[utoipa::path(patch, path = "/api/v1/channels/{id}", params(("id" = String, Path)), request_body = UpdateChannel, responses((status = 200, body = Channel), (status = 403, description = "not a channel admin (renaming: not a system admin), or archived", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError), (status = 409, description = "the name is taken, or the channel is shared with a partner", body = ApiError)), security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<UpdateChannel>,
) -> ApiResult<Json<Channel>> {
    Ok(Json(channels::update(&state, &caller, &id, request).await?))
}

/// Creates a public or private channel; its creator is its first admin.
#[utoipa::path(post, path = "/api/v1/channels", request_body = CreateChannel, responses((status = 201, body = Channel), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 409, description = "name taken", body = ApiError)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<CreateChannel>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    Ok((
        StatusCode::CREATED,
        Json(channels::create(&state, &caller, request).await?),
    ))
}

/// The direct conversation between the caller and one other user, created on first use.
#[utoipa::path(post, path = "/api/v1/channels/direct", request_body = DirectRequest, responses((status = 200, body = Channel), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn direct(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<DirectRequest>,
) -> ApiResult<Json<Channel>> {
    Ok(Json(channels::direct(&state, &caller, request).await?))
}

/// A group conversation of the caller and 2-7 others.
#[utoipa::path(post, path = "/api/v1/channels/group", request_body = GroupRequest, responses((status = 201, body = Channel), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn group(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<GroupRequest>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    Ok((
        StatusCode::CREATED,
        Json(channels::group(&state, &caller, request).await?),
    ))
}

#[utoipa::path(post, path = "/api/v1/channels/{id}/join", params(("id" = String, Path)), responses((status = 200, body = Channel), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn join(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Channel>> {
    Ok(Json(channels::join(&state, &caller, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/channels/{id}/leave", params(("id" = String, Path)), responses((status = 204, description = "left"), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn leave(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    channels::leave(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a member. In a public channel any member may add people; in a private
/// one, channel admins and system admins.
/// Who is in a channel, for those who may read it. Partners' users carry
/// their origin and organisation, and guests are marked as guests
/// wherever they come from.
#[utoipa::path(get, path = "/api/v1/channels/{id}/members", params(("id" = String, Path)), responses((status = 200, body = Vec<auth::Member>), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<auth::Member>>> {
    Ok(Json(channels::members(&state, &caller, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/channels/{id}/members", params(("id" = String, Path)), request_body = AddMember, responses((status = 204, description = "added"), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<AddMember>,
) -> ApiResult<StatusCode> {
    channels::add(&state, &caller, &id, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/channels/{id}/members/{user}", params(("id" = String, Path), ("user" = String, Path)), responses((status = 204, description = "removed"), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn kick(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    channels::kick(&state, &caller, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/channels/{id}/archive", params(("id" = String, Path)), responses((status = 200, body = Channel), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Channel>> {
    Ok(Json(channels::archive(&state, &caller, &id).await?))
}
