//! Posts over HTTP: write, read a channel's history and threads, edit,
//! delete, react, pin, and move read markers. Each handler extracts,
//! authorises, calls [`crate::server::posts`] and answers.

use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};

use crate::server::{
    api::extract::{Body, Path, Query},
    auth::Caller,
    authz::gate::see,
    db::{self, new_id},
    error::{ApiError, ApiResult},
    federation,
    input::{self, Valid},
    posts::{self, check_message, By, Post},
    state::AppState,
};

/// A post the caller may read (its channel is readable), else 404.
async fn visible(
    state: &AppState,
    caller: &Caller,
    post_id: &str,
) -> ApiResult<(Post, crate::server::authz::gate::Seen)> {
    let post = db::posts::load(&state.db, post_id)
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
    /// Markdown; line breaks and tabs are kept, other control characters
    /// refused; not only white space or invisible characters.
    #[schema(format = "text", min_length = 1, max_length = 16383)]
    pub message: String,
    #[serde(default)]
    #[schema(pattern = "^[0-9A-HJKMNP-TV-Z]{26}$")]
    pub root_id: Option<String>,
    /// Files the caller uploaded to this channel, to attach.
    #[serde(default)]
    #[schema(max_items = 10, inline, value_type = Vec<input::Id>)]
    pub file_ids: Vec<String>,
}

impl Valid for CreatePost {
    fn valid(&self) -> ApiResult<()> {
        check_message(&self.message)?;
        if let Some(root) = &self.root_id {
            input::id(root).map_err(input::at("rootId"))?;
        }
        if self.file_ids.len() > posts::MAX_FILES {
            return Err(ApiError::invalid(
                "fileIds",
                format!("a post carries at most {} files", posts::MAX_FILES),
            ));
        }
        self.file_ids
            .iter()
            .try_for_each(|id| input::id(id).map_err(input::at("fileIds")))
    }
}

#[utoipa::path(post, path = "/api/v1/channels/{id}/posts", params(("id" = String, Path)), request_body = CreatePost, responses((status = 201, body = Post), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
    Body(request): Body<CreatePost>,
) -> ApiResult<(StatusCode, Json<Post>)> {
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
    let new = posts::writer::Local {
        id: new_id(),
        channel_id,
        author_id: caller.user_id,
        reply_to: request.root_id,
        message: request.message,
        file_ids: request.file_ids,
    };
    let post = state.posts.post(&state, new).await?;
    Ok((StatusCode::CREATED, Json(post)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Return posts older than this `seq` (the `next` of the previous page).
    #[param(minimum = 0)]
    pub before: Option<i64>,
    /// 50 unless given.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

impl Valid for Page {
    fn valid(&self) -> ApiResult<()> {
        if self.before.is_some_and(|before| before < 0) {
            return Err(ApiError::invalid("before", "before is a seq, 0 or more"));
        }
        input::limit(self.limit, 200)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PostPage {
    /// Newest first.
    pub posts: Vec<Post>,
    /// Cursor for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
    /// Translations of these posts into the language the caller reads,
    /// where the channel translates and the caller has not opted out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub translations: Vec<crate::server::translate::Translation>,
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
    let mut posts = db::posts::page(
        &state.db,
        &channel_id,
        page.before.unwrap_or(i64::MAX),
        limit + 1,
    )
    .await?;
    let next = if posts.len() as i64 > limit {
        posts.truncate(limit as usize);
        posts.last().map(|p| p.seq)
    } else {
        None
    };
    let ids: Vec<String> = posts.iter().map(|p| p.id.clone()).collect();
    let translations = crate::server::translate::for_reader(&state, &caller.user_id, &ids).await?;
    Ok(Json(PostPage {
        posts,
        next,
        translations,
    }))
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
    Ok(Json(db::posts::thread(&state.db, &root).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditPost {
    #[schema(format = "text", min_length = 1, max_length = 16383)]
    pub message: String,
}

impl Valid for EditPost {
    fn valid(&self) -> ApiResult<()> {
        Ok(check_message(&self.message)?)
    }
}

/// The author edits a post; the earlier text is kept in its history.
#[utoipa::path(patch, path = "/api/v1/posts/{id}", params(("id" = String, Path)), request_body = EditPost, responses((status = 200, body = Post), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
    Body(request): Body<EditPost>,
) -> ApiResult<Json<Post>> {
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
    let post = posts::edit(
        &mut tx,
        &state.config(),
        &post_id,
        &request.message,
        &caller.user_id,
        By::Local,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("post"))?;
    db::commit(tx).await?;
    Ok(Json(post))
}

/// Earlier texts of a post, oldest first.
#[utoipa::path(get, path = "/api/v1/posts/{id}/history", params(("id" = String, Path)), responses((status = 200, body = Vec<db::posts::Edit>), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<Json<Vec<db::posts::Edit>>> {
    let (post, _) = visible(&state, &caller, &post_id).await?;
    if post.deleted_at.is_some() {
        return Err(ApiError::not_found("post"));
    }
    Ok(Json(db::posts::edits(&state.db, &post_id).await?))
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
    posts::delete(
        &mut tx,
        &state.config(),
        &post.id,
        &caller.user_id,
        By::Local,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("post"))?;
    db::commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
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
    posts::check_emoji(emoji)?;
    postable(state, caller, post_id).await?;
    let mut tx = state.db.begin().await?;
    let changed = posts::react(
        &mut tx,
        &state.config(),
        post_id,
        &caller.user_id,
        emoji,
        add,
        By::Local,
    )
    .await?;
    let post = match changed {
        Some(post) => post,
        None => db::posts::load(&mut *tx, post_id)
            .await?
            .ok_or_else(|| ApiError::not_found("post"))?,
    };
    db::commit(tx).await?;
    Ok(Json(post))
}

async fn set_pinned(
    state: &AppState,
    caller: &Caller,
    post_id: &str,
    pinned: bool,
) -> ApiResult<Json<Post>> {
    let (post, seen) = visible(state, caller, post_id).await?;
    if post.deleted_at.is_some() {
        return Err(ApiError::not_found("post"));
    }
    let own = seen.access.post && post.user_id == caller.user_id;
    if !(seen.access.pin || own) {
        return Err(ApiError::forbidden(
            "only the post's author and the channel's admins pin or unpin it",
        ));
    }
    let mut tx = state.db.begin().await?;
    let post = posts::pin(&mut tx, post_id, pinned).await?;
    db::commit(tx).await?;
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
    Ok(Json(db::posts::pinned(&state.db, &channel_id).await?))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// Read up to this `seq`; absent: everything.
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "input::whole_number")]
    pub seq: Option<i64>,
}

impl Valid for MarkRead {
    fn valid(&self) -> ApiResult<()> {
        if self.seq.is_some_and(|seq| seq < 0) {
            return Err(ApiError::invalid("seq", "seq is 0 or more"));
        }
        Ok(())
    }
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
    db::members::mark_read(&state.db, &channel_id, &caller.user_id, body.seq).await?;
    Ok(StatusCode::NO_CONTENT)
}
