//! The web client in a real browser: Debian's Chromium, driven by
//! playwright-core from `web/tests/*.mjs`, against servers this test starts
//! (in this process, on loopback). Each scenario is a Node.js script that
//! exits non-zero on failure; its screenshots are left in
//! `$CARGO_TARGET_TMPDIR/web-artefacts/<scenario>/`.

mod common;

use std::{
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use axum::http::{header, Method, Request, StatusCode};
use common::{
    browser::{scenario, web_dir},
    Workspace,
};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A TCP link to the server that the scenario can cut (every connection
/// through it closed, new ones refused) and restore, through a control
/// address: a browser losing its network, with the server still up.
struct Link {
    port: u16,
    control: u16,
}

impl Link {
    async fn to(upstream: u16) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let (cut, _) = tokio::sync::broadcast::channel::<()>(4);
        {
            let (down, cut) = (down.clone(), cut.clone());
            tokio::spawn(async move {
                loop {
                    let (mut client, _) = listener.accept().await.unwrap();
                    if down.load(Ordering::SeqCst) {
                        continue; // dropped: the connection is refused
                    }
                    let mut cut = cut.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await
                        else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.recv() => {}
                        }
                    });
                }
            });
        }
        let app = axum::Router::new()
            .route(
                "/cut",
                axum::routing::post({
                    let down = down.clone();
                    move || async move {
                        down.store(true, Ordering::SeqCst);
                        let _ = cut.send(());
                    }
                }),
            )
            .route(
                "/restore",
                axum::routing::post(move || async move { down.store(false, Ordering::SeqCst) }),
            );
        let control = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let control_port = control.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(control, app).await.unwrap() });
        Link {
            port,
            control: control_port,
        }
    }
}

/// The bootstrap admin's password, for scenarios that sign in as admin.
fn admin_password() -> (&'static str, String) {
    ("ENTENTE_ADMIN_PASSWORD", common::ADMIN_PASSWORD.to_string())
}

