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
            super::db::Error::Uncertain(_) => {
                tracing::warn!(%error, "database lost at commit");
                ApiError::outcome_unknown()
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

impl ApiError {
    /// This error, met after the request's change was committed: a lost
    /// database no longer means nothing was changed.
    pub fn after_commit(self) -> ApiError {
        if self.code == "unavailable" {
            ApiError::outcome_unknown()
        } else {
            self
        }
    }

    /// The database was lost as or after the change was committed.
    fn outcome_unknown() -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "outcome_unknown",
            message: "the database became unavailable as the change was saved: it may or may not have been; read it back before retrying".into(),
            field: None,
            retry_after: Some(5),
        }
    }
}
