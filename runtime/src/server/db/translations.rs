//! Writes of `translation_jobs` (posts to translate, queued with the write
//! that made or changed them) and `post_translations` (the results).

use super::Result;

/// Queues `posts` for translation into the languages of the members of
/// their channels who want it: channels with translation on, members who
/// have not opted out and read another language than the post's author
/// (`default_language` for whoever chose none). A job already queued is
/// queued afresh (an edited post: [`forget`] its old translations first).
///
/// The posts are looked up first, by id (a materialised CTE): as a
/// prepared statement PostgreSQL soon plans this generically, and the plan
/// it chose when the posts came from `UNNEST` in a join read every post of
/// the channel (44 ms at 68,000 posts, and growing) on every write.
pub async fn queue<'e>(
    db: impl sqlx::PgExecutor<'e>,
    posts: &[String],
    default_language: &str,
) -> Result<()> {
    if posts.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "WITH queued AS MATERIALIZED (
             SELECT p.id, p.channel_id, COALESCE(a.language, $2) AS source
             FROM posts p JOIN users a ON a.id = p.user_id
             WHERE p.id = ANY($1) AND p.deleted_at IS NULL),
         wanted AS (
             SELECT DISTINCT q.id AS post_id, COALESCE(r.language, $2) AS language
             FROM queued q
             JOIN channels c ON c.id = q.channel_id AND c.translation
             JOIN channel_members m ON m.channel_id = q.channel_id AND m.translate
             JOIN users r ON r.id = m.user_id AND r.origin IS NULL AND r.role <> 'bot'
             WHERE COALESCE(r.language, $2) <> q.source)
         INSERT INTO translation_jobs (post_id, language)
         SELECT post_id, language FROM wanted
         ON CONFLICT (post_id, language) DO UPDATE SET queued_at = now(), attempts = 0, claimed_at = NULL",
        posts,
        default_language
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A job claimed by this server, with the post to translate.
#[derive(Debug, Clone)]
pub struct Job {
    pub post_id: String,
    pub language: String,
    pub attempts: i32,
    pub channel_id: String,
    pub message: String,
    /// Its author's language (`default_language` if they chose none).
    pub source: String,
    /// Deleted since it was queued: nothing to translate.
    pub deleted: bool,
}

/// Claims up to `limit` jobs: queued ones whose time has come (a job given
/// back waits out its backoff), or ones a stopped server claimed
/// `stale_seconds` ago.
pub async fn claim(
    db: &sqlx::PgPool,
    limit: i64,
    stale_seconds: f64,
    default_language: &str,
) -> Result<Vec<Job>> {
    Ok(sqlx::query_as!(
        Job,
        r#"UPDATE translation_jobs j SET claimed_at = now(), attempts = j.attempts + 1
           FROM (SELECT post_id, language FROM translation_jobs
                 WHERE (claimed_at IS NULL AND queued_at <= now())
                    OR claimed_at < now() - make_interval(secs => $2)
                 ORDER BY queued_at LIMIT $1 FOR UPDATE SKIP LOCKED) c,
                posts p JOIN users u ON u.id = p.user_id
           WHERE j.post_id = c.post_id AND j.language = c.language AND p.id = j.post_id
           RETURNING j.post_id, j.language, j.attempts, p.channel_id, p.message,
                     COALESCE(u.language, $3) AS "source!", p.deleted_at IS NOT NULL AS "deleted!""#,
        limit,
        stale_seconds,
        default_language
    )
    .fetch_all(db)
    .await?)
}

/// A translation, or why there is none.
pub struct Done<'a> {
    pub post_id: &'a str,
    pub language: &'a str,
    pub source: &'a str,
    pub provider: &'a str,
    pub text: Option<&'a str>,
    pub problem: Option<&'a str>,
}

/// Stores what became of jobs and ends them, in one statement.
pub async fn finish<'e>(db: impl sqlx::PgExecutor<'e>, done: &[Done<'_>]) -> Result<()> {
    let column = |f: fn(&Done<'_>) -> Option<String>| done.iter().map(f).collect::<Vec<_>>();
    sqlx::query!(
        "WITH done AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                 AS d(post_id, language, source, provider, text, problem)),
         ended AS (DELETE FROM translation_jobs j USING done d
                   WHERE j.post_id = d.post_id AND j.language = d.language)
         INSERT INTO post_translations (post_id, language, source, provider, text, problem)
         SELECT d.post_id, d.language, d.source, d.provider, d.text, d.problem
         FROM done d JOIN posts p ON p.id = d.post_id AND p.deleted_at IS NULL
         ON CONFLICT (post_id, language) DO UPDATE SET source = EXCLUDED.source,
             provider = EXCLUDED.provider, text = EXCLUDED.text, problem = EXCLUDED.problem,
             created_at = now()",
        &column(|d| Some(d.post_id.to_string())) as &[Option<String>],
        &column(|d| Some(d.language.to_string())) as &[Option<String>],
        &column(|d| Some(d.source.to_string())) as &[Option<String>],
        &column(|d| Some(d.provider.to_string())) as &[Option<String>],
        &column(|d| d.text.map(String::from)) as &[Option<String>],
        &column(|d| d.problem.map(String::from)) as &[Option<String>]
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Ends a job with nothing to store: the post is already in the
/// language it was to be translated into.
pub async fn skip<'e>(db: impl sqlx::PgExecutor<'e>, post_id: &str, language: &str) -> Result<()> {
    sqlx::query!(
        "DELETE FROM translation_jobs WHERE post_id = $1 AND language = $2",
        post_id,
        language
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Gives a job back to the queue (the provider failed; try again later).
pub async fn release<'e>(
    db: impl sqlx::PgExecutor<'e>,
    post_id: &str,
    language: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE translation_jobs SET claimed_at = NULL, queued_at = now() + make_interval(secs => 5 * attempts)
         WHERE post_id = $1 AND language = $2",
        post_id,
        language
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets a deleted post's translations and jobs.
pub async fn forget<'e>(db: impl sqlx::PgExecutor<'e>, post_id: &str) -> Result<()> {
    sqlx::query!(
        "WITH jobs AS (DELETE FROM translation_jobs WHERE post_id = $1)
         DELETE FROM post_translations WHERE post_id = $1",
        post_id
    )
    .execute(db)
    .await?;
    Ok(())
}