/// Creates `username` with the password the scenarios sign in with.
async fn person(ws: &Workspace, admin: &str, username: &str, display: &str) -> String {
    let (status, body) = ws
        .post(
            "/api/v1/users",
            admin,
            json!({"username": username, "password": format!("{username}-password-long"), "displayName": display}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    ws.login(username, &format!("{username}-password-long"))
        .await
}

async fn join(ws: &Workspace, token: &str, channel: &str) {
    let (status, body) = ws
        .post(
            &format!("/api/v1/channels/{channel}/join"),
            token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The workspace the scenarios start from: alice and bob in `ops` and
/// `random`, a `secret` channel only alice is in, and a guest policy
/// (`liaison`) that admits partner.example to `ops`.
struct Team {
    ws: Workspace,
    admin: String,
    alice: String,
    bob: String,
    ops: String,
    secret: String,
    port: u16,
}

impl Team {
    async fn new() -> Team {
        Team::with(String::new()).await
    }

    /// The team on a workspace whose config has `extra` appended.
    async fn with(extra: String) -> Team {
        let ws = Workspace::with_config(move |yaml| {
            format!("{yaml}{extra}\nguests:\n  - policy: liaison\n    domains: [partner.example]\n    channels: [ops]\n    invitationLifetimeSeconds: 3600\n    uploadFiles: true\n    directMessages: false\n")
        })
        .await;
        let admin = ws.admin().await;
        let alice = person(&ws, &admin, "alice", "Alice").await;
        let bob = person(&ws, &admin, "bob", "Bob").await;
        let ops = ws.channel(&alice, "ops", "public").await;
        let random = ws.channel(&alice, "random", "public").await;
        let secret = ws.channel(&alice, "secret", "private").await;
        join(&ws, &bob, &ops).await;
        join(&ws, &bob, &random).await;
        let port = common::serve(&ws).await;
        Team {
            ws,
            admin,
            alice,
            bob,
            ops,
            secret,
            port,
        }
    }

    fn url(&self) -> (&'static str, String) {
        ("ENTENTE_URL", format!("http://127.0.0.1:{}", self.port))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_people_chat_reply_react_share_files_and_resume_after_a_drop() {
    let team = Team::new().await;
    let link = Link::to(team.port).await;
    scenario(
        "chat.mjs",
        vec![
            team.url(),
            (
                "ENTENTE_PROXY_URL",
                format!("http://127.0.0.1:{}", link.port),
            ),
            (
                "ENTENTE_CONTROL",
                format!("http://127.0.0.1:{}", link.control),
            ),
        ],
    )
    .await;
}

/// Messages and file names written to attack whoever reads them.
const HOSTILE: &[&str] = &[
    "<script>window.__pwned=1</script>",
    "<img src=x onerror=\"window.__pwned=2\">",
    "[click me](javascript:window.__pwned=3)",
    "[again](JaVaScRiPt:alert(4))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCg1KTwvc2NyaXB0Pg==)",
    "**<svg onload=alert(6)>** and `<b>code</b>`",
    "<a href=\"javascript:alert(7)\">html link</a>",
    "<iframe srcdoc=\"<script>parent.__pwned=8</script>\"></iframe>",
    "```\n</code></pre><script>window.__pwned=10</script>\n```",
    "> <style>body{display:none}</style>\n- <object data=x></object>",
];

#[tokio::test(flavor = "multi_thread")]
async fn hostile_markdown_and_file_names_render_inert() {
    let team = Team::new().await;
    for message in HOSTILE {
        team.ws.say(&team.alice, &team.ops, message).await;
    }
    let (status, file) = team
        .ws
        .upload(
            &team.alice,
            &team.ops,
            "%22%3E%3Cimg%20src%3Dx%20onerror%3Dwindow.__pwned%3D9%3E.txt",
            b"hello".to_vec(),
            "text/plain",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let (status, body) = team
        .ws
        .post(
            &format!("/api/v1/channels/{}/posts", team.ops),
            &team.alice,
            json!({"message": "a file", "fileIds": [file["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    scenario("hostile.mjs", vec![team.url()]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_sees_only_the_channels_their_policy_grants() {
    let team = Team::new().await;
    team.ws
        .guest(&team.admin, "liaison", "officer@partner.example", "liaison")
        .await;
    scenario(
        "guest.mjs",
        vec![team.url(), ("ENTENTE_SECRET_CHANNEL", team.secret.clone())],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_works_on_a_phone_in_french_in_the_dark_and_from_the_keyboard() {
    let team = Team::new().await;
    team.ws
        .say(&team.bob, &team.ops, "A long line that must wrap on a narrow screen: https://example.org/a/very/long/path/that/does/not/break/easily/at/all")
        .await;
    scenario("layout.mjs", vec![team.url()]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_manages_people_guests_audit_and_policies_in_the_browser() {
    let team = Team::new().await;
    scenario("admin.mjs", vec![team.url(), admin_password()]).await;
}

/// The page and its assets as a browser gets them: compressed, cached by
/// content hash, under a policy that allows no inline script and no framing.
#[tokio::test]
async fn the_client_is_served_compressed_cached_and_locked_down() {
    let ws = Workspace::new().await;
    let get = |path: &str, encoding: &str| {
        Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::ACCEPT_ENCODING, encoding)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let page = ws.request(get("/", "gzip, br")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(headers[header::CONTENT_ENCODING], "br");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = ws.request(get("/", "identity")).await;
    let html = axum::body::to_bytes(html.into_body(), 1 << 20)
        .await
        .unwrap();
    let html = String::from_utf8(html.to_vec()).unwrap();
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the page names its script");
    assert!(script.starts_with("/assets/main-"), "{script}");

    let asset = ws.request(get(script, "gzip")).await;
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(asset.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(
        asset.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    let etag = asset.headers()[header::ETAG].clone();
    let again = ws
        .request(
            Request::builder()
                .uri(script)
                .header(header::IF_NONE_MATCH, etag)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // The API keeps its JSON answers.
    let (status, body) = ws.get("/api/v1/nothing-here", "x").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        ws.request(get("/assets/main-OLDBUILD.js", "br"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_browsers_hear_each_other_and_share_a_screen_through_the_sfu() {
    let dir = std::env::temp_dir().join(format!("entente-web-calls-{}", std::process::id()));
    let (_sfu, sfu_port) = common::start_sfu(&dir);
    let team = Team::with(common::calls_section(&dir, &[sfu_port])).await;
    scenario("call.mjs", vec![team.url()]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_in_a_shared_channel_appears_in_the_partner_workspace_browser() {
    let pair = common::federation::pair("web").await;
    let alice = person(&pair.a, &pair.a.admin().await, "alice", "Alice").await;
    let bob = person(&pair.b, &pair.b.admin().await, "bob", "Bob").await;
    common::federation::join_shared(&pair.a, &alice, "joint").await;
    common::federation::join_shared(&pair.b, &bob, "joint-ops").await;
    let (a, b) = (common::serve(&pair.a).await, common::serve(&pair.b).await);
    scenario(
        "federation.mjs",
        vec![
            ("ENTENTE_URL", format!("http://127.0.0.1:{a}")),
            ("ENTENTE_PARTNER_URL", format!("http://127.0.0.1:{b}")),
        ],
    )
    .await;
}

/// The Teams app package validates against Microsoft's schema, and only
/// Microsoft 365's origins may frame the client of a workspace embedded there.
#[tokio::test]
async fn the_teams_package_validates_and_only_microsoft_365_may_frame_the_client() {
    let app_id = "6f1b3b0e-2a6c-4c55-9f7e-0a1b2c3d4e5f";
    let entra = "0d5e2f8a-1b3c-4d5e-8f9a-abcdefabcdef";
    let team = Team::with(format!(
        "web: {{frameAncestors: [\"https://teams.microsoft.com\", \"https://*.cloud.microsoft\"], teams: {{appId: {app_id}, entraApplicationId: {entra}}}}}\n"
    ))
    .await;
    let request = |token: &str| {
        Request::builder()
            .uri("/api/v1/admin/teams-app.zip")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(
        team.ws.request(request(&team.alice)).await.status(),
        StatusCode::FORBIDDEN
    );
    let response = team.ws.request(request(&team.admin)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/zip");
    let zip = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let dir = team.ws.dir.join("teams-app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("package.zip"), &zip).unwrap();
    // Unpacked by Python's zipfile: a reader that is not ours.
    let unzip = Command::new("python3")
        .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; z.extractall(sys.argv[2]); print(z.namelist())"])
        .arg(dir.join("package.zip"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        unzip.status.success(),
        "{}",
        String::from_utf8_lossy(&unzip.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["id"], app_id);
    assert_eq!(manifest["webApplicationInfo"]["id"], entra);
    assert_eq!(manifest["staticTabs"][0]["scopes"], json!(["personal"]));
    assert_eq!(manifest["validDomains"], json!(["127.0.0.1"]));
    let validate = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(web_dir().join("tests/teams-manifest.mjs"))
            .arg(&dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    println!("{}", String::from_utf8_lossy(&validate.stdout));
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );

    let page = team
        .ws
        .request(
            Request::builder()
                .uri("/")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.ends_with("frame-ancestors https://teams.microsoft.com https://*.cloud.microsoft"),
        "{csp}"
    );

    // Without the embedding, there is no package to download.
    let plain = Team::new().await;
    let response = plain.ws.request(request(&plain.admin)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

/// A browser's session: an HttpOnly, SameSite cookie the page's script
/// cannot read; changes need the CSRF token the sign-in returned; the live
/// stream takes the cookie only from the workspace's own pages.
#[tokio::test]
async fn a_cookie_session_needs_its_csrf_token_and_its_own_origin() {
    let team = Team::new().await;
    let login = team
        .ws
        .request(
            Request::builder()
                .method(Method::POST)
                .uri("/api/v1/auth/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(
                    json!({"username": "bob", "password": "bob-password-long", "cookie": true})
                        .to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let set_cookie = login.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP here: a Secure cookie would never come back"
    );
    let body = axum::body::to_bytes(login.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body.get("token").is_none(),
        "no token for script to read: {body}"
    );
    let csrf = body["csrfToken"].as_str().unwrap().to_string();
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    let request = |method: Method, path: &str, csrf: Option<&str>, body: serde_json::Value| {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(csrf) = csrf {
            builder = builder.header("x-csrf-token", csrf);
        }
        builder
            .body(axum::body::Body::from(body.to_string()))
            .unwrap()
    };
    let post = format!("/api/v1/channels/{}/posts", team.ops);
    let session = team
        .ws
        .request(request(
            Method::GET,
            "/api/v1/auth/session",
            None,
            json!(null),
        ))
        .await;
    assert_eq!(session.status(), StatusCode::OK, "reads need no CSRF token");
    for wrong in [None, Some("0".repeat(64)), Some(csrf[..63].to_string())] {
        let refused = team
            .ws
            .request(request(
                Method::POST,
                &post,
                wrong.as_deref(),
                json!({"message": "forged"}),
            ))
            .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{wrong:?}");
    }
    let accepted = team
        .ws
        .request(request(
            Method::POST,
            &post,
            Some(&csrf),
            json!({"message": "from the page"}),
        ))
        .await;
    assert_eq!(accepted.status(), StatusCode::CREATED);

    // The live stream: from another site's page, refused before any upgrade.
    let port = team.port;
    let upgrade = |origin: &str| {
        let mut request = format!("ws://127.0.0.1:{port}/api/v1/ws")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert(header::COOKIE, cookie.parse().unwrap());
        request
            .headers_mut()
            .insert(header::ORIGIN, origin.parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    match upgrade("http://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN)
        }
        other => panic!("a foreign page opened the stream: {:?}", other.map(|_| ())),
    }
    let (mut socket, _) = upgrade(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("the workspace's own page opens it");
    let hello = common::next(&mut socket).await;
    assert_eq!(hello["type"], "hello");

    // Signing out revokes the session and clears the cookie.
    let out = team
        .ws
        .request(request(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&csrf),
            json!({}),
        ))
        .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(out.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after = team
        .ws
        .request(request(
            Method::GET,
            "/api/v1/auth/session",
            None,
            json!(null),
        ))
        .await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn history_edits_pins_deletes_search_channels_and_direct_messages() {
    let team = Team::new().await;
    for n in 1..=120 {
        team.ws
            .say(&team.bob, &team.ops, &format!("backlog message {n}"))
            .await;
    }
    let (status, channels) = team.ws.get("/api/v1/channels", &team.bob).await;
    assert_eq!(status, StatusCode::OK);
    let random = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "random")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    team.ws
        .say(&team.bob, &random, "rendezvous at the bridge")
        .await;
    team.ws
        .say(&team.bob, &team.ops, "rendezvous moved (not in random)")
        .await;
    team.ws
        .channel(&team.admin, "announcements", "public")
        .await;
    scenario("features.mjs", vec![team.url(), admin_password()]).await;
}

/// The workspace's model in Chromium: llama.cpp's server (xllamacpp)
/// serving SmolLM2-135M behind the recording proxy.
#[tokio::test(flavor = "multi_thread")]
async fn an_agents_answer_streams_in_and_a_summary_stays_private_until_posted() {
    let proxy = common::model::Proxy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let team = Team::with(common::model::ai_section(&proxy, dir.path())).await;
    for line in [
        "The convoy leaves at 0600 from gate 4.",
        "Fuel at depot 3 is short until Thursday.",
    ] {
        team.ws.say(&team.bob, &team.ops, line).await;
    }
    let (_, agents) = team.ws.get("/api/v1/ai/agents", &team.alice).await;
    let (status, direct) = team
        .ws
        .post(
            "/api/v1/channels/direct",
            &team.alice,
            json!({"userId": agents[0]["userId"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{direct}");
    scenario(
        "ai.mjs",
        vec![
            team.url(),
            ("ENTENTE_DIRECT", direct["id"].as_str().unwrap().to_string()),
        ],
    )
    .await;
    // What the page showed came from the model, once per request.
    assert_eq!(proxy.prompts().len(), 2, "one answer, one summary");
}

/// A channel read in one's own language, in Chromium, through Apertium's
/// service (Debian's apertium-apy): its admin turns translation on in the
/// page, a reader reads posts translated and opts out, and the system
/// admin sees what the provider can do.
#[tokio::test(flavor = "multi_thread")]
async fn a_reader_chooses_a_language_and_reads_posts_translated_with_the_original_at_hand() {
    let team = Team::with(format!(
        "\ntranslation:\n  provider: {{apertium: {{url: \"{}\"}}}}\n  languages: [en, es]\n  defaultLanguage: en\n  concurrency: 2\n",
        entente_e2e::ApertiumServer::shared().endpoint()
    ))
    .await;
    scenario("translation.mjs", vec![team.url(), admin_password()]).await;
}
