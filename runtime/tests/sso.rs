//! Single sign-on with OpenID Connect against a real provider: npm's
//! oidc-provider (OpenID certified), emitting Entra ID's `tid`, `oid` and
//! `groups` in the ID token, started by each test on 127.0.0.1. Sign-ins go
//! through it as a browser's would (its login form, redirects, cookies);
//! the ID-token checks are also run directly on tokens it signed.

mod common;

use std::path::PathBuf;

use axum::http::{header, Method, Request, StatusCode};
use common::{
    idp::{self, browser_sign_in, Idp},
    Workspace,
};
use serde_json::{json, Value};

fn people() -> Value {
    json!({
        "alice": {"sub": "alice-sub", "tid": "tenant-home", "oid": "oid-alice", "email": "alice.martin@agency.example",
                  "preferred_username": "alice.martin@agency.example", "name": "Alice Martin",
                  "groups": ["g-admins", "g-ops"], "nation": "FR", "clearance": "SECRET", "locale": "fr-FR"},
        "bob": {"sub": "bob-sub", "tid": "tenant-partner", "oid": "oid-bob", "email": "bob@partner.example",
                "preferred_username": "bob@partner.example", "name": "Bob Jones", "groups": ["g-ops"], "nation": "DE"},
        "mallory": {"sub": "mallory-sub", "tid": "tenant-elsewhere", "oid": "oid-mallory",
                    "preferred_username": "mallory@elsewhere.example", "name": "Mallory"},
        "carol": {"sub": "carol-sub", "tid": "tenant-home", "oid": "oid-carol", "preferred_username": "carol@agency.example",
                  "name": "Carol", "_claim_names": {"groups": "src1"},
                  "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/oid-carol/getMemberObjects"}}}
    })
}

/// A workspace signing in through a provider of its own, on a known port
/// (the provider holds its callback URL).
struct Site {
    ws: Workspace,
    port: u16,
    idp: Idp,
    _dir: tempfile::TempDir,
}

