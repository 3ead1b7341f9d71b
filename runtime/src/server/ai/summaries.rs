//! Summaries: of a thread, of a channel since a time, or of everything a
//! user has not read — with action items and open questions. Only posts
//! the caller may read go to the model, and the result is the caller's
//! alone unless they ask for it to be posted (as their own post, through
//! the one write of posts).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{agents::transcript, client::Chat};
use crate::server::{
    auth::Caller,
    authz::gate::see,
    db::{self, new_id, posts::post_select},
    error::{ApiError, ApiResult},
    input::{self, Valid},
    posts::{self, Post},
    state::AppState,
};

/// Most posts of one channel put into a summary (the newest).
const MAX_POSTS: i64 = 300;
/// Most posts per channel in a summary of unread messages.
const MAX_UNREAD_PER_CHANNEL: i64 = 50;
/// Longest summary asked for, in tokens.
const MAX_SUMMARY_TOKENS: u32 = 600;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SummaryRequest {
    /// Summarise the thread this post is in.
    #[schema(pattern = "^[0-9A-HJKMNP-TV-Z]{26}$")]
    pub thread_id: Option<String>,
    /// Summarise this channel since `since`.
    #[schema(pattern = "^[0-9A-HJKMNP-TV-Z]{26}$")]
    pub channel_id: Option<String>,
    /// With `channelId`: from this time (RFC 3339); 24 hours ago unless given.
    pub since: Option<DateTime<Utc>>,
    /// Summarise what the caller has not read, in every channel of theirs.
    #[serde(default)]
    pub unread: bool,
    /// Also post the summary in the thread or channel, as the caller.
    #[serde(default)]
    pub post: bool,
}

