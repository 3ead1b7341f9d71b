//! Posts: messages, thread replies, edits with history, deletes, reactions,
//! pins, mentions, cursor pagination and read markers.

use std::collections::BTreeSet;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    auth::{new_id, Caller},
    channels::see,
    error::{ApiError, ApiResult, Body},
    events,
    federation::{self, proto, proto::event::Op},
    state::AppState,
};

/// Longest message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 16_383;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Post {
    pub id: String,
    /// Position in the workspace's history; the pagination cursor.
    pub seq: i64,
    pub channel_id: String,
    pub user_id: String,
    pub root_id: Option<String>,
    /// Empty once deleted.
    pub message: String,
    pub pinned: bool,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// `[[emoji, userId], …]`
    #[schema(value_type = Vec<Vec<String>>)]
    pub reactions: sqlx::types::Json<Vec<(String, String)>>,
    /// Attached files (`id`, `name`, `contentType`, `size`, `state`); download at
    /// `/api/v1/files/{id}`. `state` is `ready`, or for a partner's file
    /// `pending` while its bytes arrive and `refused` if they never will.
    #[schema(value_type = Vec<Object>)]
    pub files: sqlx::types::Json<Vec<serde_json::Value>>,
}

/// The columns of [`Post`], as a literal so queries stay static strings.
macro_rules! post_select {
    () => {
        "SELECT p.id, p.seq, p.channel_id, p.user_id, p.root_id,
        CASE WHEN p.deleted_at IS NULL THEN p.message ELSE '' END AS message,
        p.pinned, p.created_at, p.edited_at, p.deleted_at,
        COALESCE((SELECT json_agg(json_build_array(r.emoji, r.user_id) ORDER BY r.created_at)
                  FROM reactions r WHERE r.post_id = p.id), '[]'::json) AS reactions,
        CASE WHEN p.deleted_at IS NULL THEN COALESCE((SELECT json_agg(json_build_object(
                    'id', f.id, 'name', f.name, 'contentType', f.content_type, 'size', f.size, 'state', f.state) ORDER BY f.created_at)
                  FROM files f WHERE f.post_id = p.id), '[]'::json) ELSE '[]'::json END AS files
    FROM posts p"
    };
}

/// What a message mentions: `@username`s and whether it says `@channel`/`@all`/`@here`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mentions {
    pub usernames: BTreeSet<String>,
    pub channel: bool,
}

