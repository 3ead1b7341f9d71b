//! The Microsoft Teams app package over HTTP ([`crate::server::teams`]).

use axum::{
    extract::State,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};

use crate::server::{
    auth::Caller,
    error::{ApiError, ApiResult},
    state::AppState,
    teams,
};

/// A system admin downloads the Teams app package (manifest and icons) that
/// puts the web client in Teams, Outlook and the Microsoft 365 app.
#[utoipa::path(get, path = "/api/v1/admin/teams-app.zip", responses((status = 200, description = "the Teams app package", content_type = "application/zip"), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "not a system admin", body = ApiError), (status = 409, description = "the workspace is not embedded in Microsoft 365 (spec.web.microsoft365)", body = ApiError)), security(("bearer" = [])))]
pub async fn package(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require_admin()?;
    let zip = teams::package(&state.config())?;
    let mut response = zip.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"entente-teams-app.zip\""),
    );
    Ok(response)
}
