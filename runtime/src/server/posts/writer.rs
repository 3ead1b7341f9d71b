//! Group commit of local users' new posts: posts that arrive while others
//! are being written wait in one queue and are written together, in one
//! transaction, through [`super::create_many`] — the same write as any
//! other post, with one commit (and one `fsync`) for the whole group
//! instead of one per post.
//!
//! No task runs in the background: a request that queues a post starts a
//! writer if fewer than [`WRITERS`] are running, and a writer keeps taking
//! what is queued until the queue is empty. Each request is answered as
//! soon as its group commits.

use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Semaphore};

use super::{create, create_many, Attached, By, NewPost, Post, WriteError};
use crate::server::{db, state::AppState};

/// Groups written at the same time: while one commits, the next gathers
/// and is written.
pub const WRITERS: usize = 2;
/// Most posts in one group.
pub const MAX_GROUP: usize = 64;

/// A local user's new post, owned, so that it can wait in the queue.
pub struct Local {
    pub id: String,
    pub channel_id: String,
    pub author_id: String,
    pub reply_to: Option<String>,
    pub message: String,
    /// Uploads to attach.
    pub file_ids: Vec<String>,
}

impl Local {
    fn new_post(&self) -> NewPost<'_> {
        NewPost {
            id: &self.id,
            channel_id: &self.channel_id,
            author_id: &self.author_id,
            reply_to: self.reply_to.as_deref(),
            message: &self.message,
            files: Attached::Uploads(&self.file_ids),
            by: By::Local,
        }
    }
}

struct Queued {
    post: Local,
    done: oneshot::Sender<Result<Post, WriteError>>,
}

/// The queue of local posts waiting to be written.
pub struct Writer {
    queue: Mutex<Vec<Queued>>,
    writers: Arc<Semaphore>,
}

impl Default for Writer {
    fn default() -> Self {
        Writer {
            queue: Mutex::new(Vec::new()),
            writers: Arc::new(Semaphore::new(WRITERS)),
        }
    }
}

impl Writer {
    /// Writes `post` and commits it, alone or with others queued at the
    /// same time; the post as written once it is committed.
    pub async fn post(&self, state: &AppState, post: Local) -> Result<Post, WriteError> {
        if !post.file_ids.is_empty() {
            // Files that may not be attached refuse the whole write they
            // are in: such a post is written alone.
            return alone(state, &post).await;
        }
        let (done, written) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Queued { post, done });
        if let Ok(permit) = self.writers.clone().try_acquire_owned() {
            let state = state.clone();
            tokio::spawn(async move { state.posts.write_queued(&state, permit).await });
        }
        // Otherwise a running writer takes it: each looks at the queue
        // again after giving up its permit.
        written.await.unwrap_or_else(|_| {
            Err(WriteError::Db(db::Error::Query(sqlx::Error::Protocol(
                "the post writer stopped".into(),
            ))))
        })
    }

    fn take(&self) -> Vec<Queued> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let first = queue.len().min(MAX_GROUP);
        let rest = queue.split_off(first);
        std::mem::replace(&mut *queue, rest)
    }

    /// Writes groups until the queue is empty.
    async fn write_queued(&self, state: &AppState, mut permit: tokio::sync::OwnedSemaphorePermit) {
        loop {
            let group = self.take();
            if group.is_empty() {
                drop(permit);
                // A post queued while this writer held its permit found no
                // free one: look once more now that it is free.
                if self
                    .queue
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty()
                {
                    return;
                }
                match self.writers.clone().try_acquire_owned() {
                    Ok(again) => permit = again,
                    Err(_) => return,
                }
                continue;
            }
            write_group(state, group).await;
        }
    }
}

/// Writes `post` alone, in a transaction of its own.
async fn alone(state: &AppState, post: &Local) -> Result<Post, WriteError> {
    let mut tx = state.db.begin().await?;
    let written = create(&mut tx, &state.config(), post.new_post()).await?;
    db::commit(tx).await?;
    Ok(written)
}

async fn write_group(state: &AppState, group: Vec<Queued>) {
    let news: Vec<NewPost> = group.iter().map(|q| q.post.new_post()).collect();
    let written = async {
        let mut tx = state.db.begin().await?;
        let written = create_many(&mut tx, &state.config(), &news).await?;
        db::commit(tx).await?;
        Ok::<_, WriteError>(written)
    }
    .await;
    match written {
        Ok(written) => {
            state.metrics.post_groups.inc();
            state.metrics.posts_grouped.inc_by(group.len() as u64);
            for (queued, result) in group.into_iter().zip(written) {
                let _ = queued.done.send(result);
            }
        }
        // Nothing was written, or the outcome is unknown: the same for every post.
        Err(WriteError::Db(error @ (db::Error::Unavailable(_) | db::Error::Uncertain(_)))) => {
            let message = error.to_string();
            for queued in group {
                let again = match error {
                    db::Error::Uncertain(_) => db::Error::Uncertain,
                    _ => db::Error::Unavailable,
                }(sqlx::Error::Protocol(message.clone()));
                let _ = queued.done.send(Err(WriteError::Db(again)));
            }
        }
        // Anything else one post may have caused: each is written alone,
        // so that it fails alone.
        Err(_) => {
            for queued in group {
                let result = alone(state, &queued.post).await;
                let _ = queued.done.send(result);
            }
        }
    }
}
