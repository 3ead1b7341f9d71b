//! The language model over HTTP: summaries, the agents a user may ask,
//! and for admins the tokens spent and the model's state
//! ([`crate::server::ai`]).

use axum::{extract::State, Json};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::server::{
    ai::{self, summaries},
    api::extract::{Body, Query, Valid},
    auth::Caller,
    db,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Summarises a thread, a channel since a time, or the caller's unread
/// messages, with action items and open questions. The summary is the
/// caller's alone unless `post` is set.
#[utoipa::path(post, path = "/api/v1/ai/summaries", request_body = summaries::SummaryRequest, responses((status = 200, body = summaries::Summary), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "no model, or summaries are off", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError), (status = 503, description = "the model is down, busy or refused", body = ApiError)), security(("bearer" = [])))]
pub async fn summarise(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<summaries::SummaryRequest>,
) -> ApiResult<Json<summaries::Summary>> {
    Ok(Json(summaries::summarise(&state, &caller, request).await?))
}

/// The agents the caller may ask (mention them, or message them directly).
#[utoipa::path(get, path = "/api/v1/ai/agents", responses((status = 200, body = Vec<ai::AgentInfo>), (status = 401, description = "not logged in", body = ApiError)), security(("bearer" = [])))]
pub async fn agents(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ai::AgentInfo>>> {
    let Some(ai) = state.ai.as_ref() else {
        return Ok(Json(Vec::new()));
    };
    let username = sqlx::query_scalar!("SELECT username FROM users WHERE id = $1", caller.user_id)
        .fetch_one(&state.db)
        .await
        .map_err(db::Error::from)?;
    Ok(Json(ai::agents_for(ai, &username)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// First day counted (UTC, `YYYY-MM-DD`); 30 days ago unless given.
    #[param(value_type = Option<String>, format = Date)]
    pub since: Option<NaiveDate>,
}

impl Valid for UsageQuery {
    fn valid(&self) -> ApiResult<()> {
        Ok(())
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageTotals {
    pub requests: i64,
    pub failed: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserUsage {
    pub user_id: String,
    pub username: String,
    /// `agent` or `summary`.
    pub purpose: String,
    pub model: String,
    #[serde(flatten)]
    pub totals: UsageTotals,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub since: NaiveDate,
    /// The whole workspace.
    pub workspace: UsageTotals,
    /// Per user, purpose and model, most tokens first.
    pub users: Vec<UserUsage>,
}

/// Tokens spent on the model since a day, for the workspace and per user.
#[utoipa::path(get, path = "/api/v1/admin/ai/usage", params(UsageQuery), responses((status = 200, body = Usage), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "not a system admin", body = ApiError)), security(("bearer" = [])))]
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<UsageQuery>,
) -> ApiResult<Json<Usage>> {
    caller.require_admin()?;
    let since = query
        .since
        .unwrap_or_else(|| (chrono::Utc::now() - chrono::Duration::days(30)).date_naive());
    let rows = sqlx::query!(
        r#"SELECT a.user_id, u.username, a.purpose, a.model,
                  sum(a.requests)::bigint AS "requests!", sum(a.failed)::bigint AS "failed!",
                  sum(a.prompt_tokens)::bigint AS "prompt_tokens!",
                  sum(a.completion_tokens)::bigint AS "completion_tokens!"
           FROM ai_usage a JOIN users u ON u.id = a.user_id
           WHERE a.day >= $1
           GROUP BY a.user_id, u.username, a.purpose, a.model
           ORDER BY sum(a.prompt_tokens + a.completion_tokens) DESC, u.username"#,
        since
    )
    .fetch_all(&state.db)
    .await
    .map_err(db::Error::from)?;
    let mut workspace = UsageTotals {
        requests: 0,
        failed: 0,
        prompt_tokens: 0,
        completion_tokens: 0,
    };
    let users = rows
        .into_iter()
        .map(|r| {
            workspace.requests += r.requests;
            workspace.failed += r.failed;
            workspace.prompt_tokens += r.prompt_tokens;
            workspace.completion_tokens += r.completion_tokens;
            UserUsage {
                user_id: r.user_id,
                username: r.username,
                purpose: r.purpose,
                model: r.model,
                totals: UsageTotals {
                    requests: r.requests,
                    failed: r.failed,
                    prompt_tokens: r.prompt_tokens,
                    completion_tokens: r.completion_tokens,
                },
            }
        })
        .collect();
    Ok(Json(Usage {
        since,
        workspace,
        users,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelStatus {
    /// Where requests go.
    pub endpoint: String,
    pub chat_model: String,
    /// Whether the endpoint answered `/models` just now.
    pub reachable: bool,
    /// The models it serves, as it says.
    pub models: Vec<String>,
    /// Why it could not be asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Questions to agents not answered yet.
    pub queued_questions: i64,
}

/// The model's endpoint, whether it answers, and what it serves.
#[utoipa::path(get, path = "/api/v1/admin/ai/status", responses((status = 200, body = ModelStatus), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "not a system admin, or no model", body = ApiError)), security(("bearer" = [])))]
pub async fn status(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<ModelStatus>> {
    caller.require_admin()?;
    let ai = ai::enabled(state.ai.as_ref())?;
    let models = ai.model.models().await;
    let queued_questions = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM agent_requests WHERE state IN ('queued', 'answering')"#
    )
    .fetch_one(&state.db)
    .await
    .map_err(db::Error::from)?;
    Ok(Json(ModelStatus {
        endpoint: ai.model.endpoint(),
        chat_model: ai.config.chat_model.clone(),
        reachable: models.is_ok(),
        problem: models.as_ref().err().map(|e| e.to_string()),
        models: models.unwrap_or_default(),
        queued_questions,
    }))
}
