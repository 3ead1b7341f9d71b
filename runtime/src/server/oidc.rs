//! Single sign-on with OpenID Connect (Microsoft Entra ID or any certified
//! provider): the authorization code flow with PKCE, `state` and `nonce`.
//!
//! `openidconnect` does the protocol: discovery, the code exchange and the
//! ID token's checks (signature against the provider's keys, `iss`, `aud`,
//! `exp`, `nonce`). Around it, this module keeps the provider's metadata
//! (fetched on first use, again after an hour, and its keys again, once,
//! when a token names a key it does not know: the provider rotated them),
//! binds each sign-in to the browser that started it, and turns the
//! provider's word into an account: keyed on the provider's stable subject
//! (Entra ID: tenant and object id; others: issuer and `sub`), never on an
//! email or a display name; refused from a tenant not allowed here;
//! attributes and admin role refreshed from the claims at every sign-in.
//!
//! HTTP goes through [`Http`], which asks only the URLs the provider's own
//! configuration names and never follows a redirect.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use entente_crds::{config::OidcConfig, workspace::OidcProvider};
use http_body_util::{BodyExt, Full, Limited};
use openidconnect::{
    core::{CoreAuthenticationFlow, CoreClient},
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    JsonWebKeySet, Nonce, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadataWithLogout,
    RedirectUrl, Scope, SignatureVerificationError, TokenResponse,
};
use serde_json::{Map, Value};

