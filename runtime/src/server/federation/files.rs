//! Files over federation.
//!
//! A post in a shared channel carries references to its files (id, name,
//! type, size, SHA-256). The receiving side records them as `pending` and
//! its sender task for that partner pulls the bytes with `Fetch`, chunk by
//! chunk into PostgreSQL, so a transfer cut short resumes where its stored
//! chunks end — after a reconnect, a restart or on another replica. A whole
//! file is checked against its SHA-256, typed from its bytes, put in the
//! object store and announced; a file over the size limit for its partner
//! stays `refused`, with the reason, and its post arrives all the same.

use std::{io::Write as _, pin::Pin};

use entente_crds::config::{PartnerConfig, SharedChannelConfig};
use futures_util::{Stream, StreamExt as _};
use sha2::Digest as _;
use sqlx::{Postgres, Transaction};
use tonic::{codec::CompressionEncoding, transport::Channel, Code, Status};

use super::{
    error::{Error, Result},
    proto::{self, federation_client::FederationClient, FetchRequest, FileChunk},
};
use crate::server::{db, events::Change, files, posts, state::AppState};

/// Bytes per chunk, on the wire and in the parts table.
pub const CHUNK: usize = 256 * 1024;
/// The references to a local post's files, for its `PostCreated` event.
pub async fn references(
    tx: &mut Transaction<'_, Postgres>,
    post_id: &str,
) -> Result<Vec<proto::FileRef>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT id, name, content_type, size, sha256 FROM files WHERE post_id = $1 ORDER BY created_at, id",
        post_id
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|file| proto::FileRef {
            id: file.id,
            name: file.name,
            content_type: file.content_type,
            size: file.size as u64,
            sha256: file.sha256.unwrap_or_default(),
        })
        .collect())
}

/// Checks the file references of a partner's post before anything is written.
pub fn check(
    partner: &PartnerConfig,
    share: &SharedChannelConfig,
    refs: &[proto::FileRef],
) -> Result<(), String> {
    if refs.is_empty() {
        return Ok(());
    }
    if !share.upload_files {
        return Err(format!(
            "files are not allowed from {:?} in channel {:?}",
            partner.workspace_id, share.name
        ));
    }
    if refs.len() > posts::MAX_FILES {
        return Err(format!("a post carries at most {} files", posts::MAX_FILES));
    }
    for file in refs {
        if ulid::Ulid::from_string(&file.id).is_err() {
            return Err("a file id is not a ULID".into());
        }
        if files::check_name(&file.name).is_err() {
            return Err(format!("{:?} is not a valid file name", file.name));
        }
        if file.sha256.len() != 32 {
            return Err(format!("file {} carries no SHA-256", file.id));
        }
        if file.size > i64::MAX as u64 {
            return Err(format!("file {} has an impossible size", file.id));
        }
    }
    Ok(())
}