impl Valid for SummaryRequest {
    fn valid(&self) -> ApiResult<()> {
        let scopes =
            self.thread_id.is_some() as u8 + self.channel_id.is_some() as u8 + self.unread as u8;
        if scopes != 1 {
            return Err(ApiError::invalid(
                "threadId",
                "say what to summarise: exactly one of threadId, channelId (with since) or unread: true",
            ));
        }
        if self.since.is_some() && self.channel_id.is_none() {
            return Err(ApiError::invalid("since", "since goes with channelId"));
        }
        if self.post && self.unread {
            return Err(ApiError::invalid(
                "post",
                "a summary of unread messages spans channels and cannot be posted",
            ));
        }
        if let Some(id) = &self.thread_id {
            input::id(id).map_err(input::at("threadId"))?;
        }
        if let Some(id) = &self.channel_id {
            input::id(id).map_err(input::at("channelId"))?;
        }
        Ok(())
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The summary, with its action items and open questions.
    pub summary: String,
    pub model: String,
    /// Posts summarised.
    pub posts: usize,
    /// The channels they came from.
    pub channel_ids: Vec<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// The post holding the summary, when it was posted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_id: Option<String>,
}

/// What a summary covers: posts per channel, oldest first.
type Gathered = Vec<(String, Option<String>, Vec<Post>)>;

pub async fn summarise(
    state: &AppState,
    caller: &Caller,
    request: SummaryRequest,
) -> ApiResult<Summary> {
    let ai = super::enabled(state.ai.as_ref())?;
    super::person(caller)?;
    if !ai.config.summaries {
        return Err(ApiError::forbidden(
            "summaries are off in this workspace (spec.features.ai.summaries)",
        ));
    }
    let (gathered, post_to) = gather(state, caller, &request).await?;
    let count: usize = gathered.iter().map(|(_, _, posts)| posts.len()).sum();
    if count == 0 {
        return Err(ApiError::invalid(
            if request.unread {
                "unread"
            } else if request.thread_id.is_some() {
                "threadId"
            } else {
                "since"
            },
            "there is nothing to summarise there",
        ));
    }
    let mut messages = vec![json!({
        "role": "system",
        "content": "Summarise the conversation that follows for the person who asked. \
            Then list \"Action items\" (who is to do what, by when if said) and \"Open questions\". \
            Use only what the conversation says; do not invent names, dates or facts.",
    })];
    for (_, name, posts) in &gathered {
        if gathered.len() > 1 {
            messages.push(json!({
                "role": "user",
                "content": format!("In ~{}:", name.as_deref().unwrap_or("a conversation")),
            }));
        }
        messages.extend(transcript(&state.db, posts, None).await?);
    }
    let model = ai.config.chat_model.clone();
    let result = ai
        .model
        .chat(
            Chat {
                model: &model,
                messages: &messages,
                tools: &[],
                max_tokens: MAX_SUMMARY_TOKENS,
            },
            &mut |_| {},
        )
        .await;
    let (usage, outcome) = match &result {
        Ok(reply) => (reply.usage, None),
        Err(error) => (Default::default(), Some(error.to_string())),
    };
    let channel_ids: Vec<String> = gathered.iter().map(|(id, _, _)| id.clone()).collect();
    let mut tx = state.db.begin().await?;
    db::ai::spend(
        &mut *tx,
        db::ai::Spent {
            user_id: &caller.user_id,
            model: &model,
            purpose: "summary",
            failed: outcome.is_some(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        },
    )
    .await?;
    db::audit::record(
        &mut *tx,
        db::audit::Entry {
            kind: if outcome.is_none() {
                "ai.summary"
            } else {
                "ai.summary_failed"
            },
            actor_id: Some(&caller.user_id),
            channel_id: channel_ids
                .first()
                .filter(|_| channel_ids.len() == 1)
                .map(String::as_str),
            reason: outcome.clone().unwrap_or_default(),
            data: json!({
                "model": model,
                "posts": count,
                "channels": channel_ids,
                "promptTokens": usage.prompt_tokens,
                "completionTokens": usage.completion_tokens,
            }),
            ..Default::default()
        },
    )
    .await?;
    db::commit(tx).await?;
    state.metrics.ai_request(
        &model,
        "summary",
        outcome.is_none(),
        usage,
        result.as_ref().ok(),
    );
    let reply = result?;
    let summary = reply.content.trim().to_string();
    let post_id = match (request.post, post_to) {
        (true, Some((channel_id, root))) if !summary.is_empty() => {
            let id = new_id();
            state
                .posts
                .post(
                    state,
                    posts::writer::Local {
                        id: id.clone(),
                        channel_id,
                        author_id: caller.user_id.clone(),
                        reply_to: root,
                        message: format!("**Summary** ({model}):\n\n{summary}"),
                        file_ids: Vec::new(),
                    },
                )
                .await?;
            Some(id)
        }
        _ => None,
    };
    Ok(Summary {
        summary,
        model,
        posts: count,
        channel_ids,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        post_id,
    })
}

/// The posts to summarise, and where it would be posted (channel, thread).
async fn gather(
    state: &AppState,
    caller: &Caller,
    request: &SummaryRequest,
) -> ApiResult<(Gathered, Option<(String, Option<String>)>)> {
    if let Some(thread) = &request.thread_id {
        let post = db::posts::load(&state.db, thread)
            .await?
            .ok_or_else(|| ApiError::not_found("post"))?;
        let seen = see(state, caller, &post.channel_id)
            .await
            .map_err(|_| ApiError::not_found("post"))?;
        let root = post.root_id.clone().unwrap_or(post.id.clone());
        let posts = db::posts::thread(&state.db, &root).await?;
        check_post(request, seen.access.post)?;
        return Ok((
            vec![(post.channel_id.clone(), seen.channel.name, posts)],
            Some((post.channel_id, Some(root))),
        ));
    }
    if let Some(channel) = &request.channel_id {
        let seen = see(state, caller, channel).await?;
        check_post(request, seen.access.post)?;
        let since = request
            .since
            .unwrap_or_else(|| Utc::now() - chrono::Duration::hours(24));
        let mut posts: Vec<Post> = sqlx::query_as(concat!(
            post_select!(),
            " WHERE p.channel_id = $1 AND p.created_at >= $2 AND p.deleted_at IS NULL
              ORDER BY p.seq DESC LIMIT $3"
        ))
        .bind(channel)
        .bind(since)
        .bind(MAX_POSTS)
        .fetch_all(&state.db)
        .await
        .map_err(db::Error::from)?;
        posts.reverse();
        return Ok((
            vec![(channel.clone(), seen.channel.name, posts)],
            Some((channel.clone(), None)),
        ));
    }
    // Unread: every channel of the caller's with others' posts past their
    // read marker, each through the read gate.
    let channels = sqlx::query!(
        "SELECT m.channel_id, m.last_read_seq FROM channel_members m
         WHERE m.user_id = $1 AND EXISTS (
             SELECT 1 FROM posts p WHERE p.channel_id = m.channel_id AND p.seq > m.last_read_seq
               AND p.deleted_at IS NULL AND p.user_id <> $1)
         ORDER BY m.channel_id LIMIT 50",
        caller.user_id
    )
    .fetch_all(&state.db)
    .await
    .map_err(db::Error::from)?;
    let mut gathered = Vec::new();
    for row in channels {
        let Ok(seen) = see(state, caller, &row.channel_id).await else {
            continue;
        };
        let mut posts: Vec<Post> = sqlx::query_as(concat!(
            post_select!(),
            " WHERE p.channel_id = $1 AND p.seq > $2 AND p.deleted_at IS NULL
              ORDER BY p.seq DESC LIMIT $3"
        ))
        .bind(&row.channel_id)
        .bind(row.last_read_seq)
        .bind(MAX_UNREAD_PER_CHANNEL)
        .fetch_all(&state.db)
        .await
        .map_err(db::Error::from)?;
        posts.reverse();
        gathered.push((row.channel_id, seen.channel.name, posts));
    }
    Ok((gathered, None))
}

fn check_post(request: &SummaryRequest, may_post: bool) -> ApiResult<()> {
    if request.post && !may_post {
        return Err(ApiError::forbidden(
            "you may read this channel but not post in it: ask without post",
        ));
    }
    Ok(())
}