use super::{
    audit,
    auth::{self, LoginResponse},
    authz::roles::Role,
    db::{self, new_id},
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Where the provider sends the browser back.
pub const CALLBACK_PATH: &str = "/api/v1/auth/oidc/callback";
/// The cookie that ties a sign-in to the browser that started it.
pub const FLOW_COOKIE: &str = "entente_sso";
/// Clock difference tolerated between the provider and this server.
pub const CLOCK_SKEW: Duration = Duration::from_secs(120);
/// How long the provider's metadata is trusted before it is read again.
const METADATA_LIFETIME: Duration = Duration::from_secs(3600);
/// At most one refetch of the provider's keys this often, whatever tokens
/// arrive naming unknown keys.
const KEYS_REFETCH_EVERY: Duration = Duration::from_secs(10);
/// The largest answer read from the provider.
const MAX_RESPONSE: usize = 1 << 20;

/// An HTTP client for the provider's endpoints: TLS against the system's
/// roots, 10 s per request, 1 MiB per answer, no redirects followed.
#[derive(Clone)]
pub struct Http {
    client: super::outbound::Https,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Request(String),
}

impl Http {
    pub fn new() -> std::io::Result<Http> {
        Ok(Http {
            client: super::outbound::https()?,
        })
    }

    async fn send(
        &self,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let request = axum::http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .map_err(|_| HttpError::Request("the identity provider did not answer in 10 s".into()))?
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| HttpError::Request(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok(openidconnect::HttpResponse::from_parts(
            parts,
            body.to_vec(),
        ))
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

struct Discovered {
    metadata: ProviderMetadataWithLogout,
    fetched: Instant,
    keys_fetched: Instant,
}

/// One workspace's OpenID Connect provider.
pub struct Oidc {
    config: OidcConfig,
    secret: String,
    redirect: RedirectUrl,
    http: Http,
    discovered: tokio::sync::Mutex<Option<Discovered>>,
}

/// Why a sign-in did not happen, as the person is told.
fn refused(message: impl Into<String>) -> ApiError {
    ApiError {
        status: axum::http::StatusCode::FORBIDDEN,
        code: "sso_refused",
        message: message.into(),
        field: None,
        retry_after: None,
    }
}

fn unavailable(what: impl std::fmt::Display) -> ApiError {
    ApiError {
        status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
        code: "identity_provider_unavailable",
        message: format!("the identity provider cannot be reached: {what}"),
        field: None,
        retry_after: Some(30),
    }
}

impl Oidc {
    pub fn new(config: &OidcConfig, site_url: &str) -> Result<Oidc, String> {
        let secret = config
            .client_secret
            .read()
            .map_err(|e| format!("the OIDC client secret: {e}"))?;
        let redirect =
            RedirectUrl::new(format!("{}{CALLBACK_PATH}", site_url.trim_end_matches('/')))
                .map_err(|e| format!("the callback URL from siteUrl: {e}"))?;
        Ok(Oidc {
            config: config.clone(),
            secret: secret.trim().to_string(),
            redirect,
            http: Http::new().map_err(|e| format!("TLS roots: {e}"))?,
            discovered: tokio::sync::Mutex::new(None),
        })
    }

    /// The provider's metadata, read again after [`METADATA_LIFETIME`].
    async fn metadata(&self) -> ApiResult<ProviderMetadataWithLogout> {
        let mut discovered = self.discovered.lock().await;
        if let Some(d) = discovered
            .as_ref()
            .filter(|d| d.fetched.elapsed() < METADATA_LIFETIME)
        {
            return Ok(d.metadata.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer_url.clone()).map_err(unavailable)?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &self.http)
            .await
            .map_err(|e| unavailable(format!("discovery: {e}")))?;
        *discovered = Some(Discovered {
            metadata: metadata.clone(),
            fetched: Instant::now(),
            keys_fetched: Instant::now(),
        });
        Ok(metadata)
    }

    /// The provider's keys read again (it rotated them), unless they were
    /// moments ago; whether they were.
    async fn refetch_keys(&self) -> ApiResult<bool> {
        let mut discovered = self.discovered.lock().await;
        let Some(d) = discovered.as_mut() else {
            return Ok(false);
        };
        if d.keys_fetched.elapsed() < KEYS_REFETCH_EVERY {
            return Ok(false);
        }
        let keys = JsonWebKeySet::fetch_async(d.metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| unavailable(format!("keys: {e}")))?;
        d.metadata = d.metadata.clone().set_jwks(keys);
        d.keys_fetched = Instant::now();
        Ok(true)
    }

    fn client(
        &self,
        metadata: ProviderMetadataWithLogout,
    ) -> openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.secret.clone())),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Where to send the browser so the provider ends its own session too
    /// (RP-initiated logout), coming back to the workspace's page; `None`
    /// if the provider offers no such endpoint.
    pub async fn end_session_url(&self, site_url: &str) -> ApiResult<Option<String>> {
        let metadata = self.metadata().await?;
        let Some(endpoint) = &metadata.additional_metadata().end_session_endpoint else {
            return Ok(None);
        };
        let mut url = endpoint.url().clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.client_id)
            .append_pair(
                "post_logout_redirect_uri",
                &format!("{}/", site_url.trim_end_matches('/')),
            );
        Ok(Some(url.to_string()))
    }

    /// Where to send the browser to sign in, and the `state` its cookie
    /// carries back.
    pub async fn begin(&self, state: &AppState) -> ApiResult<(String, String)> {
        let client = self.client(self.metadata().await?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, csrf, nonce) = request.url();
        db::sso::begin(&state.db, csrf.secret(), nonce.secret(), verifier.secret()).await?;
        Ok((url.to_string(), csrf.secret().clone()))
    }

    /// The provider's answer: the account it stands for, signed in.
    pub async fn finish(
        &self,
        state: &AppState,
        code: &str,
        returned_state: &str,
        cookie_state: Option<&str>,
    ) -> ApiResult<LoginResponse> {
        if cookie_state != Some(returned_state) {
            return Err(refused(
                "this sign-in was not started in this browser (or took longer than 10 minutes); start again from the sign-in page",
            ));
        }
        let (nonce, verifier) = db::sso::take(&state.db, returned_state)
            .await?
            .ok_or_else(|| {
                refused("this sign-in has expired or was already used; start again from the sign-in page")
            })?;
        let client = self.client(self.metadata().await?);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| unavailable(format!("token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                refused(format!(
                    "the identity provider did not accept the sign-in: {e}"
                ))
            })?;
        let id_token = token
            .id_token()
            .ok_or_else(|| refused("the identity provider returned no ID token"))?;
        let raw = id_token.to_string();
        let nonce = Nonce::new(nonce);
        let verified = match self.verify(&raw, &nonce).await {
            Err(VerifyError::UnknownKey) if self.refetch_keys().await? => {
                self.verify(&raw, &nonce).await
            }
            other => other,
        };
        let claims = verified.map_err(|e| refused(format!("the ID token does not verify: {e}")))?;
        let identity = Identity::from_claims(&self.config, &claims)?;
        identity.sign_in(state, &self.config).await
    }

    /// The ID token's claims, if it verifies against the keys held now.
    async fn verify(&self, raw: &str, nonce: &Nonce) -> Result<Map<String, Value>, VerifyError> {
        let client = self.client(self.metadata().await.map_err(VerifyError::Provider)?);
        verify(&client, raw, nonce, CLOCK_SKEW)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("it names a key the provider does not have")]
    UnknownKey,
    #[error("{0}")]
    Invalid(String),
    #[error("{}", .0.message)]
    Provider(ApiError),
}

