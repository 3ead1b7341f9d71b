//! The operator's own reads of HTTP endpoints it reports on (an identity
//! provider's discovery document, a model's list of models): TLS against
//! the system's roots, 5 s, 1 MiB, no redirects followed.

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty, Limited};

/// The JSON at `url`, sent with `header` (name, value) if given.
pub async fn get_json(
    url: &str,
    header: Option<(&str, &str)>,
) -> Result<serde_json::Value, String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .map_err(|e| e.to_string())?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<Bytes>>(connector);
    let mut request = axum::http::Request::get(url);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let request = request
        .body(Empty::new())
        .map_err(|e| format!("{url}: {e}"))?;
    let response = tokio::time::timeout(Duration::from_secs(5), client.request(request))
        .await
        .map_err(|_| "no answer in 5 s".to_string())?
        .map_err(|e| {
            let mut inner: &dyn std::error::Error = &e;
            while let Some(source) = inner.source() {
                inner = source;
            }
            inner.to_string()
        })?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let body = Limited::new(response.into_body(), 1 << 20)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
}
