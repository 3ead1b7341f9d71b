//! Accounts: passwords (argon2id), session and personal access tokens, the
//! bootstrap admin, and the [`Caller`] every authenticated handler receives.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use axum::{extract::FromRequestParts, http::request::Parts};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::{
    audit,
    authz::{policy::Subject, roles::Role, sweep},
    db::{self, new_id},
    error::{ApiError, ApiResult},
    input::{self, Valid},
    state::AppState,
    throttle::Attempt,
};

/// How long a login session lasts without use.
const SESSION_LIFETIME: Duration = Duration::days(30);

/// The token of an `Authorization: Bearer …` header (the scheme's name is
/// case-insensitive, as HTTP has it).
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The cookie a browser's session token travels in: `HttpOnly`, so no
/// script in the page (an injected one included) can read it.
pub const SESSION_COOKIE: &str = "entente_session";
/// The header a request authenticated by [`SESSION_COOKIE`] must carry,
/// unless it is a `GET` or `HEAD`: the [`csrf_token`] its sign-in returned.
/// A page of another site can make the browser send the cookie (were it not
/// `SameSite=Strict`), but it cannot know this value.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A cookie's value, from the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name && !value.is_empty()).then_some(value)
        })
}

/// The CSRF token of a cookie session: derived from its session token, so
/// nothing is stored and nobody without the token can compute it.
pub fn csrf_token(session_token: &str) -> String {
    Sha256::digest(format!("entente csrf\0{session_token}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The token a request is made with: `Authorization: Bearer …`, else the
/// session cookie, which for anything but `GET` and `HEAD` must come with
/// its [`CSRF_HEADER`].
pub fn credential<'h>(
    method: &axum::http::Method,
    headers: &'h axum::http::HeaderMap,
) -> ApiResult<Option<&'h str>> {
    if let Some(token) = bearer(headers) {
        return Ok(Some(token));
    }
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    if !method.is_safe() {
        let expected = csrf_token(token);
        let given = headers.get(CSRF_HEADER).map(|v| v.as_bytes());
        // Compared in full whatever differs first: timing tells nothing.
        let matches = given.is_some_and(|given| {
            given.len() == expected.len()
                && given
                    .iter()
                    .zip(expected.as_bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !matches {
            return Err(ApiError::forbidden(
                "a request signed in with the session cookie needs the X-CSRF-Token header \
                 set to the csrfToken its sign-in returned",
            ));
        }
    }
    Ok(Some(token))
}

/// The `Set-Cookie` value that keeps `token` in the browser (or, with no
/// token, forgets it): `HttpOnly`, `SameSite=Strict`, and `Secure` when the
/// workspace is reached over HTTPS.
pub fn session_cookie(token: Option<&str>, secure: bool) -> axum::http::HeaderValue {
    http_only_cookie(
        SESSION_COOKIE,
        token.map(|t| (t, SESSION_LIFETIME.num_seconds())),
        "/",
        "Strict",
        secure,
    )
}

/// The `Set-Cookie` value of an `HttpOnly` cookie `name` on `path`: set to
/// `value` for its lifetime in seconds, or, with none, forgotten now.
pub fn http_only_cookie(
    name: &str,
    value: Option<(&str, i64)>,
    path: &str,
    same_site: &str,
    secure: bool,
) -> axum::http::HeaderValue {
    let (value, age) = value.unwrap_or(("", 0));
    let secure = if secure { "; Secure" } else { "" };
    axum::http::HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={age}; HttpOnly; SameSite={same_site}{secure}"
    ))
    .expect("tokens and paths are header text")
}

/// Whether the browser reached the workspace over HTTPS: the site URL says
/// so, or the proxy in front of it does.
pub fn over_https(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    state.config().workspace.site_url.starts_with("https://")
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// The address a request came from, for throttling: the last address in
/// `X-Forwarded-For` (the one the nearest proxy, such as the Ingress,
/// appended), else the connection's peer. Behind an Ingress every peer is
/// the Ingress, and throttling it would lock everyone out; a client that
/// sends the header itself only picks its own key, and the per-account
/// throttle still holds. Requests made in-process (tests) have none.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl ClientAddress {
    fn of(parts: &Parts) -> Option<std::net::IpAddr> {
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|last| last.trim().parse().ok());
        forwarded.or_else(|| {
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip())
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(ClientAddress::of(parts)))
    }
}

/// A fresh bearer token (256 random bits, hex) and the hash stored for it.
pub(crate) fn new_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = token_hash(&token);
    (token, hash)
}

pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The authenticated user making a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub role: Role,
    pub token_id: String,
    /// What access policies read (nation, clearance, …).
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The GuestPolicy a guest came in under.
    pub guest_policy: Option<String>,
}

impl Caller {
    /// The caller as access policies see them.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            role: self.role,
            attributes: &self.attributes,
            guest_policy: self.guest_policy.as_deref(),
        }
    }

    pub fn require_admin(&self) -> ApiResult<()> {
        if self.role == Role::SystemAdmin {
            Ok(())
        } else {
            Err(ApiError::forbidden("only a system admin may do this"))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token =
            credential(&parts.method, &parts.headers)?.ok_or_else(ApiError::unauthenticated)?;
        let caller = authenticate(state, token).await?;
        state.rate_limit().check(&caller.user_id, &state.metrics)?;
        Ok(caller)
    }
}

/// The caller a bearer token stands for, if it is valid, unexpired, unrevoked
/// and its user active (a guest whose access ended is not).
pub async fn authenticate(state: &AppState, token: &str) -> ApiResult<Caller> {
    let hash = token_hash(token);
    if let Some(caller) = state.session_cache.get(&hash) {
        state.token_usage.used(&caller.token_id);
        return Ok(caller);
    }
    let generation = state.session_cache.generation();
    let row = db::tokens::find(&state.db, &hash).await?;
    let (token_id, user_id, role, attributes, guest_policy, expires) =
        row.ok_or_else(ApiError::unauthenticated)?;
    state.token_usage.used(&token_id);
    let caller = Caller {
        user_id,
        role: Role::parse(&role).unwrap_or(Role::Guest),
        token_id,
        attributes: match attributes {
            serde_json::Value::Object(map) => map,
            _ => Default::default(),
        },
        guest_policy,
    };
    state
        .session_cache
        .put(hash, caller.clone(), expires, generation);
    Ok(caller)
}

/// A user as the API shows it. Guests are marked as guests.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub display_name: String,
    pub role: String,
    /// A guest: someone from outside the organisation, limited to the
    /// channels their GuestPolicy lists.
    pub guest: bool,
    /// When a guest's access ends.
    pub access_expires_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// For a partner's user (role `remote`): the partner workspace's id.
    /// They are shown here, and never sign in here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// For a partner's user: their organisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// When a system admin deactivated the account (only admins see
    /// deactivated accounts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<DateTime<Utc>>,
    /// The language they read and write (BCP 47); absent: the
    /// workspace's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// The columns of [`User`], from `users`.
macro_rules! user_columns {
    () => {
        "id, username, email, display_name, role,
         role = 'guest' OR (role = 'remote' AND attributes->>'guest' = 'true') AS guest,
         access_expires_at, attributes, created_at, origin, organisation, deactivated_at, language"
    };
}
pub(crate) use user_columns;

pub async fn find_user(db: &PgPool, id: &str) -> ApiResult<Option<User>> {
    // Not `query_as!`: the columns are `user_columns!()`, one definition of
    // a user as the API shows it, joined with `concat!`, which `query!` does not take.
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE id = $1 AND deactivated_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// One member of a channel: who they are, and their role in it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub user: User,
    /// `admin` or `member`.
    pub channel_role: String,
}