/// Checks `raw` with `client`'s keys, issuer and audience, and `nonce`,
/// tolerating `skew` of clock difference ([`CLOCK_SKEW`] for sign-ins);
/// its claims, all of them (Entra ID's `tid`, `oid`, `groups` among them).
pub fn verify<AS, DS, IS, RS, TS, US>(
    client: &openidconnect::core::CoreClient<AS, DS, IS, RS, TS, US>,
    raw: &str,
    nonce: &Nonce,
    skew: Duration,
) -> Result<Map<String, Value>, VerifyError>
where
    AS: openidconnect::EndpointState,
    DS: openidconnect::EndpointState,
    IS: openidconnect::EndpointState,
    RS: openidconnect::EndpointState,
    TS: openidconnect::EndpointState,
    US: openidconnect::EndpointState,
{
    let token: openidconnect::core::CoreIdToken = raw
        .parse()
        .map_err(|e| VerifyError::Invalid(format!("not a JWT: {e}")))?;
    let skew = chrono::Duration::from_std(skew).map_err(|e| VerifyError::Invalid(e.to_string()))?;
    let verifier = client
        .id_token_verifier()
        .set_time_fn(move || chrono::Utc::now() - skew)
        .set_issue_time_verifier_fn(move |issued| {
            if issued > chrono::Utc::now() + skew {
                Err(format!("issued in the future ({issued})"))
            } else {
                Ok(())
            }
        });
    match token.claims(&verifier, nonce) {
        Ok(_) => {}
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) => return Err(VerifyError::UnknownKey),
        Err(e) => return Err(VerifyError::Invalid(e.to_string())),
    }
    // Verified: its payload is what the provider signed.
    let payload = raw
        .split('.')
        .nth(1)
        .ok_or_else(|| VerifyError::Invalid("no payload".into()))?;
    let bytes = base64_url(payload).ok_or_else(|| VerifyError::Invalid("bad payload".into()))?;
    serde_json::from_slice(&bytes).map_err(|e| VerifyError::Invalid(e.to_string()))
}

/// Base64url without padding, as JWTs carry it.
fn base64_url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            b'=' => continue,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// Who the provider vouched for, as this workspace keys and describes them.
#[derive(Debug)]
pub struct Identity {
    /// `entra:<tid>` or the issuer.
    pub provider: String,
    /// Entra ID's `oid`, or `sub`.
    pub subject: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub attributes: Map<String, Value>,
    /// The language the provider says they use (`locale`; Entra ID's
    /// optional `xms_pl`), as its primary BCP 47 subtag.
    pub language: Option<String>,
}

fn text<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

