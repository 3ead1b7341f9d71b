//! The extractors every handler reads its request with. Each answers a
//! request it cannot read as every other error is answered — JSON
//! `{code, message, field}` naming what to fix — never axum's plain text:
//! [`Body`] (a JSON body, then its own [`Valid`] checks), [`Query`] (the
//! query string) and [`Path`] (the ids in the path). Routes nothing matches
//! are [`no_route`] and [`wrong_method`].

use axum::{
    extract::{FromRequest, FromRequestParts, RawPathParams, Request},
    http::{request::Parts, Method, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::de::DeserializeOwned;

use crate::server::{error::ApiError, input};

pub use crate::server::input::Valid;

/// A JSON request body: `400` naming the offending field when serde can tell
/// or when the body's [`Valid`] check refuses it, `413` when it is too
/// large, `415` without a JSON content type.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned + Valid,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        let value = match <Json<T> as FromRequest<S>>::from_request(request, state).await {
            Ok(Json(value)) => value,
            Err(JsonRejection::JsonDataError(e)) => {
                let detail = std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| e.body_text());
                return Err(ApiError::invalid(
                    field_of(&detail),
                    format!("the request body does not fit: {detail}"),
                ));
            }
            Err(JsonRejection::JsonSyntaxError(e)) => {
                return Err(ApiError::invalid(
                    "body",
                    format!("the request body is not valid JSON: {}", e.body_text()),
                ))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => {
                return Err(ApiError {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    code: "unsupported_media_type",
                    message: "send the body as JSON with `Content-Type: application/json`".into(),
                    field: None,
                    retry_after: None,
                })
            }
            Err(other) if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(too_large())
            }
            Err(other) => return Err(ApiError::invalid("body", other.body_text())),
        };
        value.valid()?;
        Ok(Body(value))
    }
}

pub(crate) fn too_large() -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "too_large",
        message: "the request body is larger than this server accepts".into(),
        field: Some("body".into()),
        retry_after: None,
    }
}

/// The query string: `400` naming the parameter that does not fit, or
/// that the type's [`Valid`] check refuses.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned + Valid,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let value = match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => value,
            Err(rejection) => {
                let detail = std::error::Error::source(&rejection)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| rejection.body_text());
                let field = match field_of(&detail).as_str() {
                    "body" => "query".to_string(),
                    named => named.to_string(),
                };
                return Err(ApiError::invalid(
                    field,
                    format!("the query string does not fit: {detail}"),
                ));
            }
        };
        value.valid()?;
        Ok(Query(value))
    }
}

/// Parameters in the path. Every one is an id this server made (a ULID)
/// except a reaction's `emoji`, which its own rule checks: anything else is
/// `400` naming the parameter, before any lookup.
pub struct Path<T>(pub T);

/// Path parameters that are not ids.
const NOT_IDS: &[&str] = &["emoji"];

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::invalid("path", rejection.body_text()))?;
        for (key, value) in &raw {
            if !NOT_IDS.contains(&key) {
                input::id(value).map_err(|problem| ApiError::invalid(key, problem))?;
            }
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(ApiError::invalid("path", rejection.body_text())),
        }
    }
}

/// A path no route has: `404` as JSON.
pub async fn no_route() -> ApiError {
    ApiError::not_found("route: see /api/v1/openapi.json for the API's paths")
}

/// A route that exists, with a method it does not have: `405` as JSON. The
/// `Allow` header axum sets is kept.
pub async fn wrong_method(method: Method) -> Response {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: format!("this path does not take {method}; the Allow header lists what it takes"),
        field: None,
        retry_after: None,
    }
    .into_response()
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
