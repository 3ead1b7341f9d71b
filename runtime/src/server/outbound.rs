//! The one HTTP client the server reaches other services with (an
//! identity provider, a language model, a translation service): TLS
//! against the system's roots, HTTP/1, no redirects followed (the legacy
//! client follows none), so a request goes only where it was addressed.

use std::sync::Arc;

use axum::body::Bytes;
use http_body_util::Full;

pub type Https = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// The innermost cause of a request's error (hyper's outer one says only
/// "client error (Connect)").
pub fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

/// A new client; fails only when the system's TLS roots cannot be read.
pub fn https() -> std::io::Result<Https> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(Arc::new(rustls::crypto::ring::default_provider()))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build(connector),
    )
}