impl Identity {
    /// Reads the verified claims; refuses a tenant not allowed here and a
    /// token whose groups did not fit in it.
    pub fn from_claims(config: &OidcConfig, claims: &Map<String, Value>) -> ApiResult<Identity> {
        let (provider, subject) = match config.provider {
            OidcProvider::EntraId => {
                let tid = text(claims, "tid")
                    .ok_or_else(|| refused("the ID token has no tenant id (tid)"))?;
                let allowed = config.tenant_id.as_deref() == Some(tid)
                    || config.allowed_tenants.iter().any(|t| t == tid);
                if !allowed {
                    return Err(refused(format!(
                        "your organisation's directory (tenant {tid}) may not sign in to this workspace; ask its administrators to add it"
                    )));
                }
                let oid = text(claims, "oid")
                    .ok_or_else(|| refused("the ID token has no object id (oid)"))?;
                (format!("entra:{tid}"), oid.to_string())
            }
            OidcProvider::Generic => {
                let sub =
                    text(claims, "sub").ok_or_else(|| refused("the ID token has no subject"))?;
                (config.issuer_url.clone(), sub.to_string())
            }
        };
        // Entra ID leaves groups out when there are too many for a token
        // (the "overage" claim); signing in without them would silently
        // drop access they grant, so the person is told instead.
        let overage = claims
            .get("_claim_names")
            .and_then(|names| names.get("groups"))
            .is_some()
            || claims.get("hasgroups").and_then(Value::as_bool) == Some(true);
        if overage {
            return Err(refused(
                "your account is in more groups than the identity provider puts in a sign-in token, and this workspace does not read them from Microsoft Graph; ask your administrator to assign the application's groups (Entra ID: \"Groups assigned to the application\") so they fit",
            ));
        }
        let groups: Vec<String> = match claims.get("groups") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let mut attributes = Map::new();
        for (attribute, claim) in &config.claim_mappings {
            match claims.get(claim) {
                Some(Value::String(s)) if !s.is_empty() => {
                    attributes.insert(attribute.clone(), Value::String(s.clone()));
                }
                Some(Value::Array(items)) => {
                    let values: Vec<Value> =
                        items.iter().filter(|v| v.is_string()).cloned().collect();
                    attributes.insert(attribute.clone(), Value::Array(values));
                }
                Some(Value::Number(n)) => {
                    attributes.insert(attribute.clone(), Value::String(n.to_string()));
                }
                Some(Value::Bool(b)) => {
                    attributes.insert(attribute.clone(), Value::String(b.to_string()));
                }
                _ => {}
            }
        }
        let email = text(claims, "email").map(str::to_string);
        let preferred = text(claims, "preferred_username")
            .or(email.as_deref())
            .unwrap_or(&subject);
        let display_name = text(claims, "name").unwrap_or(preferred);
        let language = text(claims, "locale")
            .or_else(|| text(claims, "xms_pl"))
            .and_then(|tag| tag.split(['-', '_']).next())
            .filter(|primary| {
                (2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_alphabetic())
            })
            .map(|primary| primary.to_ascii_lowercase());
        Ok(Identity {
            language,
            provider,
            username: username_from(preferred),
            display_name: display_name.chars().take(64).collect(),
            email,
            groups,
            attributes,
            subject,
        })
    }

    /// The role the provider's groups give, if it gives any.
    fn role(&self, config: &OidcConfig) -> Option<Role> {
        if config.admin_groups.is_empty() {
            return None;
        }
        Some(
            if self.groups.iter().any(|g| config.admin_groups.contains(g)) {
                Role::SystemAdmin
            } else {
                Role::Member
            },
        )
    }

