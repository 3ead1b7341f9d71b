//! `GET /api/v1/search?q=…` ([`crate::server::search`]).

use axum::{extract::State, Json};
use serde::Deserialize;

use crate::server::{
    api::extract::{Query, Valid},
    auth::Caller,
    error::{ApiError, ApiResult},
    input,
    posts::Post,
    search::{self, parse},
    state::AppState,
};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words, and filters `in:channel`, `from:user`, `before:YYYY-MM-DD`, `after:YYYY-MM-DD`.
    #[param(format = "line", min_length = 1, max_length = 256)]
    pub q: String,
    /// 50 unless given.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

impl Valid for SearchQuery {
    fn valid(&self) -> ApiResult<()> {
        input::line(&self.q, input::SEARCH_MAX).map_err(input::at("q"))?;
        input::limit(self.limit, 200)
    }
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
    Ok(Json(search::posts(&state, &caller, &terms, limit).await?))
}
