//! Files: streamed uploads into the object store, attached to posts, and
//! downloadable only by people who can read the post (over HTTP:
//! [`super::api::files`]).

use std::io::Write;

use axum::http::StatusCode;
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

/// A file's name: 1-255 characters on one line, no slashes, something
/// besides dots ([`super::input::file_name`]).
pub fn check_name(name: &str) -> ApiResult<()> {
    super::input::file_name(name, 255).map_err(super::input::at("name"))
}

/// Whether a browser would run or render content of type `mime` as a page
/// (HTML, XHTML, SVG and any other XML, JavaScript): such a type is never
/// stored or served.
pub fn executable(mime: &str) -> bool {
    let mime = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let subtype = mime.split_once('/').map_or("", |(_, sub)| sub);
    subtype == "html"
        || subtype == "xhtml"
        || subtype == "xml"
        || subtype.ends_with("+xml")
        || subtype.contains("javascript")
        || subtype.contains("ecmascript")
        || subtype == "xsl"
}

/// The type a stored file is served as: its type, unless a browser would
/// run it (a file stored before this rule, or written by hand).
pub fn served_type(stored: &str) -> &str {
    if executable(stored) || !stored.contains('/') {
        "application/octet-stream"
    } else {
        stored
    }
}

/// The type from the bytes themselves; the client's claim only when the bytes
/// say nothing (plain text, say), and never a type a browser would run:
/// detected, such a file is `application/octet-stream`; declared, it is
/// plain text if it is text.
pub fn content_type(head: &[u8], declared: Option<&str>) -> String {
    if let Some(kind) = infer::get(head) {
        let detected = kind.mime_type();
        return if executable(detected) {
            "application/octet-stream".into()
        } else {
            detected.to_string()
        };
    }
    let declared = declared
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if declared.is_empty() || executable(&declared) || !declared.contains('/') {
        if std::str::from_utf8(head).is_ok() {
            "text/plain".into()
        } else {
            "application/octet-stream".into()
        }
    } else {
        declared
    }
}

/// What an upload is not to exceed: the configured limit.
fn too_large(limit: u64) -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "too_large",
        message: format!("files are limited to {limit} bytes"),
        field: Some("body".into()),
        retry_after: None,
    }
}

/// An upload as it arrives.
pub struct Upload<'a, S> {
    pub channel_id: &'a str,
    pub uploader_id: &'a str,
    pub name: &'a str,
    /// The client's `Content-Type`, a hint the bytes overrule.
    pub declared_type: Option<&'a str>,
    /// The client's `Content-Length`, refused at once past the limit.
    pub declared_length: Option<u64>,
    pub body: S,
}

/// Stores an upload: streamed to a temporary file (so memory stays flat),
/// refused with 413 past the configured limit, typed from its first bytes,
/// put in the object store, then recorded, unattached, for its uploader.
pub async fn store<S, E>(state: &AppState, upload: Upload<'_, S>) -> ApiResult<FileInfo>
where
    S: futures_util::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    check_name(upload.name)?;
    let limit = state.config().limits.max_upload_bytes;
    if upload.declared_length.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut spool = tempfile::NamedTempFile::new().map_err(|e| {
        tracing::error!(error = %e, "cannot create a temporary file for an upload");
        ApiError::unavailable("the server cannot take uploads right now")
    })?;
    let mut size: u64 = 0;
    let mut head = Vec::with_capacity(8192);
    let mut digest = sha2::Sha256::new();
    let mut stream = upload.body;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::invalid("body", format!("the upload was interrupted: {e}")))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(limit));
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
    let kind = content_type(&head, upload.declared_type);
    let id = new_id();
    let key = format!("files/{}/{id}", upload.channel_id);
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
            channel_id: upload.channel_id,
            uploader_id: upload.uploader_id,
            name: upload.name,
            content_type: &kind,
            size: size as i64,
            object_key: &key,
            sha256: &digest.finalize(),
        },
    )
    .await;
    match file {
        Ok(file) => Ok(file),
        Err(e) => {
            // Do not leave an object nothing refers to.
            let _ = state.store.delete(&key).await;
            Err(e.into())
        }
    }
}

/// A file to send: what it is, and its bytes.
pub struct Download {
    pub info: FileInfo,
    pub bytes: aws_sdk_s3::primitives::ByteStream,
}

/// The file `id` for `caller`, who must be able to read the post it is
/// attached to (or be its uploader, before it is attached); anything else
/// is absent. A partner's file still arriving or refused says so.
pub async fn open(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Download> {
    let row = sqlx::query!(
        r#"SELECT f.id, f.channel_id, f.post_id, f.name, f.content_type, f.size, f.created_at,
                  f.object_key, f.uploader_id, (p.deleted_at IS NOT NULL) AS "post_deleted!",
                  f.state, f.refused_reason, u.organisation
           FROM files f LEFT JOIN posts p ON p.id = f.post_id JOIN users u ON u.id = f.uploader_id
           WHERE f.id = $1"#,
        id
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::not_found("file"))?;
    let file = FileInfo {
        id: row.id,
        channel_id: row.channel_id,
        post_id: row.post_id,
        name: row.name,
        content_type: row.content_type,
        size: row.size,
        created_at: row.created_at,
    };
    see(state, caller, &file.channel_id)
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
    let bytes = state.store.get(&row.object_key).await.map_err(|e| {
        tracing::warn!(error = %e, "download from the object store failed");
        ApiError::unavailable("the object store is unavailable, retry later")
    })?;
    Ok(Download { info: file, bytes })
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
    fn nothing_a_browser_runs_is_stored_or_served_whatever_the_bytes_or_the_claim() {
        // Detected from the bytes.
        for page in [
            &b"<!DOCTYPE html><html><script>alert(1)</script></html>"[..],
            b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
            b"<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"></html>",
        ] {
            let kind = content_type(page, Some("image/png"));
            assert!(!executable(&kind), "{kind}");
            assert!(
                kind == "application/octet-stream" || kind == "text/plain",
                "{kind}"
            );
        }
        // Declared.
        for declared in [
            "text/html; charset=utf-8",
            "application/xhtml+xml",
            "image/svg+xml",
            "text/xml",
            "application/xml",
            "application/javascript",
            "text/ecmascript",
        ] {
            assert_eq!(
                content_type(b"x", Some(declared)),
                "text/plain",
                "{declared}"
            );
        }
        // Served: whatever was stored.
        assert_eq!(served_type("text/html"), "application/octet-stream");
        assert_eq!(served_type("image/svg+xml"), "application/octet-stream");
        assert_eq!(served_type("image/png"), "image/png");
        assert_eq!(served_type("text/csv"), "text/csv");
        // Office documents are zip files, not XML pages.
        assert!(!executable(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        ));
    }

    #[test]
    fn file_names_cannot_escape() {
        assert!(check_name("report 2026.pdf").is_ok());
        for bad in ["", "../etc/passwd", "a/b", "a\\b", ".."] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