pub fn parse_mentions(message: &str) -> Mentions {
    let mut mentions = Mentions::default();
    let bytes = message.as_bytes();
    for (i, _) in message.match_indices('@') {
        // A mention starts a word: not the middle of an email address.
        if i > 0
            && (bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'.'
                || bytes[i - 1] == b'_')
        {
            continue;
        }
        let name: String = message[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .collect();
        let name = name.trim_end_matches(['.', '-', '_']).to_ascii_lowercase();
        match name.as_str() {
            "" => {}
            "channel" | "all" | "here" => mentions.channel = true,
            _ => {
                mentions.usernames.insert(name);
            }
        }
    }
    mentions
}

fn check_message(message: &str) -> ApiResult<()> {
    if message.trim().is_empty() {
        return Err(ApiError::invalid("message", "a message cannot be empty"));
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::invalid(
            "message",
            format!("a message is at most {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    Ok(())
}

async fn load<'e>(db: impl sqlx::PgExecutor<'e>, post_id: &str) -> ApiResult<Option<Post>> {
    Ok(sqlx::query_as(concat!(post_select!(), " WHERE p.id = $1"))
        .bind(post_id)
        .fetch_optional(db)
        .await?)
}

/// Records `kind` for `post_id` (the post as it now is) in `tx`.
pub(crate) async fn announce(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    kind: &str,
    post_id: &str,
) -> ApiResult<Post> {
    let post = load(&mut **tx, post_id)
        .await?
        .ok_or_else(|| ApiError::not_found("post"))?;
    let data = serde_json::to_value(&post).expect("a post serializes");
    events::record(tx, kind, Some(&post.channel_id), None, data).await?;
    Ok(post)
}

/// A post the caller may read (its channel is readable), else 404.
async fn visible(
    state: &AppState,
    caller: &Caller,
    post_id: &str,
) -> ApiResult<(Post, super::channels::Seen)> {
    let post = load(&state.db, post_id)
        .await?
        .ok_or_else(|| ApiError::not_found("post"))?;
    let seen = see(state, caller, &post.channel_id)
        .await
        .map_err(|_| ApiError::not_found("post"))?;
    Ok((post, seen))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePost {
    pub message: String,
    #[serde(default)]
    pub root_id: Option<String>,
    /// Files the caller uploaded to this channel, to attach.
    #[serde(default)]
    pub file_ids: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/channels/{id}/posts", params(("id" = String, Path)), request_body = CreatePost, responses((status = 201, body = Post), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
    Body(request): Body<CreatePost>,
) -> ApiResult<(StatusCode, Json<Post>)> {
    check_message(&request.message)?;
    let seen = see(&state, &caller, &channel_id).await?;
    if !seen.access.post {
        return Err(ApiError::forbidden(if seen.channel.archived_at.is_some() {
            "this channel is archived"
        } else {
            "join the channel before posting"
        }));
    }
    if let Some(why) = seen
        .channel
        .name
        .as_deref()
        .and_then(|name| federation::paused(&state, name))
    {
        return Err(ApiError::paused(why));
    }
    // A reply belongs to the thread's first post, in the same channel.
    let root_id = match &request.root_id {
        None => None,
        Some(root) => {
            let parent: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT channel_id, root_id FROM posts WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(root)
            .fetch_optional(&state.db)
            .await?;
            match parent {
                Some((channel, parent_root)) if channel == channel_id => {
                    Some(parent_root.unwrap_or(root.clone()))
                }
                _ => {
                    return Err(ApiError::invalid(
                        "rootId",
                        "rootId must be a post in this channel",
                    ))
                }
            }
        }
    };
    let id = new_id();
    let mentions = parse_mentions(&request.message);
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "INSERT INTO posts (id, channel_id, user_id, root_id, message) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&channel_id)
    .bind(&caller.user_id)
    .bind(&root_id)
    .bind(&request.message)
    .execute(&mut *tx)
    .await?;
    // Mentions count only for members of the channel, never the author.
    let usernames: Vec<String> = mentions.usernames.into_iter().collect();
    sqlx::query(
        "INSERT INTO mentions (post_id, user_id)
         SELECT $1, m.user_id FROM channel_members m JOIN users u ON u.id = m.user_id
         WHERE m.channel_id = $2 AND m.user_id <> $3
           AND ($4 OR lower(u.username) = ANY($5))
         ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(&channel_id)
    .bind(&caller.user_id)
    .bind(mentions.channel)
    .bind(&usernames)
    .execute(&mut *tx)
    .await?;
    // Posting marks the channel read up to one's own post.
    sqlx::query(
        "UPDATE channel_members SET last_read_seq = (SELECT seq FROM posts WHERE id = $3)
         WHERE channel_id = $1 AND user_id = $2",
    )
    .bind(&channel_id)
    .bind(&caller.user_id)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    super::files::attach(&mut tx, &caller, &channel_id, &id, &request.file_ids).await?;
    let post = announce(&mut tx, "posted", &id).await?;
    let files = if request.file_ids.is_empty() {
        Vec::new()
    } else {
        federation::files::references(&mut tx, &id).await?
    };
    let op = Op::PostCreated(proto::PostCreated {
        post_id: id.clone(),
        root_id: root_id.clone().unwrap_or_default(),
        message: request.message.clone(),
        files,
    });
    federation::publish(
        &mut tx,
        &state.config(),
        &channel_id,
        &caller.user_id,
        post.created_at,
        op,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(post)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Return posts older than this `seq` (the `next` of the previous page).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PostPage {
    /// Newest first.
    pub posts: Vec<Post>,
    /// Cursor for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// A channel's posts, newest first, in pages of `limit` (default 50, at most 200).
#[utoipa::path(get, path = "/api/v1/channels/{id}/posts", params(("id" = String, Path), Page), responses((status = 200, body = PostPage), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<PostPage>> {
    see(&state, &caller, &channel_id).await?;
    let limit = page.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is between 1 and 200"));
    }
    let mut posts: Vec<Post> = sqlx::query_as(concat!(post_select!(), " WHERE p.channel_id = $1 AND p.seq < $2 AND p.deleted_at IS NULL ORDER BY p.seq DESC LIMIT $3"))
    .bind(&channel_id)
    .bind(page.before.unwrap_or(i64::MAX))
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let next = if posts.len() as i64 > limit {
        posts.truncate(limit as usize);
        posts.last().map(|p| p.seq)
    } else {
        None
    };
    Ok(Json(PostPage { posts, next }))
}

/// A thread: its first post and every reply, oldest first.
#[utoipa::path(get, path = "/api/v1/posts/{id}/thread", params(("id" = String, Path)), responses((status = 200, body = Vec<Post>), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn thread(
    State(state): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<Json<Vec<Post>>> {
    let (post, _) = visible(&state, &caller, &post_id).await?;
    let root = post.root_id.unwrap_or(post.id);
    let posts = sqlx::query_as(concat!(
        post_select!(),
        " WHERE (p.id = $1 OR p.root_id = $1) AND p.deleted_at IS NULL ORDER BY p.seq"
    ))
    .bind(&root)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(posts))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditPost {
    pub message: String,
}

/// The author edits a post; the earlier text is kept in its history.
#[utoipa::path(patch, path = "/api/v1/posts/{id}", params(("id" = String, Path)), request_body = EditPost, responses((status = 200, body = Post), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
    Body(request): Body<EditPost>,
) -> ApiResult<Json<Post>> {
    check_message(&request.message)?;
    let (post, seen) = visible(&state, &caller, &post_id).await?;
    if post.deleted_at.is_some() {
        return Err(ApiError::not_found("post"));
    }
    if post.user_id != caller.user_id || !seen.access.post {
        return Err(ApiError::forbidden(
            "only the author edits a post, in a channel they can post in",
        ));
    }
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "INSERT INTO post_edits (post_id, message, editor_id) SELECT id, message, $2 FROM posts WHERE id = $1",
    )
    .bind(&post_id)
    .bind(&caller.user_id)
    .execute(&mut *tx)
    .await?;
    // Later than any edit applied so far, even one stamped by a partner's
    // fast clock: the last writer wins by (time, origin) on every side.
    sqlx::query(
        "UPDATE posts SET message = $2, edit_origin = NULL,
             edited_at = GREATEST(now(), COALESCE(edited_at, created_at) + interval '1 microsecond')
         WHERE id = $1",
    )
    .bind(&post_id)
    .bind(&request.message)
    .execute(&mut *tx)
    .await?;
    let post = announce(&mut tx, "edited", &post_id).await?;
    let op = Op::PostEdited(proto::PostEdited {
        post_id: post_id.clone(),
        message: request.message.clone(),
    });
    let at = post.edited_at.unwrap_or_else(Utc::now);
    federation::publish(
        &mut tx,
        &state.config(),
        &post.channel_id,
        &caller.user_id,
        at,
        op,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(post))
}

#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Edit {
    pub message: String,
    pub replaced_at: DateTime<Utc>,
    pub editor_id: String,
}

/// Earlier texts of a post, oldest first.
#[utoipa::path(get, path = "/api/v1/posts/{id}/history", params(("id" = String, Path)), responses((status = 200, body = Vec<Edit>), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<Json<Vec<Edit>>> {
    let (post, _) = visible(&state, &caller, &post_id).await?;
    if post.deleted_at.is_some() {
        return Err(ApiError::not_found("post"));
    }
    let edits = sqlx::query_as("SELECT message, replaced_at, editor_id FROM post_edits WHERE post_id = $1 ORDER BY replaced_at")
        .bind(&post_id)
        .fetch_all(&state.db)
        .await?;
    Ok(Json(edits))
}

/// The author, a channel admin or a system admin deletes a post.
#[utoipa::path(delete, path = "/api/v1/posts/{id}", params(("id" = String, Path)), responses((status = 204, description = "deleted"), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<StatusCode> {
    let (post, seen) = visible(&state, &caller, &post_id).await?;
    if post.deleted_at.is_some() {
        return Err(ApiError::not_found("post"));
    }
    if post.user_id != caller.user_id && !seen.access.manage {
        return Err(ApiError::forbidden(
            "only the author or a channel admin deletes a post",
        ));
    }
    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE posts SET deleted_at = now() WHERE id = $1")
        .bind(&post_id)
        .execute(&mut *tx)
        .await?;
    let deleted = announce(&mut tx, "deleted", &post_id).await?;
    // Only the author's side speaks for a post: a moderator's delete of a
    // partner's post holds here and is not sent.
    if post.user_id == caller.user_id {
        let op = Op::PostDeleted(proto::PostDeleted {
            post_id: post_id.clone(),
        });
        let at = deleted.deleted_at.unwrap_or_else(Utc::now);
        federation::publish(
            &mut tx,
            &state.config(),
            &post.channel_id,
            &caller.user_id,
            at,
            op,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn check_emoji(emoji: &str) -> ApiResult<()> {
    let ok = (1..=64).contains(&emoji.len())
        && emoji
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "emoji",
            "an emoji is its short name, such as thumbsup or +1",
        ))
    }
}

async fn postable(state: &AppState, caller: &Caller, post_id: &str) -> ApiResult<Post> {
    let (post, seen) = visible(state, caller, post_id).await?;
    if post.deleted_at.is_some() {
        return Err(ApiError::not_found("post"));
    }
    if !seen.access.post {
        return Err(ApiError::forbidden("join the channel first"));
    }
    Ok(post)
}

#[utoipa::path(put, path = "/api/v1/posts/{id}/reactions/{emoji}", params(("id" = String, Path), ("emoji" = String, Path)), responses((status = 200, body = Post), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn react(
    State(state): State<AppState>,
    caller: Caller,
    Path((post_id, emoji)): Path<(String, String)>,
) -> ApiResult<Json<Post>> {
    set_reaction(&state, &caller, &post_id, &emoji, true).await
}