/// The active members of `channel_id`, local and partners' users alike,
/// by username; without their email addresses, which are not every
/// member's to see.
pub async fn members(db: &PgPool, channel_id: &str) -> ApiResult<Vec<Member>> {
    // Not `query_as!`: the columns are `user_columns!()`, one definition of
    // a user as the API shows it, joined with `concat!`, which `query!` does not take.
    let mut members: Vec<Member> = sqlx::query_as(concat!(
        "SELECT m.role AS channel_role, u.* FROM channel_members m
         JOIN LATERAL (SELECT ",
        user_columns!(),
        " FROM users WHERE id = m.user_id AND deactivated_at IS NULL) u ON true
         WHERE m.channel_id = $1 ORDER BY lower(u.username)"
    ))
    .bind(channel_id)
    .fetch_all(db)
    .await?;
    for member in &mut members {
        member.user.email = None;
    }
    Ok(members)
}

/// Creates the configured admin at start-up if no user of that name exists;
/// an existing admin's password is left alone (it may have been changed).
pub async fn bootstrap_admin(
    pool: &PgPool,
    username: &str,
    email: Option<&str>,
    password: &str,
) -> Result<bool, db::Error> {
    db::users::insert_admin_once(
        pool,
        &new_id(),
        username,
        email,
        &super::passwords::hash_once(password),
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    #[schema(format = "line", min_length = 1, max_length = 64)]
    pub username: String,
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
    /// For a browser: keep the session in an `HttpOnly` cookie instead of
    /// returning its token, and return the `csrfToken` other requests
    /// than `GET` must send as `X-CSRF-Token`.
    #[serde(default)]
    pub cookie: bool,
}

impl Valid for LoginRequest {
    fn valid(&self) -> ApiResult<()> {
        input::line(&self.username, 64).map_err(input::at("username"))?;
        password_length(&self.password)
    }
}

/// Any password is at most [`input::PASSWORD_MAX`] characters, so checking
/// one costs what checking any other does.
pub(crate) fn password_length(password: &str) -> ApiResult<()> {
    if password.is_empty() || password.chars().count() > input::PASSWORD_MAX {
        return Err(ApiError::invalid(
            "password",
            format!("a password is 1-{} characters", input::PASSWORD_MAX),
        ));
    }
    Ok(())
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// The bearer token; absent when the session is kept in a cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub user: User,
    /// For a cookie session: the `X-CSRF-Token` its requests send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// `oidc` when the account signs in through the identity provider:
    /// signing out ends the provider's session too
    /// (`/api/v1/auth/oidc/logout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_provider: Option<String>,
}

impl LoginResponse {
    /// A new session's answer, its token in the body.
    pub fn bearer(token: String, user: User) -> Self {
        LoginResponse {
            token: Some(token),
            user,
            csrf_token: None,
            identity_provider: None,
        }
    }

    /// The answer to a browser that asked for a cookie: the token moves to
    /// a `Set-Cookie` header (returned), the body keeps its CSRF token.
    pub fn into_cookie(mut self, secure: bool) -> (axum::http::HeaderValue, Self) {
        let token = self.token.take().unwrap_or_default();
        self.csrf_token = Some(csrf_token(&token));
        (session_cookie(Some(&token), secure), self)
    }
}

/// Signs a local user in with their password: a new session. Throttled per
/// account and per address ([`super::throttle`]); an unknown user costs a
/// full password check, like a wrong password.
pub async fn login(
    state: &AppState,
    request: LoginRequest,
    address: Option<std::net::IpAddr>,
) -> ApiResult<LoginResponse> {
    let attempt = Attempt::new(
        "wrong passwords",
        Some(format!("account:{}", request.username.to_lowercase())),
        address,
    );
    attempt.allowed(&state.throttle)?;
    let row = sqlx::query!(
        "SELECT id, password_hash, role,
                CASE WHEN expired_at IS NOT NULL OR access_expires_at <= now()
                     THEN COALESCE(least(expired_at, access_expires_at), now()) END AS ended
         FROM users WHERE lower(username) = lower($1) AND deactivated_at IS NULL",
        request.username
    )
    .fetch_optional(&state.db)
    .await?
    .map(|row| (row.id, row.password_hash, row.ended, row.role));
    // The same answer for an unknown user and a wrong password.
    let refused = || ApiError {
        status: axum::http::StatusCode::UNAUTHORIZED,
        code: "unauthenticated",
        message: "wrong username or password".into(),
        field: None,
        retry_after: None,
    };
    let hash = row.as_ref().and_then(|(_, hash, _, _)| hash.as_deref());
    let matches = state.passwords.verify(&request.password, hash).await?;
    let Some((user_id, _, ended, role)) = row.filter(|_| matches) else {
        attempt.failed(state).await?;
        return Err(refused());
    };
    attempt.succeeded(&state.throttle);
    // With local sign-in off, passwords are for a break-glass system admin
    // alone (the identity provider may be down when one is needed).
    if !state.config().identity.local.enabled && role != Role::SystemAdmin.as_str() {
        return Err(ApiError::forbidden(
            "password sign-in is off in this workspace: sign in through your organisation's identity provider",
        ));
    }
    if let Some(ended) = ended {
        // Only someone who knows the password learns this.
        return Err(ApiError::forbidden(format!(
            "your guest access ended at {}; ask your host for a new invitation",
            ended.to_rfc3339()
        )));
    }
    let token = start_session(&state.db, &user_id).await?;
    let user = find_user(&state.db, &user_id).await?.ok_or_else(refused)?;
    Ok(LoginResponse::bearer(token, user))
}

/// When tokens were last used, kept in memory and written in one statement
/// every [`TokenUsage::EVERY`] ([`TokenUsage::run`]): a request only reads
/// its token, so a burst of requests is not a burst of row updates (each
/// was a write and a commit). `last_used_at` is at most that late.
#[derive(Default)]
pub struct TokenUsage {
    pending: std::sync::Mutex<std::collections::HashMap<String, DateTime<Utc>>>,
}

impl TokenUsage {
    pub const EVERY: std::time::Duration = std::time::Duration::from_secs(30);

    /// `token_id` was used now.
    pub fn used(&self, token_id: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.get_mut(token_id) {
            Some(at) => *at = Utc::now(),
            None => {
                pending.insert(token_id.to_string(), Utc::now());
            }
        }
    }

    /// Writes what was recorded since the last flush.
    pub async fn flush(&self, db: &PgPool) -> Result<(), db::Error> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if pending.is_empty() {
            return Ok(());
        }
        let (ids, at): (Vec<String>, Vec<DateTime<Utc>>) = pending.into_iter().unzip();
        db::tokens::mark_used(db, &ids, &at).await
    }

    /// Flushes every [`TokenUsage::EVERY`] while the server runs.
    pub async fn run(state: AppState) {
        let mut every = tokio::time::interval(Self::EVERY);
        loop {
            every.tick().await;
            if let Err(error) = state.token_usage.flush(&state.db).await {
                tracing::warn!(%error, "cannot record when tokens were used; will retry");
            }
        }
    }
}

/// Ends the caller's session; their open WebSockets on it close.
pub async fn logout(state: &AppState, caller: &Caller) -> ApiResult<()> {
    let mut tx = state.db.begin().await?;
    db::tokens::revoke(&mut *tx, &caller.token_id).await?;
    super::sessions::changed(&state.session_cache, &mut *tx, &caller.user_id).await?;
    db::commit(tx).await?;
    Ok(())
}

/// Revokes one of the caller's personal access tokens.
pub async fn revoke_token(state: &AppState, caller: &Caller, token_id: &str) -> ApiResult<()> {
    let mut tx = state.db.begin().await?;
    if !db::tokens::revoke_personal(&mut *tx, token_id, &caller.user_id).await? {
        return Err(ApiError::not_found("token"));
    }
    super::sessions::changed(&state.session_cache, &mut *tx, &caller.user_id).await?;
    db::commit(tx).await?;
    Ok(())
}

/// A new login session for `user_id`; returns its bearer token.
pub async fn start_session<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    user_id: &str,
) -> Result<String, db::Error> {
    let (token, hash) = new_token();
    db::tokens::insert(
        executor,
        db::tokens::NewToken {
            id: &new_id(),
            hash: &hash,
            user_id,
            kind: "session",
            name: None,
            expires_at: Some(Utc::now() + SESSION_LIFETIME),
        },
    )
    .await?;
    Ok(token)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUser {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub username: String,
    /// At least `identity.local.minPasswordLength` characters (12 unless configured).
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
    #[serde(default)]
    #[schema(format = "email-address", max_length = 254)]
    pub email: Option<String>,
    #[serde(default)]
    #[schema(format = "line", min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
    #[serde(default = "default_role")]
    #[schema(value_type = RoleName)]
    pub role: String,
    #[serde(default)]
    pub attributes: Attributes,
}

impl Valid for CreateUser {
    fn valid(&self) -> ApiResult<()> {
        username(&self.username)?;
        password_length(&self.password)?;
        if let Some(email) = &self.email {
            input::email(email).map_err(input::at("email"))?;
        }
        if let Some(name) = &self.display_name {
            input::line(name, input::DISPLAY_NAME_MAX).map_err(input::at("displayName"))?;
        }
        self.attributes.valid()
    }
}

/// The role a new account gets.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub enum RoleName {
    #[schema(rename = "system_admin")]
    SystemAdmin,
    #[schema(rename = "member")]
    Member,
    #[schema(rename = "guest")]
    Guest,
}

