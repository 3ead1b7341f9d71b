//! `GET /api/v1/search?q=…` ([`crate::server::search`]).

use axum::{
    extract::{Query, State},
    Json,
};
use serde::Deserialize;

use crate::server::{
    auth::Caller,
    error::{ApiError, ApiResult},
    posts::Post,
    search::{self, parse},
    state::AppState,
};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    pub q: String,
    pub limit: Option<i64>,
}

/// Matching posts, best first (newest first among equals), from channels the
/// caller may read: their own, and for non-guests the public ones, less
/// those access policies keep from them.
#[utoipa::path(get, path = "/api/v1/search", params(SearchQuery), responses((status = 200, body = Vec<Post>), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError)), security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Json<Vec<Post>>> {
    let terms = parse(&query.q)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is between 1 and 200"));
    }
    Ok(Json(search::posts(&state, &caller, &terms, limit).await?))
}