#[utoipa::path(delete, path = "/api/v1/posts/{id}/reactions/{emoji}", params(("id" = String, Path), ("emoji" = String, Path)), responses((status = 200, body = Post), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn unreact(
    State(state): State<AppState>,
    caller: Caller,
    Path((post_id, emoji)): Path<(String, String)>,
) -> ApiResult<Json<Post>> {
    set_reaction(&state, &caller, &post_id, &emoji, false).await
}

/// Adds or removes one reaction; only a real change is announced.
async fn set_reaction(
    state: &AppState,
    caller: &Caller,
    post_id: &str,
    emoji: &str,
    add: bool,
) -> ApiResult<Json<Post>> {
    check_emoji(emoji)?;
    postable(state, caller, post_id).await?;
    let mut tx = state.db.begin().await?;
    let sql = if add {
        "INSERT INTO reactions (post_id, user_id, emoji) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM reactions WHERE post_id = $1 AND user_id = $2 AND emoji = $3"
    };
    let changed = sqlx::query(sql)
        .bind(post_id)
        .bind(&caller.user_id)
        .bind(emoji)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    let post = if changed {
        let post = announce(
            &mut tx,
            if add {
                "reaction_added"
            } else {
                "reaction_removed"
            },
            post_id,
        )
        .await?;
        let reaction = proto::Reaction {
            post_id: post_id.to_string(),
            emoji: emoji.to_string(),
        };
        let op = if add {
            Op::ReactionAdded(reaction)
        } else {
            Op::ReactionRemoved(reaction)
        };
        federation::publish(
            &mut tx,
            &state.config(),
            &post.channel_id,
            &caller.user_id,
            Utc::now(),
            op,
        )
        .await?;
        post
    } else {
        load(&mut *tx, post_id)
            .await?
            .ok_or_else(|| ApiError::not_found("post"))?
    };
    tx.commit().await?;
    Ok(Json(post))
}