/// A user's attributes (nation, clearance, …), which access policies read:
/// at most 32, each a string, a number, a boolean or a list of strings.
#[derive(Default, Deserialize)]
#[serde(transparent)]
pub struct Attributes(pub serde_json::Map<String, serde_json::Value>);

impl utoipa::PartialSchema for Attributes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
        let text = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::Custom("line".into())))
                .max_length(Some(input::ATTRIBUTE_VALUE_MAX))
        };
        let value = OneOfBuilder::new()
            .item(text())
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(
                ArrayBuilder::new()
                    .items(text())
                    .max_items(Some(input::ATTRIBUTE_LIST_MAX)),
            );
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "attribute name → a string, a number, a boolean or a list of strings",
            ))
            .max_properties(Some(input::ATTRIBUTES_MAX))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(input::ATTRIBUTE_NAME_PATTERN)),
            ))
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::RefOr(
                utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::OneOf(value.build())),
            )))
            .into()
    }
}

impl utoipa::ToSchema for Attributes {}

impl Valid for Attributes {
    fn valid(&self) -> ApiResult<()> {
        input::attributes(&self.0).map_err(input::at("attributes"))
    }
}

fn default_role() -> String {
    "member".into()
}

/// A username: 1-64 lower-case ASCII letters, digits, '.', '_' or '-',
/// starting with a letter or digit. The one rule for every account,
/// local or a partner's (whose workspace held it to the same rule).
pub(crate) fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