    /// Finds or creates the account, refreshes what the provider says of
    /// it (name, email, role, attributes: channels they no longer admit are
    /// left now), records the sign-in and starts a session.
    pub async fn sign_in(&self, state: &AppState, config: &OidcConfig) -> ApiResult<LoginResponse> {
        let mut tx = state.db.begin().await?;
        let existing = db::sso::user_of(&mut *tx, &self.provider, &self.subject).await?;
        let role = self.role(config);
        let (user_id, created) = match existing {
            Some(id) => (id, false),
            None => {
                let id = new_id();
                let role = role.unwrap_or(Role::Member);
                let mut created = false;
                for attempt in 0..20 {
                    let username = match attempt {
                        0 => self.username.clone(),
                        n => format!("{}-{}", self.username, n + 1),
                    };
                    let email = if attempt == 0 {
                        self.email.as_deref()
                    } else {
                        None
                    };
                    if db::users::insert_external(
                        &mut *tx,
                        &id,
                        &username,
                        email,
                        &self.display_name,
                        role.as_str(),
                    )
                    .await?
                    {
                        created = true;
                        break;
                    }
                }
                if !created {
                    return Err(refused("no free username for this account; ask an admin"));
                }
                db::sso::link(&mut *tx, &self.provider, &self.subject, &id).await?;
                (id, true)
            }
        };
        let current = sqlx::query!(
            "SELECT role, deactivated_at FROM users WHERE id = $1",
            user_id
        )
        .fetch_one(&mut *tx)
        .await?;
        if current.deactivated_at.is_some() {
            return Err(refused("this account is deactivated; ask an admin"));
        }
        let role = role.map(|r| r.as_str().to_string()).unwrap_or(current.role);
        db::users::set_profile(
            &mut *tx,
            &user_id,
            &self.display_name,
            self.email.as_deref(),
            &role,
        )
        .await?;
        // The provider's language is where a new account starts; after
        // that, the person's own choice stands.
        if created && self.language.is_some() {
            db::users::set_language(&mut *tx, &user_id, self.language.as_deref()).await?;
        }
        audit::record(
            &mut *tx,
            audit::Entry {
                kind: audit::kind::SSO_SIGNED_IN,
                actor_id: Some(&user_id),
                user_id: Some(&user_id),
                reason: if created {
                    "signed in through the identity provider for the first time; account created".into()
                } else {
                    "signed in through the identity provider".into()
                },
                data: serde_json::json!({"provider": self.provider, "groups": self.groups.len(), "role": role}),
                ..Default::default()
            },
        )
        .await?;
        super::sessions::changed(&state.session_cache, &mut *tx, &user_id).await?;
        db::commit(tx).await?;
        auth::replace_attributes(
            state,
            &user_id,
            &user_id,
            self.attributes.clone(),
            "the identity provider's claims at sign-in",
        )
        .await?;
        let token = auth::start_session(&state.db, &user_id).await?;
        let user = auth::find_user(&state.db, &user_id)
            .await?
            .ok_or_else(|| refused("the account vanished"))?;
        Ok(LoginResponse::bearer(token, user))
    }
}

/// A username from what the provider calls someone: the part before an
/// `@`, lowercased, with anything a username cannot hold made a `-`.
fn username_from(preferred: &str) -> String {
    let local = preferred.split('@').next().unwrap_or(preferred);
    let mut name: String = local
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(56)
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    name = name
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if name.is_empty() {
        "user".into()
    } else {
        name
    }
}

/// Records a refused sign-in.
pub async fn record_refusal(state: &AppState, why: &str) {
    let _ = audit::record(
        &state.db,
        audit::Entry {
            kind: audit::kind::SSO_REFUSED,
            reason: why.to_string(),
            ..Default::default()
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_come_from_the_local_part() {
        assert_eq!(username_from("Alice.Martin@agency.example"), "alice.martin");
        assert_eq!(username_from("Zoë Ö'Neil"), "zo-neil");
        assert_eq!(username_from("@@@"), "user");
    }

    #[test]
    fn base64url_decodes_jwt_segments() {
        assert_eq!(base64_url("eyJhIjoxfQ").unwrap(), br#"{"a":1}"#);
        assert!(base64_url("not base64!").is_none());
    }
}
