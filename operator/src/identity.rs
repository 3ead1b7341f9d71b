//! Whether a Workspace's identity provider can be used: its OpenID
//! discovery document read from where the server will read it, naming the
//! same issuer and its keys. Reported as the `IdentityProviderReachable`
//! condition, so a wrong `issuerUrl` or an unreachable provider shows in
//! the Workspace's status before anyone fails to sign in.

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
    crate::http::get_json(url, None).await
}