/// Whether one of the ids is already a file here (a hostile or confused partner).
pub async fn taken(
    tx: &mut Transaction<'_, Postgres>,
    refs: &[proto::FileRef],
) -> Result<bool, sqlx::Error> {
    if refs.is_empty() {
        return Ok(false);
    }
    let ids: Vec<&str> = refs.iter().map(|f| f.id.as_str()).collect();
    let taken = sqlx::query_scalar!(
        r#"SELECT count(*) AS "taken!" FROM files WHERE id = ANY($1)"#,
        &ids as &[&str]
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(taken > 0)
}

/// Records a partner's post's files as pending, or refused if over the size
/// limit for that partner (checked first with [`check`] and [`taken`]).
pub async fn receive(
    tx: &mut Transaction<'_, Postgres>,
    partner: &PartnerConfig,
    origin: &str,
    channel_id: &str,
    author_id: &str,
    post_id: &str,
    refs: &[proto::FileRef],
) -> Result<(), db::Error> {
    let limit = partner.sync.max_file_bytes;
    for file in refs {
        let refused = (file.size > limit).then(|| {
            format!(
                "it is {} bytes, over the {limit}-byte limit for files from {}",
                file.size, partner.organisation
            )
        });
        db::files::insert_partner_file(
            &mut **tx,
            db::files::NewPartnerFile {
                id: &file.id,
                channel_id,
                uploader_id: author_id,
                post_id,
                name: &file.name,
                // Until the bytes say otherwise; never a type a browser would run.
                content_type: &files::content_type(&[], Some(&file.content_type)),
                size: file.size as i64,
                object_key: &format!("files/{channel_id}/{}", file.id),
                sha256: &file.sha256,
                origin,
                source: &partner.workspace_id,
                refused,
            },
        )
        .await?;
    }
    Ok(())
}

pub type Chunks = Pin<Box<dyn Stream<Item = Result<FileChunk, Status>> + Send>>;

/// Serves `Fetch` to `partner`: the bytes of a file attached to a live post
/// in a channel shared with it, from the requested offset, paced by the
/// partner's bandwidth cap. Anything it may not see is `NOT_FOUND`, alike.
pub async fn serve(
    state: &AppState,
    partner_id: &str,
    request: FetchRequest,
) -> Result<Chunks, Status> {
    let config = state.config();
    let partner = super::partner(&config, partner_id)
        .ok_or_else(|| Status::permission_denied("not a partner of this workspace"))?;
    if partner.suspended {
        return Err(Status::unavailable(
            "federation with this partner is suspended here",
        ));
    }
    let not_found = || Status::not_found(format!("no file {} shared with you", request.file_id));
    let row = sqlx::query!(
        r#"SELECT f.size, f.object_key, f.state, c.name, p.deleted_at IS NOT NULL AS "deleted!"
         FROM files f JOIN posts p ON p.id = f.post_id JOIN channels c ON c.id = f.channel_id
         WHERE f.id = $1"#,
        request.file_id
    )
    .fetch_optional(&state.db)
    .await
    .map_err(|e| Status::unavailable(format!("database: {e}")))?
    .ok_or_else(not_found)?;
    let (size, key, file_state, channel, deleted) =
        (row.size, row.object_key, row.state, row.name, row.deleted);
    let shared = channel.is_some_and(|name| {
        super::shares(&config, &name).any(|(p, _)| p.workspace_id == partner_id)
    });
    if !shared || deleted {
        return Err(not_found());
    }
    if file_state != "ready" {
        return Err(Status::unavailable(
            "this workspace does not hold the file's bytes yet",
        ));
    }
    let size = size as u64;
    if size > partner.sync.max_file_bytes {
        return Err(Status::failed_precondition(format!(
            "the file is {size} bytes, over the {}-byte limit for files to you",
            partner.sync.max_file_bytes
        )));
    }
    if request.offset > size {
        return Err(Status::out_of_range(format!(
            "offset {} is past the file's {size} bytes",
            request.offset
        )));
    }
    if request.offset == size {
        return Ok(Box::pin(futures_util::stream::empty()));
    }
    let body = state
        .store
        .get_from(&key, request.offset)
        .await
        .map_err(|e| Status::unavailable(format!("object store: {e}")))?;
    let (state, partner_id) = (state.clone(), partner_id.to_string());
    let chunks = futures_util::stream::unfold(
        (body, Vec::<u8>::new(), false),
        move |(mut body, mut pending, mut done)| {
            let (state, partner_id) = (state.clone(), partner_id.clone());
            async move {
                // Gather a whole chunk (the last may be short), then pace and send it.
                while !done && pending.len() < CHUNK {
                    match body.next().await {
                        Some(Ok(bytes)) => pending.extend_from_slice(&bytes),
                        Some(Err(e)) => {
                            let status = Status::unavailable(format!("object store: {e}"));
                            return Some((Err(status), (body, Vec::new(), true)));
                        }
                        None => done = true,
                    }
                }
                if pending.is_empty() {
                    return None;
                }
                let rest = pending.split_off(pending.len().min(CHUNK));
                super::pace(&state, &partner_id, pending.len()).await;
                state
                    .metrics
                    .federation_file_bytes_sent
                    .inc_by(pending.len() as u64);
                Some((Ok(FileChunk { data: pending }), (body, rest, done)))
            }
        },
    );
    Ok(Box::pin(chunks))
}

/// One pending file of a partner's.
#[derive(sqlx::FromRow)]
struct Pending {
    id: String,
    size: i64,
    sha256: Option<Vec<u8>>,
    content_type: String,
    object_key: String,
    post_id: Option<String>,
}

/// Pulls the bytes of `partner`'s pending files, oldest first, for as long
/// as the session runs. A file that fails is retried after the others, with
/// a growing pause; it never ends the session (a dead link ends the push).
pub async fn fetch_pending(state: &AppState, partner: &PartnerConfig, channel: Channel) {
    let mut client = FederationClient::new(channel).max_decoding_message_size(2 * CHUNK + 1024);
    if partner.sync.compression {
        client = client
            .send_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Gzip);
    }
    let mut events = state.hub.subscribe();
    let mut failures = 0u32;
    loop {
        let pending = sqlx::query_as!(
            Pending,
            "SELECT id, size, sha256, content_type, object_key, post_id FROM files
             WHERE source = $1 AND state = 'pending' ORDER BY created_at, id LIMIT 16",
            partner.workspace_id
        )
        .fetch_all(&state.db)
        .await;
        let pending = pending.unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot list the partner's pending files");
            failures += 1;
            Vec::new()
        });
        let idle = pending.is_empty();
        let mut failed = false;
        for file in pending {
            if let Err(why) = fetch(state, partner, &mut client, file).await {
                tracing::info!(partner = %partner.workspace_id, "file transfer: {why}");
                failed = true;
            }
        }
        failures = if failed { failures + 1 } else { 0 };
        if failures > 0 {
            let pause = 2u64.saturating_pow(failures.min(5)).min(30);
            tokio::time::sleep(std::time::Duration::from_secs(pause)).await;
        } else if idle {
            tokio::select! {
                _ = events.recv() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            }
        }
    }
}

