//! Writes of `posts` and what hangs off a post: its earlier texts
//! (`post_edits`), `reactions` and `mentions`.
//!
//! Only [`crate::server::posts`] calls the writes: it applies the same
//! rules, events and outbox entries to every source of a post. The reads
//! below serve the API.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Result;

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
pub(crate) use post_select;

/// A post as it is now, deleted or not.
pub async fn load<'e>(db: impl sqlx::PgExecutor<'e>, post_id: &str) -> Result<Option<Post>> {
    // Not `query_as!`: the columns are `post_select!()`, one definition for
    // every read of posts, joined with `concat!`, which `query!` does not take.
    Ok(sqlx::query_as(concat!(post_select!(), " WHERE p.id = $1"))
        .bind(post_id)
        .fetch_optional(db)
        .await?)
}

/// Up to `limit` live posts of `channel_id` older than `before` (a `seq`),
/// newest first.
pub async fn page(
    db: &sqlx::PgPool,
    channel_id: &str,
    before: i64,
    limit: i64,
) -> Result<Vec<Post>> {
    // Not `query_as!`: the columns are `post_select!()`, one definition for
    // every read of posts, joined with `concat!`, which `query!` does not take.
    Ok(sqlx::query_as(concat!(
        post_select!(),
        " WHERE p.channel_id = $1 AND p.seq < $2 AND p.deleted_at IS NULL ORDER BY p.seq DESC LIMIT $3"
    ))
    .bind(channel_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// The live posts of the thread `root_id` starts, oldest first.
pub async fn thread(db: &sqlx::PgPool, root_id: &str) -> Result<Vec<Post>> {
    // Not `query_as!`: the columns are `post_select!()`, one definition for
    // every read of posts, joined with `concat!`, which `query!` does not take.
    Ok(sqlx::query_as(concat!(
        post_select!(),
        " WHERE (p.id = $1 OR p.root_id = $1) AND p.deleted_at IS NULL ORDER BY p.seq"
    ))
    .bind(root_id)
    .fetch_all(db)
    .await?)
}

/// The live pinned posts of `channel_id`, newest first.
pub async fn pinned(db: &sqlx::PgPool, channel_id: &str) -> Result<Vec<Post>> {
    // Not `query_as!`: the columns are `post_select!()`, one definition for
    // every read of posts, joined with `concat!`, which `query!` does not take.
    Ok(sqlx::query_as(concat!(
        post_select!(),
        " WHERE p.channel_id = $1 AND p.pinned AND p.deleted_at IS NULL ORDER BY p.seq DESC"
    ))
    .bind(channel_id)
    .fetch_all(db)
    .await?)
}

/// An earlier text of a post.
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Edit {
    pub message: String,
    pub replaced_at: DateTime<Utc>,
    pub editor_id: String,
}

/// The earlier texts of `post_id`, oldest first.
pub async fn edits(db: &sqlx::PgPool, post_id: &str) -> Result<Vec<Edit>> {
    Ok(sqlx::query_as!(
        Edit,
        "SELECT message, replaced_at, editor_id FROM post_edits WHERE post_id = $1 ORDER BY replaced_at",
        post_id
    )
    .fetch_all(db)
    .await?)
}

/// A post row to insert.
pub struct NewPost<'a> {
    pub id: &'a str,
    pub channel_id: &'a str,
    pub user_id: &'a str,
    /// The thread's first post, for a reply.
    pub root_id: Option<&'a str>,
    pub message: &'a str,
    /// When it was written, for a post written elsewhere; now otherwise.
    pub created_at: Option<DateTime<Utc>>,
    /// The partner workspace it was written at; `None` for a local post.
    pub origin: Option<&'a str>,
}

/// Inserts posts, in this order, in one statement; each as written, or
/// `None` where its id is taken (by an earlier post, or an earlier one of
/// `posts`).
pub async fn insert<'e>(
    db: impl sqlx::PgExecutor<'e>,
    posts: &[NewPost<'_>],
) -> Result<Vec<Option<Post>>> {
    let ids: Vec<&str> = posts.iter().map(|p| p.id).collect();
    let channels: Vec<&str> = posts.iter().map(|p| p.channel_id).collect();
    let users: Vec<&str> = posts.iter().map(|p| p.user_id).collect();
    let roots: Vec<Option<&str>> = posts.iter().map(|p| p.root_id).collect();
    let messages: Vec<&str> = posts.iter().map(|p| p.message).collect();
    let times: Vec<Option<DateTime<Utc>>> = posts.iter().map(|p| p.created_at).collect();
    let origins: Vec<Option<&str>> = posts.iter().map(|p| p.origin).collect();
    // Inserted in the order given, so that `seq` follows it.
    let rows = sqlx::query!(
        r#"INSERT INTO posts (id, channel_id, user_id, root_id, message, created_at, origin)
           SELECT id, channel_id, user_id, root_id, message, COALESCE(created_at, now()), origin
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::timestamptz[], $7::text[])
                WITH ORDINALITY AS p(id, channel_id, user_id, root_id, message, created_at, origin, n)
           ORDER BY n
           ON CONFLICT (id) DO NOTHING
           RETURNING id, seq, created_at"#,
        &ids as &[&str],
        &channels as &[&str],
        &users as &[&str],
        &roots as &[Option<&str>],
        &messages as &[&str],
        &times as &[Option<DateTime<Utc>>],
        &origins as &[Option<&str>]
    )
    .fetch_all(db)
    .await?;
    let mut written: std::collections::HashMap<String, (i64, DateTime<Utc>)> = rows
        .into_iter()
        .map(|row| (row.id, (row.seq, row.created_at)))
        .collect();
    // A new post has no reactions, files or history yet: it is what was
    // inserted, without reading it back. The first of two with one id is
    // the one written.
    Ok(posts
        .iter()
        .map(|post| {
            let (seq, created_at) = written.remove(post.id)?;
            Some(Post {
                id: post.id.to_string(),
                seq,
                channel_id: post.channel_id.to_string(),
                user_id: post.user_id.to_string(),
                root_id: post.root_id.map(String::from),
                message: post.message.to_string(),
                pinned: false,
                created_at,
                edited_at: None,
                deleted_at: None,
                reactions: sqlx::types::Json(Vec::new()),
                files: sqlx::types::Json(Vec::new()),
            })
        })
        .collect())
}

/// The thread each reply joins: for each (post replied to, channel, whether
/// a deleted post may be replied to), the post's thread root, if that post
/// is in that channel.
pub async fn thread_roots<'e>(
    db: impl sqlx::PgExecutor<'e>,
    replies: &[(&str, &str, bool)],
) -> Result<std::collections::HashMap<(String, String), String>> {
    if replies.is_empty() {
        return Ok(Default::default());
    }
    let parents: Vec<&str> = replies.iter().map(|r| r.0).collect();
    let channels: Vec<&str> = replies.iter().map(|r| r.1).collect();
    let deleted_too: Vec<bool> = replies.iter().map(|r| r.2).collect();
    let rows = sqlx::query!(
        r#"SELECT p.id, p.channel_id, COALESCE(p.root_id, p.id) AS "root!"
           FROM unnest($1::text[], $2::text[], $3::bool[]) AS r(parent, channel_id, deleted_too)
           JOIN posts p ON p.id = r.parent AND p.channel_id = r.channel_id
                       AND (p.deleted_at IS NULL OR r.deleted_too)"#,
        &parents as &[&str],
        &channels as &[&str],
        &deleted_too
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ((row.id, row.channel_id), row.root))
        .collect())
}