/// A new account's username.
pub(crate) fn username(username: &str) -> ApiResult<()> {
    if !valid_username(username) {
        return Err(ApiError::invalid(
            "username",
            "a username is 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit",
        ));
    }
    Ok(())
}

/// A new account's password is long enough for this workspace (its other
/// limits were checked with the request).
pub(crate) fn check_password(state: &AppState, password: &str) -> ApiResult<()> {
    let min = state.config().identity.local.min_password_length as usize;
    if password.chars().count() < min {
        return Err(ApiError::invalid(
            "password",
            format!("a password needs at least {min} characters"),
        ));
    }
    Ok(())
}

/// Creates a local account.
pub async fn create_user(state: &AppState, request: CreateUser) -> ApiResult<User> {
    check_password(state, &request.password)?;
    let role = Role::parse(&request.role)
        .ok_or_else(|| ApiError::invalid("role", "role must be system_admin, member or guest"))?;
    let hash = state.passwords.hash(&request.password).await?;
    let id = new_id();
    let inserted = db::users::insert(
        &state.db,
        db::users::NewUser {
            id: &id,
            username: &request.username,
            email: request.email.as_deref(),
            display_name: request.display_name.as_deref().unwrap_or(&request.username),
            password_hash: &hash,
            role: role.as_str(),
            attributes: serde_json::Value::Object(request.attributes.0),
            guest_policy: None,
            access_expires_at: None,
        },
    )
    .await?;
    if !inserted {
        return Err(ApiError::conflict(
            "username",
            "that username or email is taken",
        ));
    }
    find_user(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))
}

