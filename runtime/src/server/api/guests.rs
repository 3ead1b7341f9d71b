//! Guest invitations over HTTP ([`crate::server::guests`]).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    Json,
};

use crate::server::{
    api::{auth::signed_in, extract::Body},
    auth::{Caller, ClientAddress, LoginResponse},
    error::{ApiError, ApiResult},
    guests::{self, Invitation, Invite, Redeem},
    state::AppState,
};

/// A system admin invites one person as a guest under a GuestPolicy.
#[utoipa::path(post, path = "/api/v1/guests/invitations", request_body = Invite, responses((status = 201, body = Invitation), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "not an admin, or the policy does not admit this email", body = ApiError), (status = 409, description = "an account with this email exists", body = ApiError)), security(("bearer" = [])))]
pub async fn invite(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<Invite>,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    caller.require_admin()?;
    let invitation = guests::invite(&state, &caller.user_id, request).await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// Redeems an invitation (once): creates the guest account, adds it to its
/// policy's channels, and signs it in.
#[utoipa::path(post, path = "/api/v1/guests/redeem", request_body = Redeem, responses((status = 201, body = LoginResponse), (status = 400, description = "invalid input", body = ApiError), (status = 404, description = "no such invitation", body = ApiError), (status = 409, description = "username taken", body = ApiError), (status = 410, description = "the invitation was used, expired, or its policy is gone", body = ApiError), (status = 429, description = "too many invitation tokens that do not work from this address (Retry-After)", body = ApiError)))]
pub async fn redeem(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Body(request): Body<Redeem>,
) -> ApiResult<(StatusCode, HeaderMap, Json<LoginResponse>)> {
    let cookie = request.cookie;
    let session = guests::redeem(&state, request, address).await?;
    let (headers, body) = signed_in(&state, &headers, cookie, session);
    Ok((StatusCode::CREATED, headers, body))
}