async fn set_pinned(
    state: &AppState,
    caller: &Caller,
    post_id: &str,
    pinned: bool,
) -> ApiResult<Json<Post>> {
    postable(state, caller, post_id).await?;
    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE posts SET pinned = $2 WHERE id = $1")
        .bind(post_id)
        .bind(pinned)
        .execute(&mut *tx)
        .await?;
    let post = announce(&mut tx, "edited", post_id).await?;
    tx.commit().await?;
    Ok(Json(post))
}

#[utoipa::path(post, path = "/api/v1/posts/{id}/pin", params(("id" = String, Path)), responses((status = 200, body = Post), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn pin(
    State(state): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<Json<Post>> {
    set_pinned(&state, &caller, &post_id, true).await
}

#[utoipa::path(delete, path = "/api/v1/posts/{id}/pin", params(("id" = String, Path)), responses((status = 200, body = Post), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn unpin(
    State(state): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<Json<Post>> {
    set_pinned(&state, &caller, &post_id, false).await
}

#[utoipa::path(get, path = "/api/v1/channels/{id}/pinned", params(("id" = String, Path)), responses((status = 200, body = Vec<Post>), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn pinned(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
) -> ApiResult<Json<Vec<Post>>> {
    see(&state, &caller, &channel_id).await?;
    let posts = sqlx::query_as(concat!(
        post_select!(),
        " WHERE p.channel_id = $1 AND p.pinned AND p.deleted_at IS NULL ORDER BY p.seq DESC"
    ))
    .bind(&channel_id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(posts))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// Read up to this `seq`; absent: everything.
    pub seq: Option<i64>,
}

