//! Translation of posts into their readers' languages (`translation` in
//! the RuntimeConfig).
//!
//! A post in a channel with translation on is queued, in the transaction
//! that writes it (or edits it), for each language its channel's members
//! read other than its author's — whatever wrote it: a person, a partner,
//! an agent. Posting never waits on a translation. A server claims jobs
//! ([`run`]), a bounded number at once, has the one declared provider
//! translate the words of the post (code, links, mentions, channel links
//! and emoji kept as written, [`text`]) from the language the provider
//! detects, where it can, or else the author's (a post already in the
//! reader's language is left as it is), stores one translation per post
//! and language for every reader and replica, and announces it as a
//! `translated` event. A pair the provider does not offer is stored as a
//! problem and said, never passed through as a translation; a provider
//! that fails is asked again later, with backoff. Edits translate again;
//! deletes forget the translations.

pub mod providers;
pub mod text;

use std::{sync::Arc, time::Duration};

use entente_crds::config::{RuntimeConfig, TranslationConfig};
use serde::Serialize;
use sqlx::{Postgres, Transaction};
use tokio::sync::Semaphore;

use self::{
    providers::{Provider, TranslateError},
    text::{has_words, pieces, trimmed, Piece},
};
use super::{
    db,
    events::{self, Change},
    state::AppState,
};

/// Tries of a job before its problem is stored.
const MAX_ATTEMPTS: i32 = 5;

static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Something may have been queued: the worker looks now.
pub fn wake() {
    WAKE.notify_one();
}

/// The workspace's translation: its provider and settings.
pub struct Translator {
    pub config: TranslationConfig,
    pub provider: Provider,
    slots: Arc<Semaphore>,
}

impl Translator {
    pub fn new(
        config: &TranslationConfig,
        ai: Option<Arc<super::ai::Ai>>,
    ) -> Result<Translator, String> {
        Ok(Translator {
            provider: Provider::new(config, ai)?,
            slots: Arc::new(Semaphore::new(config.concurrency.max(1) as usize)),
            config: config.clone(),
        })
    }

    /// `message` in `to`: its words translated piece by piece, everything
    /// else kept as written.
    pub async fn message(
        &self,
        message: &str,
        from: &str,
        to: &str,
    ) -> Result<String, TranslateError> {
        let mut out = String::with_capacity(message.len());
        for piece in pieces(message) {
            match piece {
                Piece::Kept(kept) => out.push_str(kept),
                Piece::Words(words) if !has_words(words) => out.push_str(words),
                Piece::Words(words) => {
                    let (before, core, after) = trimmed(words);
                    out.push_str(before);
                    out.push_str(&self.provider.translate(core, from, to).await?);
                    out.push_str(after);
                }
            }
        }
        Ok(out)
    }
}

/// A translation as clients receive it (the `translated` event, and
/// beside each post in a page).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Translation {
    pub post_id: String,
    pub channel_id: String,
    /// The language it is in.
    pub language: String,
    /// The language it was translated from.
    pub source: String,
    /// Who translated it: `apertium`, `libretranslate` or `language-model`.
    pub provider: String,
    /// Absent when it could not be translated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Why it could not, said plainly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Queues `post_ids` (just written or edited, in `tx`) for translation.
pub(crate) async fn queue(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    post_ids: Vec<String>,
) -> Result<(), db::Error> {
    let Some(translation) = &config.translation else {
        return Ok(());
    };
    db::translations::queue(&mut **tx, &post_ids, &translation.default_language).await
}

/// Queues an edited post (in `tx`) to be translated again: its
/// translations are of the old text.
pub(crate) async fn requeue(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    post_id: &str,
) -> Result<(), db::Error> {
    if config.translation.is_none() {
        return Ok(());
    }
    db::translations::forget(&mut **tx, post_id).await?;
    queue(tx, config, vec![post_id.to_string()]).await
}

