//! Whether a Workspace's identity provider can be used: its OpenID
//! discovery document read from where the server will read it, naming the
//! same issuer and its keys. Reported as the `IdentityProviderReachable`
//! condition, so a wrong `issuerUrl` or an unreachable provider shows in
//! the Workspace's status before anyone fails to sign in.

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty, Limited};

/// `(reachable, reason, message)` for the provider at `issuer`.
pub async fn probe(issuer: &str) -> (bool, String, String) {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    match fetch(&url).await {
        Err(why) => (
            false,
            "Unreachable".into(),
            format!("cannot read {url}: {why}"),
        ),
        Ok(document) => {
            let named = document["issuer"].as_str().unwrap_or_default();
            if named.trim_end_matches('/') != issuer.trim_end_matches('/') {
                (
                    false,
                    "IssuerMismatch".into(),
                    format!("{url} names the issuer {named:?}, not {issuer:?}: check identity.oidc.issuerUrl (and tenantId)"),
                )
            } else if document["jwks_uri"].as_str().is_none() {
                (false, "NoKeys".into(), format!("{url} names no jwks_uri"))
            } else {
                (
                    true,
                    "Discovered".into(),
                    format!("the identity provider at {issuer} answers"),
                )
            }
        }
    }
}

async fn fetch(url: &str) -> Result<serde_json::Value, String> {
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
    let uri: axum::http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let response = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .map_err(|_| "no answer in 5 s".to_string())?
        .map_err(|e| e.to_string())?;
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
