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

/// Translates queued posts, a bounded number at once, until shutdown;
/// what they become is stored by one writer, in batches ([`store`]).
pub async fn run(state: AppState) {
    let Some(translator) = state.translator.clone() else {
        return;
    };
    let (finished, to_store) = tokio::sync::mpsc::channel::<Finished>(256);
    tokio::spawn(store(state.clone(), to_store));
    let mut shutdown = state.shutdown.clone();
    loop {
        loop {
            let free = translator.slots.available_permits() as i64;
            if free == 0 {
                break;
            }
            let claimed = db::translations::claim(
                &state.db,
                free,
                300.0,
                &translator.config.default_language,
            )
            .await;
            let jobs = match claimed {
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
                let (state, translator, finished) =
                    (state.clone(), translator.clone(), finished.clone());
                tokio::spawn(async move {
                    let post = job.post_id.clone();
                    match translate(&state, &translator, job).await {
                        Ok(Some(done)) => {
                            // Stored with others; the writer ends only at shutdown.
                            let _ = finished.send(done).await;
                        }
                        Ok(None) => {}
                        Err(error) => {
                            tracing::warn!(%error, %post, "a translation was not stored")
                        }
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

/// A job done (translated, or given up with its problem), to be stored.
struct Finished {
    job: db::translations::Job,
    source: String,
    provider: &'static str,
    text: Option<String>,
    problem: Option<String>,
}

/// Translates one claimed job; `None` when there is nothing to store (the
/// post was deleted, is already in the reader's language, or the provider
/// failed and the job went back to the queue).
async fn translate(
    state: &AppState,
    translator: &Translator,
    job: db::translations::Job,
) -> Result<Option<Finished>, db::Error> {
    if job.deleted {
        db::translations::forget(&state.db, &job.post_id).await?;
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let words = pieces(&job.message)
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Words(words) if has_words(words) => Some(words),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ");
    let source = match translator.provider.detect(&words).await {
        Some(detected) => detected,
        None => job.source.clone(),
    };
    if Provider::primary(&source) == Provider::primary(&job.language) {
        // Already in the reader's language, whatever its author reads.
        db::translations::skip(&state.db, &job.post_id, &job.language).await?;
        return Ok(None);
    }
    let result = translator
        .message(&job.message, &source, &job.language)
        .await;
    let provider = translator.provider.name();
    state
        .metrics
        .translation(provider, &result, started.elapsed());
    let (text, problem) = match result {
        Ok(text) => (Some(text), None),
        Err(TranslateError::Unavailable(why)) if job.attempts < MAX_ATTEMPTS => {
            tracing::info!(%why, post = %job.post_id, "the translation provider failed; asking again later");
            db::translations::release(&state.db, &job.post_id, &job.language).await?;
            return Ok(None);
        }
        Err(error) => (None, Some(error.to_string())),
    };
    Ok(Some(Finished {
        job,
        source,
        provider,
        text,
        problem,
    }))
}

/// Stores finished translations and announces them, up to 64 in one
/// transaction: translating must cost posting as little as it can, and a
/// commit per translation would be most of its cost to the database. A
/// batch that cannot be stored leaves its jobs claimed; they are taken
/// again once stale.
async fn store(state: AppState, mut finished: tokio::sync::mpsc::Receiver<Finished>) {
    let mut batch = Vec::with_capacity(64);
    while finished.recv_many(&mut batch, 64).await > 0 {
        if let Err(error) = write(&state, &batch).await {
            tracing::warn!(%error, count = batch.len(), "translations not stored; they will be made again");
        }
        batch.clear();
    }
}

async fn write(state: &AppState, batch: &[Finished]) -> Result<(), db::Error> {
    let done: Vec<db::translations::Done> = batch
        .iter()
        .map(|f| db::translations::Done {
            post_id: &f.job.post_id,
            language: &f.job.language,
            source: &f.source,
            provider: f.provider,
            text: f.text.as_deref(),
            problem: f.problem.as_deref(),
        })
        .collect();
    let changes: Vec<Change> = batch
        .iter()
        .map(|f| {
            Change::Translated(Translation {
                post_id: f.job.post_id.clone(),
                channel_id: f.job.channel_id.clone(),
                language: f.job.language.clone(),
                source: f.source.clone(),
                provider: f.provider.into(),
                text: f.text.clone(),
                problem: f.problem.clone(),
            })
        })
        .collect();
    let mut tx = state.db.begin().await?;
    db::translations::finish(&mut *tx, &done).await?;
    events::record_many(&mut tx, &changes).await?;
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
