//! Files over HTTP: upload into a channel, download ([`crate::server::files`]).

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;

use crate::server::{
    api::extract::{Path, Query, Valid},
    auth::Caller,
    authz::gate::{may_upload, see},
    error::{ApiError, ApiResult},
    files::{self, FileInfo, Upload},
    state::AppState,
};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name: no slashes, not `.` or `..`.
    #[param(format = "file-name", min_length = 1, max_length = 255)]
    pub name: String,
}

impl Valid for UploadQuery {
    fn valid(&self) -> ApiResult<()> {
        files::check_name(&self.name)
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
    let seen = see(&state, &caller, &channel_id).await?;
    if !seen.access.post {
        return Err(ApiError::forbidden(
            "join the channel before uploading to it",
        ));
    }
    may_upload(&state, &caller)?;
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let file = files::store(
        &state,
        Upload {
            channel_id: &channel_id,
            uploader_id: &caller.user_id,
            name: &query.name,
            declared_type: header(header::CONTENT_TYPE),
            declared_length: header(header::CONTENT_LENGTH).and_then(|n| n.parse().ok()),
            body: body.into_data_stream(),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(file)))
}

/// `GET /api/v1/files/{id}`: the bytes, for whoever can read the post the file
/// is attached to (or its uploader, before it is attached).
#[utoipa::path(get, path = "/api/v1/files/{id}", params(("id" = String, Path)), responses((status = 200, description = "the file", content_type = "application/octet-stream"), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError), (status = 410, description = "a partner's file that will not come here (over the size limit), and why", body = ApiError), (status = 503, description = "a partner's file still arriving (Retry-After)", body = ApiError)), security(("bearer" = [])))]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let files::Download { info: file, bytes } = files::open(&state, &caller, &id).await?;
    let body = Body::from_stream(futures_util::stream::unfold(
        bytes,
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
        HeaderValue::from_str(files::served_type(&file.content_type))
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

/// `text` with everything but unreserved URL characters percent-encoded.
pub(crate) fn percent_encode(name: &str) -> String {
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
    #[test]
    fn file_names_in_the_disposition_are_percent_encoded() {
        assert_eq!(super::percent_encode("ré port.pdf"), "r%C3%A9%20port.pdf");
    }
}
