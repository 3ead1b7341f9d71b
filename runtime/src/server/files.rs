//! Files: streamed uploads into the object store, attached to posts, and
//! downloadable only by people who can read the post.

use std::io::Write;

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::{
    auth::Caller,
    authz::gate::see,
    db::{self, new_id},
    error::{ApiError, ApiResult},
    state::AppState,
};

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub id: String,
    pub channel_id: String,
    pub post_id: Option<String>,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    pub name: String,
}

pub fn check_name(name: &str) -> ApiResult<()> {
    let ok = !name.trim().is_empty()
        && name.chars().count() <= 255
        && !name.contains(['/', '\\', '\0'])
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "name",
            "a file name is 1-255 characters without slashes",
        ))
    }
}

/// The type from the bytes themselves; the client's claim only when the bytes
/// say nothing (plain text, say), and never a type a browser would run.
pub fn content_type(head: &[u8], declared: Option<&str>) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_string();
    }
    let declared = declared
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let active = [
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "application/javascript",
        "text/javascript",
    ];
    if declared.is_empty() || active.contains(&declared.as_str()) || !declared.contains('/') {
        if std::str::from_utf8(head).is_ok() {
            "text/plain".into()
        } else {
            "application/octet-stream".into()
        }
    } else {
        declared
    }
}

/// `POST /api/v1/channels/{id}/files?name=…`: the body is the file. It is
/// streamed to a temporary file (so memory stays flat), refused with 413 past
/// the configured limit, typed from its first bytes, then stored.
#[utoipa::path(post, path = "/api/v1/channels/{id}/files", params(("id" = String, Path), UploadQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file"), responses((status = 201, body = FileInfo), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError), (status = 413, description = "over the upload limit", body = ApiError)), security(("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<FileInfo>)> {
    check_name(&query.name)?;
    let seen = see(&state, &caller, &channel_id).await?;
    if !seen.access.post {
        return Err(ApiError::forbidden(
            "join the channel before uploading to it",
        ));
    }
    if let Some(policy) = &caller.guest_policy {
        let allowed = state
            .policies()
            .guests
            .get(policy)
            .is_some_and(|rules| rules.upload_files);
        if !allowed {
            return Err(ApiError::forbidden(format!(
                "guests under guest policy {policy:?} may not upload files"
            )));
        }
    }
    let limit = state.config().limits.max_upload_bytes;
    let too_large = || ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "too_large",
        message: format!("files are limited to {limit} bytes"),
        field: Some("body".into()),
        retry_after: None,
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(too_large());
    }
    let mut spool = tempfile::NamedTempFile::new().map_err(|e| {
        tracing::error!(error = %e, "cannot create a temporary file for an upload");
        ApiError::unavailable("the server cannot take uploads right now")
    })?;
    let mut size: u64 = 0;
    let mut head = Vec::with_capacity(8192);
    let mut digest = sha2::Sha256::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::invalid("body", format!("the upload was interrupted: {e}")))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large());
        }
        if head.len() < 8192 {
            let take = (8192 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        digest.update(&chunk);
        spool.write_all(&chunk).map_err(|e| {
            tracing::error!(error = %e, "cannot spool an upload");
            ApiError::unavailable("the server cannot take uploads right now (disk)")
        })?;
    }
    spool
        .flush()
        .map_err(|_| ApiError::unavailable("the server cannot take uploads right now (disk)"))?;
    let kind = content_type(
        &head,
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let id = new_id();
    let key = format!("files/{channel_id}/{id}");
    state
        .store
        .put_file(&key, spool.path(), &kind)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "upload to the object store failed");
            ApiError::unavailable(
                "the object store is unavailable; nothing was stored, retry later",
            )
        })?;
    let file = db::files::insert_upload::<FileInfo>(
        &state.db,
        db::files::NewUpload {
            id: &id,
            channel_id: &channel_id,
            uploader_id: &caller.user_id,
            name: &query.name,
            content_type: &kind,
            size: size as i64,
            object_key: &key,
            sha256: &digest.finalize(),
        },
    )
    .await;
    match file {
        Ok(file) => Ok((StatusCode::CREATED, Json(file))),
        Err(e) => {
            // Do not leave an object nothing refers to.
            let _ = state.store.delete(&key).await;
            Err(e.into())
        }
    }
}