/// `actor` (a system admin) replaces a user's attributes (nation,
/// clearance, …); channels they no longer admit are left at once.
pub async fn set_attributes(
    state: &AppState,
    actor: &str,
    user_id: &str,
    attributes: serde_json::Map<String, serde_json::Value>,
) -> ApiResult<User> {
    replace_attributes(
        state,
        actor,
        user_id,
        attributes,
        "a system admin set the user's attributes",
    )
    .await
}

/// Replaces a user's attributes, recording `reason` if they changed; the
/// channels they no longer admit are left at once.
pub(crate) async fn replace_attributes(
    state: &AppState,
    actor: &str,
    user_id: &str,
    attributes: serde_json::Map<String, serde_json::Value>,
    reason: &str,
) -> ApiResult<User> {
    let mut tx = state.db.begin().await?;
    let before = sqlx::query_scalar!(
        "SELECT attributes FROM users WHERE id = $1 AND deactivated_at IS NULL FOR UPDATE",
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::not_found("user"))?;
    let after = serde_json::Value::Object(attributes);
    db::users::set_attributes(&mut *tx, user_id, &after).await?;
    // What their tokens stand for changed: no replica may keep the old attributes.
    super::sessions::changed(&state.session_cache, &mut *tx, user_id).await?;
    if before != after {
        audit::record(
            &mut *tx,
            audit::Entry {
                kind: audit::kind::ATTRIBUTES_CHANGED,
                actor_id: Some(actor),
                user_id: Some(user_id),
                reason: reason.into(),
                data: serde_json::json!({"before": before, "after": after}),
                ..Default::default()
            },
        )
        .await?;
    }
    db::commit(tx).await?;
    // Channels the new attributes no longer admit are left now, not at the
    // next sweep: the answer to this request already reflects it.
    sweep::user(state, user_id, Some(actor))
        .await
        .map_err(ApiError::after_commit)?;
    find_user(&state.db, user_id)
        .await
        .map_err(ApiError::after_commit)?
        .ok_or_else(|| ApiError::not_found("user"))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// So you can tell it apart later.
    #[schema(format = "line", min_length = 1, max_length = 128)]
    pub name: String,
}

impl Valid for CreateToken {
    fn valid(&self) -> ApiResult<()> {
        input::line(&self.name, input::TOKEN_NAME_MAX).map_err(input::at("name"))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    pub id: String,
    /// Shown once; only its hash is stored.
    pub token: String,
}

/// A personal access token of `user_id`'s, for a bot or an integration: no
/// expiry, revocable.
pub async fn create_token(
    state: &AppState,
    user_id: &str,
    request: CreateToken,
) -> ApiResult<CreatedToken> {
    // A token outlives the session that made it: a stolen session minting
    // them in bulk is slowed down, and audited.
    let attempt = Attempt::new(
        "access tokens created",
        Some(format!("tokens:{user_id}")),
        None,
    );
    attempt.allowed(&state.throttle)?;
    attempt.failed(state).await?;
    let (token, hash) = new_token();
    let id = new_id();
    db::tokens::insert(
        &state.db,
        db::tokens::NewToken {
            id: &id,
            hash: &hash,
            user_id,
            kind: "personal",
            name: Some(request.name.trim()),
            expires_at: None,
        },
    )
    .await?;
    Ok(CreatedToken { id, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let with = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(axum::http::header::AUTHORIZATION, value.parse().unwrap());
            bearer(&headers).map(str::to_string)
        };
        assert_eq!(with("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("BEARER  abc ").as_deref(), Some("abc"));
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("Bearer "), None);
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, hash_a) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(hash_a, token_hash(&a));
        assert_ne!(hash_a, a.as_bytes());
    }

    #[test]
    fn usernames_are_plain() {
        for ok in ["alice", "j.doe", "a_b-c", "x1"] {
            assert!(valid_username(ok), "{ok}");
        }
        for bad in ["", "Alice", "-lead", "a b", "ünïcode", &"x".repeat(65)] {
            assert!(!valid_username(bad), "{bad}");
        }
    }
}
