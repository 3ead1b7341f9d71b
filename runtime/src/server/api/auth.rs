//! Accounts and sign-in over HTTP ([`crate::server::auth`]).

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    Json,
};

use crate::server::{
    api::extract::{Body, Path},
    auth::{
        self, Caller, ClientAddress, CreateToken, CreateUser, CreatedToken, LoginRequest,
        LoginResponse, User,
    },
    authz::roles::Role,
    db,
    error::{ApiError, ApiResult},
    oidc,
    state::AppState,
};

#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginRequest, responses((status = 200, body = LoginResponse), (status = 401, description = "wrong username or password", body = ApiError), (status = 403, description = "the password is right, but a guest's access ended", body = ApiError), (status = 429, description = "too many wrong passwords for this account or from this address (Retry-After)", body = ApiError), (status = 503, description = "too many sign-ins being checked (Retry-After)", body = ApiError)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Body(request): Body<LoginRequest>,
) -> ApiResult<(HeaderMap, Json<LoginResponse>)> {
    let cookie = request.cookie;
    let session = auth::login(&state, request, address).await?;
    Ok(signed_in(&state, &headers, cookie, session))
}

/// A new session as its client asked for it: the bearer token in the body,
/// or for a browser ([`LoginRequest::cookie`]) in an `HttpOnly` cookie,
/// with the CSRF token in the body.
pub(crate) fn signed_in(
    state: &AppState,
    request: &HeaderMap,
    cookie: bool,
    session: LoginResponse,
) -> (HeaderMap, Json<LoginResponse>) {
    let mut headers = HeaderMap::new();
    if !cookie {
        return (headers, Json(session));
    }
    let (set_cookie, session) = session.into_cookie(auth::over_https(state, request));
    headers.insert(header::SET_COOKIE, set_cookie);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (headers, Json(session))
}

/// Revokes the token the request was made with (and a browser forgets its
/// session cookie).
#[utoipa::path(post, path = "/api/v1/auth/logout", responses((status = 204, description = "session revoked"), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError)), security(("bearer" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
) -> ApiResult<(StatusCode, HeaderMap)> {
    auth::logout(&state, &caller).await?;
    let mut out = HeaderMap::new();
    if auth::cookie(&headers, auth::SESSION_COOKIE).is_some() {
        let secure = auth::over_https(&state, &headers);
        out.insert(header::SET_COOKIE, auth::session_cookie(None, secure));
    }
    Ok((StatusCode::NO_CONTENT, out))
}

/// The caller's session: who they are and, for a session kept in a
/// cookie, the CSRF token its other requests send. A browser asks on load.
#[utoipa::path(get, path = "/api/v1/auth/session", responses((status = 200, body = LoginResponse), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError)), security(("bearer" = [])))]
pub async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
) -> ApiResult<Json<LoginResponse>> {
    let user = auth::find_user(&state.db, &caller.user_id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    let csrf_token = match auth::bearer(&headers) {
        Some(_) => None,
        None => auth::cookie(&headers, auth::SESSION_COOKIE).map(auth::csrf_token),
    };
    let identity_provider = db::sso::linked(&state.db, &caller.user_id)
        .await?
        .then(|| "oidc".to_string());
    Ok(Json(LoginResponse {
        token: None,
        user,
        csrf_token,
        identity_provider,
    }))
}

/// After signing out here, ends the identity provider's session too
/// (RP-initiated logout): to the provider's end-session endpoint, which
/// sends the browser back to the workspace's page; straight to the page
/// when the provider has none.
#[utoipa::path(get, path = "/api/v1/auth/oidc/logout", responses((status = 303, description = "to the identity provider's end-session endpoint, or back to the client"), (status = 404, description = "no OpenID Connect provider is configured", body = ApiError), (status = 503, description = "the identity provider cannot be reached (Retry-After)", body = ApiError)))]
pub async fn oidc_logout(State(state): State<AppState>) -> ApiResult<(StatusCode, HeaderMap)> {
    let oidc = state
        .oidc
        .clone()
        .ok_or_else(|| ApiError::not_found("OpenID Connect provider"))?;
    let site = state.config().workspace.site_url.clone();
    let location = oidc
        .end_session_url(&site)
        .await?
        .unwrap_or_else(|| "/".into());
    let mut out = HeaderMap::new();
    out.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(|_| ApiError::not_found("end-session URL"))?,
    );
    Ok((StatusCode::SEE_OTHER, out))
}

#[utoipa::path(get, path = "/api/v1/users/me", responses((status = 200, body = User), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError)), security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<User>> {
    auth::find_user(&state.db, &caller.user_id)
        .await?
        .map(Json)
        .ok_or_else(ApiError::unauthenticated)
}

/// A system admin creates an account.
#[utoipa::path(post, path = "/api/v1/users", request_body = CreateUser, responses((status = 201, body = User), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 409, description = "username or email taken", body = ApiError)), security(("bearer" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<CreateUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    caller.require_admin()?;
    let user = auth::create_user(&state, request).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// A system admin replaces a user's attributes (nation, clearance, …).
#[utoipa::path(put, path = "/api/v1/users/{id}/attributes", params(("id" = String, Path)), request_body = auth::Attributes, responses((status = 200, body = User), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn set_attributes(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    Body(attributes): Body<auth::Attributes>,
) -> ApiResult<Json<User>> {
    caller.require_admin()?;
    let user = auth::set_attributes(&state, &caller.user_id, &user_id, attributes.0).await?;
    Ok(Json(user))
}