/// The bytes of the files `events` carry, for an offline bundle to
/// `partner`: files that are here, of live posts, within the partner's size
/// limit, while the bundle stays under `budget` bytes.
pub async fn for_bundle(
    state: &AppState,
    partner: &PartnerConfig,
    events: &[proto::Event],
    mut budget: u64,
) -> Result<Vec<proto::FileData>> {
    let mut files = Vec::new();
    let refs = events.iter().filter_map(|e| match &e.op {
        Some(proto::event::Op::PostCreated(post)) => Some(&post.files),
        _ => None,
    });
    for file in refs.flatten() {
        if file.size > partner.sync.max_file_bytes || file.size > budget {
            continue;
        }
        let key = sqlx::query_scalar!(
            "SELECT f.object_key FROM files f JOIN posts p ON p.id = f.post_id
             WHERE f.id = $1 AND f.state = 'ready' AND p.deleted_at IS NULL",
            file.id
        )
        .fetch_optional(&state.db)
        .await?;
        let Some(key) = key else { continue };
        let mut body = state.store.get(&key).await.map_err(Error::object_store)?;
        let mut data = Vec::with_capacity(file.size as usize);
        while let Some(chunk) = body.next().await {
            data.extend_from_slice(&chunk.map_err(Error::object_store)?);
        }
        budget -= data.len() as u64;
        files.push(proto::FileData {
            id: file.id.clone(),
            data,
        });
    }
    Ok(files)
}

/// Takes the bytes of a pending file of `partner`'s that came in a bundle:
/// checked and stored as a fetched one is. Files not pending here (refused,
/// unknown, already whole) are passed over; returns whether it was taken.
pub async fn from_bundle(
    state: &AppState,
    partner: &PartnerConfig,
    file: proto::FileData,
) -> Result<bool> {
    let pending = sqlx::query_as!(
        Pending,
        "SELECT id, size, sha256, content_type, object_key, post_id FROM files
         WHERE id = $1 AND source = $2 AND state = 'pending'",
        file.id,
        partner.workspace_id
    )
    .fetch_optional(&state.db)
    .await?;
    let Some(pending) = pending else {
        return Ok(false);
    };
    if file.data.len() as i64 != pending.size {
        refuse(
            state,
            &pending,
            "the bundle carried a different number of bytes",
        )
        .await?;
        return Ok(false);
    }
    let mut tx = state.db.begin().await?;
    db::files::drop_parts(&mut *tx, &file.id).await?;
    for (i, chunk) in file.data.chunks(CHUNK).enumerate() {
        db::files::insert_part(&mut *tx, &file.id, (i * CHUNK) as i64, chunk).await?;
    }
    db::commit(tx).await?;
    complete(state, partner, pending).await?;
    Ok(true)
}