impl Site {
    async fn new(extra: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let port = entente_e2e::free_port();
        let idp = Idp::start(
            dir.path(),
            &format!("http://127.0.0.1:{port}/api/v1/auth/oidc/callback"),
            people(),
            vec![idp::key("first")],
        );
        let secret = dir.path().join("oidc-secret");
        std::fs::write(&secret, idp::CLIENT_SECRET).unwrap();
        let oidc = format!(
            "  oidc: {{provider: EntraId, issuerUrl: \"{}\", tenantId: tenant-home, allowedTenants: [tenant-partner], adminGroups: [g-admins], clientId: {}, clientSecret: {{file: {}}}, scopes: [openid, email, profile, entra], claimMappings: {{nation: nation, clearance: clearance}}, buttonText: Sign in with Agency ID}}\n",
            idp.issuer(),
            idp::CLIENT_ID,
            secret.display()
        );
        let extra = extra.to_string();
        let ws = Workspace::with_config(move |yaml| {
            format!(
                "{}\n{extra}",
                yaml.replace(
                    "siteUrl: \"http://127.0.0.1:0\"",
                    &format!("siteUrl: \"http://127.0.0.1:{port}\"")
                )
                .replace("\nfederation:", &format!("\n{oidc}federation:"))
            )
        })
        .await;
        common::serve_on(&ws, port).await;
        Site {
            ws,
            port,
            idp,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn callback(&self) -> String {
        self.url("/api/v1/auth/oidc/callback")
    }

    /// Signs `login` in through the provider; the callback's answer.
    async fn sign_in(&self, login: &str) -> Value {
        let (start, login, callback) = (
            self.url("/api/v1/auth/oidc/start"),
            login.to_string(),
            self.callback(),
        );
        tokio::task::spawn_blocking(move || browser_sign_in(&start, &login, &callback, false))
            .await
            .unwrap()
    }

    /// The session a successful sign-in's cookie stands for.
    async fn session(&self, answer: &Value) -> Value {
        assert_eq!(answer["status"], 303, "{answer}");
        assert_eq!(answer["location"], "/", "signed in: {answer}");
        let (status, session) = self.cookie_session(answer).await;
        assert_eq!(status, StatusCode::OK, "{session}");
        session
    }

    /// What `GET /api/v1/auth/session` answers to the session cookie a
    /// sign-in set.
    async fn cookie_session(&self, answer: &Value) -> (StatusCode, Value) {
        let cookie = answer["cookies"]["entente_session"]
            .as_str()
            .unwrap_or_else(|| panic!("a session cookie: {answer}"));
        let response = self
            .ws
            .request(
                Request::builder()
                    .uri("/api/v1/auth/session")
                    .header(header::COOKIE, format!("entente_session={cookie}"))
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Why a sign-in was refused, as the sign-in page is told.
    fn refusal(answer: &Value) -> String {
        assert_eq!(answer["status"], 303, "{answer}");
        let location = answer["location"].as_str().unwrap();
        let why = location
            .strip_prefix("/#/signin-error/")
            .unwrap_or_else(|| panic!("refused: {answer}"));
        percent_decode(why)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

async fn audit_kinds(ws: &Workspace, admin: &str) -> Vec<(String, String)> {
    let (status, entries) = ws.get("/api/v1/admin/audit?kind=auth.", admin).await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_in_through_the_provider_and_keeps_one_account() {
    let mut site = Site::new("").await;
    let (status, providers) = site.ws.get("/api/v1/auth/providers", "none").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(providers["oidc"]["text"], "Sign in with Agency ID");

    let first = site.session(&site.sign_in("alice").await).await;
    let user = &first["user"];
    assert_eq!(user["username"], "alice.martin");
    assert_eq!(user["displayName"], "Alice Martin");
    assert_eq!(user["role"], "system_admin", "in g-admins");
    assert_eq!(
        user["attributes"],
        json!({"nation": "FR", "clearance": "SECRET"})
    );
    assert!(first["csrfToken"].is_string());
    assert_eq!(
        user["language"], "fr",
        "the provider's locale starts her language"
    );

    // Her email and name change at the provider, and she leaves g-admins:
    // still the same account (keyed on tenant and object id), refreshed.
    let mut people = people();
    people["alice"]["email"] = json!("a.martin@agency.example");
    people["alice"]["preferred_username"] = json!("a.martin@agency.example");
    people["alice"]["name"] = json!("Alice Martin-Durand");
    people["alice"]["groups"] = json!(["g-ops"]);
    site.idp.restart(Some(people), None);
    let again = site.session(&site.sign_in("alice").await).await;
    assert_eq!(again["user"]["id"], user["id"]);
    assert_eq!(again["user"]["displayName"], "Alice Martin-Durand");
    assert_eq!(again["user"]["role"], "member");

    // A partner tenant the workspace allows.
    let bob = site.session(&site.sign_in("bob").await).await;
    assert_eq!(bob["user"]["username"], "bob");

    let admin = site.ws.admin().await;
    let kinds = audit_kinds(&site.ws, &admin).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|(k, _)| k == "auth.sso_signed_in")
            .count(),
        3,
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|(_, r)| r.contains("account created")));
    assert_eq!(
        again["identityProvider"], "oidc",
        "its sign-out ends the provider's session"
    );

    // An admin ends every session of hers: the cookie stands for nothing.
    let answer = site.sign_in("alice").await;
    site.session(&answer).await;
    let (status, ended) = site
        .ws
        .post(
            &format!(
                "/api/v1/users/{}/sessions/end",
                user["id"].as_str().unwrap()
            ),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(ended["sessionsEnded"], 3);
    let (after, _) = site.cookie_session(&answer).await;
    assert_eq!(after, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn other_tenants_overflowing_groups_and_replays_are_refused_and_said_why() {
    let site = Site::new("").await;
    let why = Site::refusal(&site.sign_in("mallory").await);
    assert!(why.contains("tenant tenant-elsewhere"), "{why}");

    let why = Site::refusal(&site.sign_in("carol").await);
    assert!(why.contains("more groups"), "{why}");

    // The provider's answer, carried to the callback twice: once it signs
    // in, then the sign-in it belonged to is spent.
    let (start, callback) = (site.url("/api/v1/auth/oidc/start"), site.callback());
    let stopped =
        tokio::task::spawn_blocking(move || browser_sign_in(&start, "alice", &callback, true))
            .await
            .unwrap();
    let url = stopped["callback"].as_str().unwrap().to_string();
    let flow = stopped["cookies"]["entente_sso"]
        .as_str()
        .unwrap()
        .to_string();
    let visit = |url: String, flow: Option<String>| {
        let ws = &site.ws;
        async move {
            let path = url
                .split_once(&format!(":{}", site.port))
                .unwrap()
                .1
                .to_string();
            let mut request = Request::builder().method(Method::GET).uri(path);
            if let Some(flow) = flow {
                request = request.header(header::COOKIE, format!("entente_sso={flow}"));
            }
            let response = ws
                .request(request.body(axum::body::Body::empty()).unwrap())
                .await;
            response.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    // Without the cookie of the browser that started it: refused.
    let elsewhere = visit(url.clone(), None).await;
    assert!(
        elsewhere.contains("not%20started%20in%20this%20browser"),
        "{elsewhere}"
    );
    assert_eq!(visit(url.clone(), Some(flow.clone())).await, "/");
    let replayed = visit(url.clone(), Some(flow)).await;
    assert!(replayed.contains("already%20used"), "{replayed}");

    // The same code with a fresh sign-in's state: the provider refuses it
    // (a code is good once, and for the verifier it was issued with).
    let (start, callback) = (site.url("/api/v1/auth/oidc/start"), site.callback());
    let fresh =
        tokio::task::spawn_blocking(move || browser_sign_in(&start, "alice", &callback, true))
            .await
            .unwrap();
    let code = url
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let fresh_url = fresh["callback"].as_str().unwrap();
    let state = fresh_url
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let forged = format!("{}?code={code}&state={state}", site.callback());
    let answer = visit(
        forged,
        fresh["cookies"]["entente_sso"].as_str().map(str::to_string),
    )
    .await;
    assert!(
        answer.contains("did%20not%20accept"),
        "a spent code is refused by the provider: {answer}"
    );

    let admin = site.ws.admin().await;
    let refusals = audit_kinds(&site.ws, &admin)
        .await
        .into_iter()
        .filter(|(k, _)| k == "auth.sso_refused")
        .count();
    assert_eq!(refusals, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_decide_channels_at_every_sign_in() {
    let mut site = Site::new(
        "access:\n  policies:\n    - policy: french-eyes\n      expression: \"has(user.nation) && user.nation == 'FR'\"\n      channels: [intel]\n      mode: Enforce\n",
    )
    .await;
    let admin = site.ws.admin().await;
    let (_, me) = site.ws.get("/api/v1/users/me", &admin).await;
    let (status, body) = site
        .ws
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/attributes", me["id"].as_str().unwrap()),
            Some(&admin),
            Some(json!({"nation": "FR"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let intel = site.ws.channel(&admin, "intel", "public").await;
    let alice = site.session(&site.sign_in("alice").await).await;
    let alice_id = alice["user"]["id"].as_str().unwrap().to_string();
    let (status, body) = site
        .ws
        .post(
            &format!("/api/v1/channels/{intel}/members"),
            &admin,
            json!({"userId": alice_id}),
        )
        .await;
    assert!(status.is_success(), "FR may: {body}");

    // The provider now says she is German: the sign-in itself takes her
    // out of the channel her new attributes do not admit.
    let mut people = people();
    people["alice"]["nation"] = json!("DE");
    site.idp.restart(Some(people), None);
    let again = site.session(&site.sign_in("alice").await).await;
    assert_eq!(again["user"]["attributes"]["nation"], "DE");
    let (status, members) = site
        .ws
        .get(&format!("/api/v1/channels/{intel}/members"), &admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == alice_id.as_str()),
        "{members}"
    );
    let (status, changes) = site
        .ws
        .get("/api/v1/admin/audit?kind=user.attributes_changed", &admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        changes.to_string().contains("identity provider"),
        "{changes}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_provider_key_is_fetched_once_and_followed() {
    let mut site = Site::new("").await;
    site.session(&site.sign_in("alice").await).await;
    // The provider now signs with a key the workspace has never seen.
    site.idp.restart(None, Some(vec![idp::key("second")]));
    // Keys are refetched at most every 10 s.
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    let again = site.session(&site.sign_in("alice").await).await;
    assert_eq!(again["user"]["username"], "alice.martin");
}

/// Passwords are off: only a break-glass system admin may use one.
#[tokio::test(flavor = "multi_thread")]
async fn with_local_sign_in_off_only_a_break_glass_admin_uses_a_password() {
    let site = Site::new("").await;
    let admin = site.ws.admin().await;
    let (status, body) = site
        .ws
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "dave", "password": "dave-password-long", "role": "member"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    drop(site);

    let dir = tempfile::tempdir().unwrap();
    let secret: PathBuf = dir.path().join("secret");
    std::fs::write(&secret, "x").unwrap();
    let ws = Workspace::with_config(move |yaml| {
        yaml.replace("local: {enabled: true,", "local: {enabled: false,")
            .replace(
                "\nfederation:",
                &format!(
                    "\n  oidc: {{issuerUrl: \"http://127.0.0.1:9\", clientId: c, clientSecret: {{file: {}}}, scopes: [openid]}}\nfederation:",
                    secret.display()
                ),
            )
    })
    .await;
    let admin = ws.admin().await; // the break-glass admin still signs in
    let (status, body) = ws
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "erin", "password": "erin-password-long", "role": "member"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, refused) = ws
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "erin", "password": "erin-password-long"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("identity provider"));
    let (_, providers) = ws.get("/api/v1/auth/providers", "none").await;
    assert_eq!(providers["local"], false);
}

/// The ID-token checks, on tokens the provider itself signed: a good one
/// passes with its Entra claims; tampered, unsigned, for another client,
/// with another nonce, expired, or signed by a key the workspace has not
/// fetched, each fails, and says which.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_that_do_not_verify_are_refused_for_what_is_wrong() {
    use entente_runtime::server::oidc::{verify, Http, VerifyError, CLOCK_SKEW};
    use openidconnect::{ClientId, ClientSecret, IssuerUrl, Nonce, ProviderMetadataWithLogout};

    let mut site = Site::new("").await;
    let http = Http::new().unwrap();
    let metadata = ProviderMetadataWithLogout::discover_async(
        IssuerUrl::new(site.idp.issuer()).unwrap(),
        &http,
    )
    .await
    .unwrap();
    let client_for = |id: &str| {
        openidconnect::core::CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(id.into()),
            Some(ClientSecret::new(idp::CLIENT_SECRET.into())),
        )
    };
    let client = client_for(idp::CLIENT_ID);
    let callback = site.callback();
    let fetch = |idp: &Idp, nonce: &str| idp.id_token("alice", &callback, nonce);
    let nonce = Nonce::new("n-0123456789".into());
    let raw = fetch(&site.idp, "n-0123456789");
    let claims = verify(&client, &raw, &nonce, CLOCK_SKEW).expect("a good token verifies");
    assert_eq!(claims["tid"], "tenant-home");
    assert_eq!(claims["oid"], "oid-alice");
    assert_eq!(claims["groups"], json!(["g-admins", "g-ops"]));

    let invalid = |result: Result<_, VerifyError>, what: &str| match result {
        Err(VerifyError::Invalid(why)) => {
            assert!(why.to_lowercase().contains(what), "{what}: {why}")
        }
        other => panic!("{what}: {other:?}"),
    };
    // A payload changed after signing.
    let parts: Vec<&str> = raw.split('.').collect();
    let mut payload = parts[1].to_string();
    let flipped = if payload.ends_with('A') { 'B' } else { 'A' };
    payload.pop();
    payload.push(flipped);
    let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
    assert!(
        verify(&client, &tampered, &nonce, CLOCK_SKEW).is_err(),
        "tampered"
    );
    // The signature taken off, the algorithm claimed to be none.
    let unsigned = format!("eyJhbGciOiJub25lIn0.{}.", parts[1]);
    assert!(
        verify(&client, &unsigned, &nonce, CLOCK_SKEW).is_err(),
        "unsigned"
    );
    invalid(
        verify(&client_for("someone-else"), &raw, &nonce, CLOCK_SKEW),
        "audience",
    );
    invalid(
        verify(&client, &raw, &Nonce::new("another".into()), CLOCK_SKEW),
        "nonce",
    );

    // Expired: a provider whose tokens last a second, checked with no
    // tolerance two seconds later.
    site.idp.set("idTokenTtl", json!(1));
    site.idp.restart(None, None);
    let metadata_now = ProviderMetadataWithLogout::discover_async(
        IssuerUrl::new(site.idp.issuer()).unwrap(),
        &http,
    )
    .await
    .unwrap();
    let client_now = openidconnect::core::CoreClient::from_provider_metadata(
        metadata_now,
        ClientId::new(idp::CLIENT_ID.into()),
        Some(ClientSecret::new(idp::CLIENT_SECRET.into())),
    );
    let short = fetch(&site.idp, "n-0123456789");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    invalid(
        verify(&client_now, &short, &nonce, std::time::Duration::ZERO),
        "expired",
    );

    // Signed by a key the client's copy of the keys does not have.
    site.idp.set("idTokenTtl", json!(3600));
    site.idp.restart(None, Some(vec![idp::key("rotated")]));
    let rotated = fetch(&site.idp, "n-0123456789");
    assert!(
        matches!(
            verify(&client, &rotated, &nonce, CLOCK_SKEW),
            Err(VerifyError::UnknownKey)
        ),
        "an unknown key is told apart, so the keys are fetched again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sign_in_page_signs_in_through_the_provider_in_a_browser() {
    let site = Site::new("").await;
    common::browser::scenario("sso.mjs", vec![("ENTENTE_URL", site.url(""))]).await;
}