/// A personal access token for a bot or an integration: no expiry, revocable.
#[utoipa::path(post, path = "/api/v1/users/me/tokens", request_body = CreateToken, responses((status = 201, body = CreatedToken), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "visible but not allowed", body = ApiError), (status = 429, description = "too many tokens created lately (Retry-After)", body = ApiError)), security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    if caller.role == Role::Guest {
        return Err(ApiError::forbidden("guests cannot create access tokens"));
    }
    let token = auth::create_token(&state, &caller.user_id, request).await?;
    Ok((StatusCode::CREATED, Json(token)))
}

#[utoipa::path(get, path = "/api/v1/users/me/tokens", responses((status = 200, body = Vec<db::tokens::TokenInfo>), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError)), security(("bearer" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<db::tokens::TokenInfo>>> {
    Ok(Json(
        db::tokens::personal(&state.db, &caller.user_id).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/users/me/tokens/{id}", params(("id" = String, Path)), responses((status = 204, description = "revoked"), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(token_id): Path<String>,
) -> ApiResult<StatusCode> {
    auth::revoke_token(&state, &caller, &token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How people sign in here, for the sign-in page: passwords, and the
/// identity provider's button if there is one.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Providers {
    /// Whether accounts sign in with a password (when single sign-on is
    /// on, only a break-glass system admin may, if local sign-in is off).
    pub local: bool,
    /// The OpenID Connect provider's button.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<ProviderButton>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderButton {
    pub text: String,
    /// Where the button goes (a full page load).
    pub url: String,
}

#[utoipa::path(get, path = "/api/v1/auth/providers", responses((status = 200, body = Providers)))]
pub async fn providers(State(state): State<AppState>) -> Json<Providers> {
    let config = state.config();
    Json(Providers {
        local: config.identity.local.enabled,
        oidc: config.identity.oidc.as_ref().map(|oidc| ProviderButton {
            text: oidc
                .button_text
                .clone()
                .unwrap_or_else(|| "Sign in with your organisation".into()),
            url: "/api/v1/auth/oidc/start".into(),
        }),
    })
}

/// Sends the browser to the identity provider, with a cookie that ties the
/// sign-in to it.
#[utoipa::path(get, path = "/api/v1/auth/oidc/start", responses((status = 303, description = "to the identity provider"), (status = 404, description = "no OpenID Connect provider is configured", body = ApiError), (status = 503, description = "the identity provider cannot be reached (Retry-After)", body = ApiError)))]
pub async fn oidc_start(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, HeaderMap)> {
    let oidc = state
        .oidc
        .clone()
        .ok_or_else(|| ApiError::not_found("OpenID Connect provider"))?;
    let (url, flow) = oidc.begin(&state).await?;
    let mut out = HeaderMap::new();
    out.insert(
        header::LOCATION,
        HeaderValue::from_str(&url).map_err(|_| ApiError::not_found("provider URL"))?,
    );
    out.insert(
        header::SET_COOKIE,
        flow_cookie(Some(&flow), auth::over_https(&state, &headers)),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((StatusCode::SEE_OTHER, out))
}

/// The cookie of a sign-in under way: `SameSite=Lax`, as the provider
/// sends the browser back from another site, and only for the callback.
fn flow_cookie(state: Option<&str>, secure: bool) -> HeaderValue {
    auth::http_only_cookie(
        oidc::FLOW_COOKIE,
        state.map(|s| (s, i64::from(crate::server::db::sso::FLOW_LIFETIME_SECONDS))),
        oidc::CALLBACK_PATH,
        "Lax",
        secure,
    )
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's refusal (the person cancelled, or was not allowed).
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Where the identity provider sends the browser back: signed in (a
/// session cookie) and on to the client, or to the sign-in page with why not.
#[utoipa::path(get, path = "/api/v1/auth/oidc/callback", params(Callback), responses((status = 303, description = "to the web client, signed in, or to its sign-in page with the reason")))]
pub async fn oidc_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(callback): axum::extract::Query<Callback>,
) -> (StatusCode, HeaderMap) {
    let secure = auth::over_https(&state, &headers);
    let mut out = HeaderMap::new();
    out.append(header::SET_COOKIE, flow_cookie(None, secure));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let result = match (&state.oidc, &callback) {
        (None, _) => Err("no OpenID Connect provider is configured".to_string()),
        (
            _,
            Callback {
                error: Some(error),
                error_description,
                ..
            },
        ) => Err(format!(
            "the identity provider refused: {}",
            error_description.as_deref().unwrap_or(error)
        )),
        (
            Some(oidc),
            Callback {
                code: Some(code),
                state: Some(returned),
                ..
            },
        ) => oidc
            .finish(
                &state,
                code,
                returned,
                auth::cookie(&headers, oidc::FLOW_COOKIE),
            )
            .await
            .map_err(|e| e.message),
        _ => Err("the identity provider's answer has no code".to_string()),
    };
    let location = match result {
        Ok(session) => {
            let (cookie, _) = session.into_cookie(secure);
            out.append(header::SET_COOKIE, cookie);
            "/".to_string()
        }
        Err(why) => {
            oidc::record_refusal(&state, &why).await;
            format!(
                "/#/signin-error/{}",
                crate::server::api::files::percent_encode(&why)
            )
        }
    };
    out.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("percent-encoded"),
    );
    (StatusCode::SEE_OTHER, out)
}