/// Fetches the rest of one file, then completes it.
async fn fetch(
    state: &AppState,
    partner: &PartnerConfig,
    client: &mut FederationClient<Channel>,
    file: Pending,
) -> Result<()> {
    let mut have = sqlx::query_scalar!(
        r#"SELECT COALESCE(sum(length(data)), 0)::bigint AS "have!" FROM federation_file_parts WHERE file_id = $1"#,
        file.id
    )
    .fetch_one(&state.db)
    .await?;
    if have < file.size {
        let request = FetchRequest {
            file_id: file.id.clone(),
            offset: have as u64,
        };
        let mut chunks = match client.fetch(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return refuse_or_retry(state, partner, &file, status).await,
        };
        loop {
            let chunk = match chunks.message().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(status) => return refuse_or_retry(state, partner, &file, status).await,
            };
            if chunk.data.is_empty() {
                continue;
            }
            if have + chunk.data.len() as i64 > file.size {
                return refuse(
                    state,
                    &file,
                    "the partner sent more bytes than the file has",
                )
                .await;
            }
            db::files::insert_part(&state.db, &file.id, have, &chunk.data).await?;
            have += chunk.data.len() as i64;
            state
                .metrics
                .federation_file_bytes_received
                .inc_by(chunk.data.len() as u64);
        }
        if have < file.size {
            return Err(Error::protocol(
                &partner.workspace_id,
                format!(
                    "the transfer of file {} ended at byte {have} of {}",
                    file.id, file.size
                ),
            ));
        }
    }
    complete(state, partner, file).await
}

/// A partner's answer that says the file will never come (permanent) is
/// recorded; anything else ends the session, to be retried.
async fn refuse_or_retry(
    state: &AppState,
    partner: &PartnerConfig,
    file: &Pending,
    status: Status,
) -> Result<()> {
    match status.code() {
        Code::NotFound | Code::FailedPrecondition | Code::OutOfRange => {
            refuse(
                state,
                file,
                &format!("the partner refused it: {}", status.message()),
            )
            .await
        }
        _ => Err(Error::Link {
            partner: partner.workspace_id.clone(),
            endpoint: partner.endpoint.clone(),
            message: format!("fetching file {}: {}", file.id, status.message()),
        }),
    }
}

async fn refuse(state: &AppState, file: &Pending, reason: &str) -> Result<()> {
    tracing::warn!(file = %file.id, "a partner's file is refused: {reason}");
    settle(state, file, "refused", Some(reason), &file.content_type).await
}

/// Ends a pending file as `ready` (typed `content_type`) or `refused` (for
/// `reason`): its chunks go, and its channel's clients hear of it.
async fn settle(
    state: &AppState,
    file: &Pending,
    outcome: &str,
    reason: Option<&str>,
    content_type: &str,
) -> Result<()> {
    let mut tx = state.db.begin().await?;
    db::files::settle(&mut tx, &file.id, outcome, reason, content_type).await?;
    announce(&mut tx, file).await?;
    Ok(db::commit(tx).await?)
}

/// Tells the channel's clients the post's files changed.
async fn announce(tx: &mut Transaction<'_, Postgres>, file: &Pending) -> Result<()> {
    if let Some(post_id) = &file.post_id {
        posts::announce(tx, Change::FilesChanged, post_id)
            .await
            .map_err(|e| match e {
                posts::WriteError::Db(e) => Error::Database(e),
                e => Error::Setup(format!("announcing file {}: {e}", file.id)),
            })?;
    }
    Ok(())
}

/// Assembles a file whose chunks are all here: checked against its SHA-256,
/// typed from its bytes, stored, and made downloadable.
async fn complete(state: &AppState, partner: &PartnerConfig, file: Pending) -> Result<()> {
    let mut spool = tempfile::NamedTempFile::new()?;
    let mut digest = sha2::Sha256::new();
    let mut head = Vec::new();
    let mut parts = sqlx::query_scalar!(
        "SELECT data FROM federation_file_parts WHERE file_id = $1 ORDER BY at_byte",
        file.id
    )
    .fetch(&state.db);
    while let Some(part) = parts.next().await {
        let data = part?;
        digest.update(&data);
        if head.len() < 8192 {
            head.extend_from_slice(&data[..data.len().min(8192 - head.len())]);
        }
        spool.write_all(&data)?;
    }
    drop(parts);
    spool.flush()?;
    if file.sha256.as_deref() != Some(digest.finalize().as_slice()) {
        return refuse(
            state,
            &file,
            "its bytes do not match the SHA-256 the partner announced",
        )
        .await;
    }
    let kind = files::content_type(&head, Some(&file.content_type));
    state
        .store
        .put_file(&file.object_key, spool.path(), &kind)
        .await
        .map_err(Error::object_store)?;
    settle(state, &file, "ready", None, &kind).await?;
    tracing::info!(partner = %partner.workspace_id, file = %file.id, bytes = file.size, "received a partner's file");
    Ok(())
}