/// Translates queued posts, a bounded number at once, until shutdown.
pub async fn run(state: AppState) {
    let Some(translator) = state.translator.clone() else {
        return;
    };
    let mut shutdown = state.shutdown.clone();
    loop {
        loop {
            let free = translator.slots.available_permits() as i64;
            if free == 0 {
                break;
            }
            let jobs = match db::translations::claim(&state.db, free, 300.0).await {
                Ok(jobs) => jobs,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the translation queue; trying again");
                    break;
                }
            };
            if jobs.is_empty() {
                break;
            }
            for job in jobs {
                let Ok(permit) = translator.slots.clone().acquire_owned().await else {
                    return;
                };
                let (state, translator) = (state.clone(), translator.clone());
                tokio::spawn(async move {
                    if let Err(error) = translate(&state, &translator, &job).await {
                        tracing::warn!(%error, post = %job.post_id, "a translation was not stored");
                    }
                    drop(permit);
                    wake();
                });
            }
        }
        tokio::select! {
            _ = WAKE.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn translate(
    state: &AppState,
    translator: &Translator,
    job: &db::translations::Job,
) -> Result<(), db::Error> {
    let row = sqlx::query!(
        "SELECT p.channel_id, p.message, COALESCE(u.language, $2) AS \"source!\"
         FROM posts p JOIN users u ON u.id = p.user_id
         WHERE p.id = $1 AND p.deleted_at IS NULL",
        job.post_id,
        translator.config.default_language
    )
    .fetch_optional(&state.db)
    .await?;
    let Some(row) = row else {
        // Deleted meanwhile: nothing to translate.
        return db::translations::forget(&state.db, &job.post_id).await;
    };
    let started = std::time::Instant::now();
    let words = pieces(&row.message)
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Words(words) if has_words(words) => Some(words),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ");
    let source = match translator.provider.detect(&words).await {
        Some(detected) => detected,
        None => row.source,
    };
    if Provider::primary(&source) == Provider::primary(&job.language) {
        // Already in the reader's language, whatever its author reads.
        return db::translations::skip(&state.db, &job.post_id, &job.language).await;
    }
    let result = translator
        .message(&row.message, &source, &job.language)
        .await;
    let provider = translator.provider.name();
    state
        .metrics
        .translation(provider, &result, started.elapsed());
    let (text, problem) = match result {
        Ok(text) => (Some(text), None),
        Err(TranslateError::Unavailable(why)) if job.attempts < MAX_ATTEMPTS => {
            tracing::info!(%why, post = %job.post_id, "the translation provider failed; asking again later");
            return db::translations::release(&state.db, &job.post_id, &job.language).await;
        }
        Err(error) => (None, Some(error.to_string())),
    };
    let mut tx = state.db.begin().await?;
    db::translations::finish(
        &mut *tx,
        db::translations::Done {
            post_id: &job.post_id,
            language: &job.language,
            source: &source,
            provider,
            text: text.as_deref(),
            problem: problem.as_deref(),
        },
    )
    .await?;
    events::record(
        &mut tx,
        &Change::Translated(Translation {
            post_id: job.post_id.clone(),
            channel_id: row.channel_id,
            language: job.language.clone(),
            source,
            provider: provider.into(),
            text,
            problem,
        }),
    )
    .await?;
    db::commit(tx).await
}

/// The translations of `post_ids` for `user_id`, in the language they read,
/// where they have translation on in the post's channel.
pub async fn for_reader(
    state: &AppState,
    user_id: &str,
    post_ids: &[String],
) -> Result<Vec<Translation>, db::Error> {
    let Some(translator) = &state.translator else {
        return Ok(Vec::new());
    };
    Ok(sqlx::query_as!(
        Translation,
        "SELECT t.post_id, p.channel_id, t.language, t.source, t.provider, t.text, t.problem
         FROM post_translations t
         JOIN posts p ON p.id = t.post_id
         JOIN users r ON r.id = $1
         JOIN channel_members m ON m.channel_id = p.channel_id AND m.user_id = $1 AND m.translate
         WHERE t.post_id = ANY($2) AND t.language = COALESCE(r.language, $3)",
        user_id,
        post_ids,
        translator.config.default_language
    )
    .fetch_all(&state.db)
    .await?)
}