/// Records whom `post_id` mentions: the channel's members named in
/// `usernames`, or all of them for `everyone` — never its author.
pub async fn insert_mentions<'e>(
    db: impl sqlx::PgExecutor<'e>,
    post_id: &str,
    channel_id: &str,
    author_id: &str,
    everyone: bool,
    usernames: &[String],
) -> Result<()> {
    if !everyone && usernames.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO mentions (post_id, user_id)
         SELECT $1, m.user_id FROM channel_members m JOIN users u ON u.id = m.user_id
         WHERE m.channel_id = $2 AND m.user_id <> $3
           AND ($4 OR lower(u.username) = ANY($5))
         ON CONFLICT DO NOTHING",
        post_id,
        channel_id,
        author_id,
        everyone,
        usernames
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Replaces a live post's text now, keeping the earlier one; the edit is
/// stamped later than any applied so far, even one stamped by a partner's
/// fast clock, so the last writer wins by (time, origin) on every side.
/// `false` if the post is deleted.
pub async fn edit_now(
    tx: &mut sqlx::PgConnection,
    post_id: &str,
    message: &str,
    editor_id: &str,
) -> Result<bool> {
    let kept = sqlx::query!(
        "INSERT INTO post_edits (post_id, message, editor_id)
         SELECT id, message, $2 FROM posts WHERE id = $1 AND deleted_at IS NULL",
        post_id,
        editor_id
    )
    .execute(&mut *tx)
    .await?;
    if kept.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE posts SET message = $2, edit_origin = NULL,
             edited_at = GREATEST(now(), COALESCE(edited_at, created_at) + interval '1 microsecond')
         WHERE id = $1",
        post_id,
        message
    )
    .execute(&mut *tx)
    .await?;
    Ok(true)
}