/// Moves the caller's read marker forward (never back).
#[utoipa::path(post, path = "/api/v1/channels/{id}/read", params(("id" = String, Path)), request_body = MarkRead, responses((status = 204, description = "read marker moved"), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
    Body(body): Body<MarkRead>,
) -> ApiResult<StatusCode> {
    let seen = see(&state, &caller, &channel_id).await?;
    if !seen.channel.member {
        return Err(ApiError::forbidden("only members have read markers"));
    }
    let seq = body.seq;
    sqlx::query(
        "UPDATE channel_members SET last_read_seq = GREATEST(last_read_seq,
             LEAST(COALESCE($3, 9223372036854775807), COALESCE((SELECT max(seq) FROM posts WHERE channel_id = $1), 0)))
         WHERE channel_id = $1 AND user_id = $2",
    )
    .bind(&channel_id)
    .bind(&caller.user_id)
    .bind(seq)
    .execute(&state.db)
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(m: &Mentions) -> Vec<&str> {
        m.usernames.iter().map(String::as_str).collect()
    }

    #[test]
    fn mentions_are_words_starting_with_at() {
        let m = parse_mentions("@alice and @Bob.Smith, see @channel. mail j@example.org");
        assert_eq!(names(&m), ["alice", "bob.smith"]);
        assert!(m.channel);
        let m = parse_mentions("ping @carol.");
        assert_eq!(names(&m), ["carol"]);
        assert!(!m.channel);
        assert_eq!(parse_mentions("no one @ all"), Mentions::default());
        assert!(parse_mentions("@here").channel);
    }

    #[test]
    fn messages_are_bounded() {
        assert!(check_message("hello").is_ok());
        assert_eq!(
            check_message("   ").unwrap_err().field.as_deref(),
            Some("message")
        );
        assert!(check_message(&"x".repeat(MAX_MESSAGE_CHARS + 1)).is_err());
    }
}
