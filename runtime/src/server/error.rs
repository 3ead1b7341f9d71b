//! Every error a handler returns, and the one place they become HTTP.
//!
//! Bodies are `{code, message, field}`. What a caller may not see is `404`,
//! never `403`: a refusal must not reveal that a private channel or post exists.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    #[schema(ignore)]
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds until a retry may succeed (`Retry-After`).
    #[serde(skip)]
    #[schema(ignore)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            message: message.into(),
            field: Some(field.into()),
            retry_after: None,
        }
    }

    pub fn unauthenticated() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthenticated",
            message: "log in first: send `Authorization: Bearer <token>`".into(),
            field: None,
            retry_after: None,
        }
    }

    /// Not there, or not for this caller: the two are indistinguishable on purpose.
    pub fn not_found(what: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!("no such {what}"),
            field: None,
            retry_after: None,
        }
    }

    /// The caller can see the thing but may not do this to it.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn conflict(field: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
            field: Some(field.into()),
            retry_after: None,
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// Posting in a channel shared with a partner whose queue is full, under
    /// the `PauseSharedChannels` policy: it resumes when the queue drains.
    pub fn paused(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "channel_paused",
            message: message.into(),
            field: None,
            retry_after: Some(30),
        }
    }

    /// A partner's file whose bytes have not all arrived yet.
    pub fn file_pending(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "file_pending",
            message: message.into(),
            field: None,
            retry_after: Some(10),
        }
    }

    /// A partner's file whose bytes will never be here, and why.
    pub fn file_refused(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::GONE,
            code: "file_refused",
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// The caller made too many requests; `wait` is how long until the next is allowed.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: "too many requests; wait before retrying".into(),
            field: None,
            retry_after: Some(wait.as_secs().max(1)),
        }
    }

    fn internal() -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error; the server log has the details".into(),
            field: None,
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let retry_after = match (self.retry_after, status) {
            (Some(seconds), _) => Some(seconds),
            (None, StatusCode::SERVICE_UNAVAILABLE) => Some(5),
            _ => None,
        };
        let mut response = (status, Json(self)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert("retry-after", seconds.into());
        }
        response
    }
}

/// A database that cannot be reached is `503` (retry later, nothing was
/// accepted); anything else unexpected is `500` and logged.
impl From<super::db::Error> for ApiError {
    fn from(error: super::db::Error) -> Self {
        match &error {
            super::db::Error::Unavailable(_) => {
                tracing::warn!(%error, "database unavailable");
                ApiError::unavailable(
                    "the database is unavailable; nothing was changed, retry later",
                )
            }
            super::db::Error::Unstorable(_) => ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "invalid",
                message:
                    "the request holds a NUL character (U+0000), which cannot be stored; remove it"
                        .into(),
                field: None,
                retry_after: None,
            },
            super::db::Error::Query(_) => {
                tracing::error!(%error, "database error");
                ApiError::internal()
            }
        }
    }
}

/// Reads outside the data layer answer as its writes do.
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        super::db::Error::from(error).into()
    }
}

/// A refused write names the field to fix.
impl From<super::posts::WriteError> for ApiError {
    fn from(error: super::posts::WriteError) -> Self {
        match error {
            super::posts::WriteError::Invalid { field, message } => {
                ApiError::invalid(field, message)
            }
            super::posts::WriteError::Db(error) => error.into(),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON request body whose problems are answered like every other error:
/// `400 {code: "invalid", message, field}` naming the offending field when
/// serde can tell, `413` when it is too large, `415` without a JSON content type.
pub struct Body<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        match <Json<T> as axum::extract::FromRequest<S>>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(JsonRejection::JsonDataError(e)) => {
                let detail = std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| e.body_text());
                Err(ApiError::invalid(
                    field_of(&detail),
                    format!("the request body does not fit: {detail}"),
                ))
            }
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::invalid(
                "body",
                format!("the request body is not valid JSON: {}", e.body_text()),
            )),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: "send the body as JSON with `Content-Type: application/json`".into(),
                field: None,
                retry_after: None,
            }),
            Err(other) if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "too_large",
                message: "the request body is larger than this server accepts".into(),
                field: Some("body".into()),
                retry_after: None,
            }),
            Err(other) => Err(ApiError::invalid("body", other.body_text())),
        }
    }
}

/// The field a serde error names (`unknown field `mesage``, `missing field `message``,
/// or a path prefix `message: invalid type…`), else `body`.
fn field_of(detail: &str) -> String {
    for marker in ["unknown field `", "missing field `"] {
        if let Some(rest) = detail.split(marker).nth(1) {
            if let Some(name) = rest.split('`').next() {
                return name.to_string();
            }
        }
    }
    match detail.split_once(": ") {
        Some((path, _)) if !path.contains(' ') && !path.is_empty() => path.to_string(),
        _ => "body".into(),
    }
}