/// Applies an edit made at `origin` at `at`, if it is later by (time,
/// origin) than the post's current text (`here` names this workspace, for
/// posts never edited elsewhere); a deleted post stays deleted. Whether it
/// changed the post.
pub async fn edit_at<'e>(
    db: impl sqlx::PgExecutor<'e>,
    post_id: &str,
    message: &str,
    editor_id: &str,
    at: DateTime<Utc>,
    origin: &str,
    here: &str,
) -> Result<bool> {
    let changed = sqlx::query!(
        "WITH previous AS (
             INSERT INTO post_edits (post_id, message, editor_id, replaced_at)
             SELECT id, message, $3, $4 FROM posts
             WHERE id = $1 AND deleted_at IS NULL
               AND (COALESCE(edited_at, created_at), COALESCE(edit_origin, origin, $6)) < ($4, $5)
             RETURNING post_id)
         UPDATE posts SET message = $2, edited_at = $4, edit_origin = $5
         WHERE id IN (SELECT post_id FROM previous)",
        post_id,
        message,
        editor_id,
        at,
        origin,
        here
    )
    .execute(db)
    .await?;
    Ok(changed.rows_affected() == 1)
}

/// Marks a live post deleted at `at` (now when `None`); whether it was live.
pub async fn delete<'e>(
    db: impl sqlx::PgExecutor<'e>,
    post_id: &str,
    at: Option<DateTime<Utc>>,
) -> Result<bool> {
    let changed = sqlx::query!(
        "UPDATE posts SET deleted_at = COALESCE($2, now()) WHERE id = $1 AND deleted_at IS NULL",
        post_id,
        at
    )
    .execute(db)
    .await?;
    Ok(changed.rows_affected() == 1)
}

pub async fn set_pinned<'e>(
    db: impl sqlx::PgExecutor<'e>,
    post_id: &str,
    pinned: bool,
) -> Result<()> {
    sqlx::query!(
        "UPDATE posts SET pinned = $2 WHERE id = $1",
        post_id,
        pinned
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Adds (`add`) or removes one user's reaction; whether anything changed.
pub async fn set_reaction<'e>(
    db: impl sqlx::PgExecutor<'e>,
    post_id: &str,
    user_id: &str,
    emoji: &str,
    add: bool,
) -> Result<bool> {
    let changed = if add {
        sqlx::query!(
            "INSERT INTO reactions (post_id, user_id, emoji) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            post_id,
            user_id,
            emoji
        )
        .execute(db)
        .await?
    } else {
        sqlx::query!(
            "DELETE FROM reactions WHERE post_id = $1 AND user_id = $2 AND emoji = $3",
            post_id,
            user_id,
            emoji
        )
        .execute(db)
        .await?
    };
    Ok(changed.rows_affected() == 1)
}