/// `GET /api/v1/files/{id}`: the bytes, for whoever can read the post the file
/// is attached to (or its uploader, before it is attached).
#[utoipa::path(get, path = "/api/v1/files/{id}", params(("id" = String, Path)), responses((status = 200, description = "the file", content_type = "application/octet-stream"), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError), (status = 410, description = "a partner's file that will not come here (over the size limit), and why", body = ApiError), (status = 503, description = "a partner's file still arriving (Retry-After)", body = ApiError)), security(("bearer" = [])))]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let row: FileRow = sqlx::query_as(
        "SELECT f.id, f.channel_id, f.post_id, f.name, f.content_type, f.size, f.created_at,
                f.object_key, f.uploader_id, (p.deleted_at IS NOT NULL) AS post_deleted,
                f.state, f.refused_reason, u.organisation
         FROM files f LEFT JOIN posts p ON p.id = f.post_id JOIN users u ON u.id = f.uploader_id
         WHERE f.id = $1",
    )
    .bind(&id)
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::not_found("file"))?;
    let file = row.info;
    see(&state, &caller, &file.channel_id)
        .await
        .map_err(|_| ApiError::not_found("file"))?;
    if row.post_deleted || (file.post_id.is_none() && row.uploader_id != caller.user_id) {
        return Err(ApiError::not_found("file"));
    }
    let from = row.organisation.as_deref().unwrap_or("the partner");
    match row.state.as_str() {
        "pending" => {
            return Err(ApiError::file_pending(format!(
                "this file is still arriving from {from}; retry later"
            )))
        }
        "refused" => {
            return Err(ApiError::file_refused(format!(
                "this file from {from} will not be available here: {}",
                row.refused_reason.as_deref().unwrap_or("refused")
            )))
        }
        _ => {}
    }
    let key = row.object_key;
    let stream = state.store.get(&key).await.map_err(|e| {
        tracing::warn!(error = %e, "download from the object store failed");
        ApiError::unavailable("the object store is unavailable, retry later")
    })?;
    let body = Body::from_stream(futures_util::stream::unfold(
        stream,
        |mut stream| async move {
            match stream.next().await {
                Some(Ok(bytes)) => Some((Ok::<_, std::io::Error>(bytes), stream)),
                Some(Err(e)) => Some((Err(std::io::Error::other(e)), stream)),
                None => None,
            }
        },
    ));
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        percent_encode(&file.name)
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&file.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, file.size.into());
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).expect("percent-encoded is ASCII"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

#[derive(sqlx::FromRow)]
struct FileRow {
    #[sqlx(flatten)]
    info: FileInfo,
    object_key: String,
    uploader_id: String,
    post_deleted: bool,
    state: String,
    refused_reason: Option<String>,
    organisation: Option<String>,
}

fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_decide_the_type_and_active_content_is_never_served_as_such() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D,
        ];
        assert_eq!(content_type(&png, Some("text/plain")), "image/png");
        assert_eq!(content_type(b"hello", Some("text/html")), "text/plain");
        assert_eq!(content_type(b"<svg/>", Some("image/svg+xml")), "text/plain");
        assert_eq!(content_type(b"a,b\n1,2", Some("text/csv")), "text/csv");
        assert_eq!(
            content_type(&[0xff, 0xfe, 0x00, 0x9f], None),
            "application/octet-stream"
        );
    }

    #[test]
    fn file_names_cannot_escape() {
        assert!(check_name("report 2026.pdf").is_ok());
        for bad in ["", "../etc/passwd", "a/b", "a\\b", ".."] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(percent_encode("ré port.pdf"), "r%C3%A9%20port.pdf");
    }
}
