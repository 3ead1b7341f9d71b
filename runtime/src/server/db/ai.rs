//! Writes of `agent_requests` (questions to agents, queued with the post
//! that asks, answered once) and `ai_usage` (tokens spent per day, user,
//! model and purpose).

use chrono::{DateTime, Utc};

use super::Result;

/// A post that asks an agent.
pub struct Question<'a> {
    pub post_id: &'a str,
    pub agent: &'a str,
    pub channel_id: &'a str,
    pub asker_id: &'a str,
}

/// Queues questions (in the transaction that writes their posts).
pub async fn queue<'e>(db: impl sqlx::PgExecutor<'e>, questions: &[Question<'_>]) -> Result<()> {
    if questions.is_empty() {
        return Ok(());
    }
    let posts: Vec<&str> = questions.iter().map(|q| q.post_id).collect();
    let agents: Vec<&str> = questions.iter().map(|q| q.agent).collect();
    let channels: Vec<&str> = questions.iter().map(|q| q.channel_id).collect();
    let askers: Vec<&str> = questions.iter().map(|q| q.asker_id).collect();
    sqlx::query!(
        "INSERT INTO agent_requests (post_id, agent, channel_id, asker_id)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])
         ON CONFLICT DO NOTHING",
        &posts as &[&str],
        &agents as &[&str],
        &channels as &[&str],
        &askers as &[&str],
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A queued question, claimed by this server.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub post_id: String,
    pub agent: String,
    pub channel_id: String,
    pub asker_id: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// Claims the oldest open question: a queued one, or one a server began
/// answering `stale_after` ago and never finished (it stopped).
pub async fn claim(db: &sqlx::PgPool, stale_after: chrono::Duration) -> Result<Option<Claimed>> {
    let stale = Utc::now() - stale_after;
    Ok(sqlx::query_as!(
        Claimed,
        "UPDATE agent_requests SET state = 'answering', claimed_at = now(), attempts = attempts + 1
         WHERE post_id = (
             SELECT post_id FROM agent_requests
             WHERE state = 'queued' OR (state = 'answering' AND claimed_at < $1)
             ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING post_id, agent, channel_id, asker_id, attempts, created_at",
        stale
    )
    .fetch_optional(db)
    .await?)
}

/// Ends a question: answered by `answer_id`, or failed with `error`
/// (told to the asker).
pub async fn finish<'e>(
    db: impl sqlx::PgExecutor<'e>,
    post_id: &str,
    answer_id: Option<&str>,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE agent_requests SET state = CASE WHEN $3::text IS NULL THEN 'answered' ELSE 'failed' END,
             answer_id = $2, error = $3
         WHERE post_id = $1",
        post_id,
        answer_id,
        error
    )
    .execute(db)
    .await?;
    Ok(())
}

/// One request's cost.
pub struct Spent<'a> {
    pub user_id: &'a str,
    pub model: &'a str,
    /// `agent` or `summary`.
    pub purpose: &'a str,
    pub failed: bool,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// Adds one request to today's totals.
pub async fn spend<'e>(db: impl sqlx::PgExecutor<'e>, spent: Spent<'_>) -> Result<()> {
    sqlx::query!(
        "INSERT INTO ai_usage (day, user_id, model, purpose, requests, failed, prompt_tokens, completion_tokens)
         VALUES (current_date, $1, $2, $3, 1, $4, $5, $6)
         ON CONFLICT (day, user_id, model, purpose) DO UPDATE SET
             requests = ai_usage.requests + 1,
             failed = ai_usage.failed + EXCLUDED.failed,
             prompt_tokens = ai_usage.prompt_tokens + EXCLUDED.prompt_tokens,
             completion_tokens = ai_usage.completion_tokens + EXCLUDED.completion_tokens",
        spent.user_id,
        spent.model,
        spent.purpose,
        spent.failed as i64,
        spent.prompt_tokens,
        spent.completion_tokens
    )
    .execute(db)
    .await?;
    Ok(())
}
