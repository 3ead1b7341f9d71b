//! Translation against a real provider: Apertium's HTTP service (Debian's
//! apertium-apy, English–Spanish), started once for this binary. The tests
//! assert on structure — what is translated, for whom, what is kept as
//! written — not on Apertium's wording.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{connect, serve, Socket, Workspace};
use entente_e2e::ApertiumServer;
use futures_util::StreamExt;
use serde_json::{json, Value};

fn section() -> String {
    format!(
        "\ntranslation:\n  provider: {{apertium: {{url: \"{}\"}}}}\n  languages: [en, es, fr]\n  defaultLanguage: en\n  concurrency: 2\n",
        ApertiumServer::shared().endpoint()
    )
}

async fn put(ws: &Workspace, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    ws.call(Method::PUT, path, Some(token), Some(body)).await
}

/// The next `translated` event for `post` in `language` on `socket`.
async fn translated(socket: &mut Socket, post: &str, language: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a translation in time")
            .expect("the socket is open")
            .unwrap();
        let tokio_tungstenite::tungstenite::Message::Text(text) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).unwrap();
        if event["type"] == "translated"
            && event["data"]["postId"] == post
            && event["data"]["language"] == language
        {
            return event["data"].clone();
        }
    }
}

/// The languages `post` is stored translated into, sorted.
async fn languages(ws: &Workspace, post: &str) -> Vec<String> {
    let mut rows: Vec<(String,)> =
        sqlx::query_as("SELECT language FROM post_translations WHERE post_id = $1")
            .bind(post)
            .fetch_all(&ws.state.db)
            .await
            .unwrap();
    rows.sort();
    rows.into_iter().map(|(l,)| l).collect()
}

/// Waits until nothing is queued.
async fn drained(ws: &Workspace) {
    common::emptied(
        ws,
        "SELECT count(*) FROM translation_jobs",
        Duration::from_secs(60),
        "translations still queued",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn posts_are_translated_for_each_reader_keeping_code_links_and_mentions() {
    let section = section();
    let ws = Workspace::with_config(move |yaml| format!("{yaml}{section}")).await;
    let port = serve(&ws).await;
    let admin = ws.admin().await;
    let (_, alice) = ws.user("alice", "member").await;
    let (_, bob) = ws.user("bob", "member").await;
    let (_, carol) = ws.user("carol", "member").await;
    let (_, dave) = ws.user("dave", "member").await;
    let ops = ws.channel(&alice, "ops", "public").await;
    for token in [&bob, &carol, &dave] {
        ws.post(&format!("/api/v1/channels/{ops}/join"), token, json!({}))
            .await;
    }

    // Each reader's language, among those the workspace offers.
    for (token, language) in [(&bob, "es"), (&dave, "fr")] {
        let (status, body) = put(
            &ws,
            "/api/v1/users/me/language",
            token,
            json!({"language": language}),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (status, body) = put(
        &ws,
        "/api/v1/users/me/language",
        &carol,
        json!({"language": "de"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("en, es, fr"),
        "{body}"
    );
    let (status, body) = put(
        &ws,
        "/api/v1/users/me/language",
        &carol,
        json!({"language": "e"}),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("language"))
    );

    // Only the channel's admins turn it on.
    let path = format!("/api/v1/channels/{ops}/translation");
    let (status, _) = put(&ws, &path, &bob, json!({"enabled": true})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = put(&ws, &path, &alice, json!({"enabled": true})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Recorded, since posts here now leave for the provider; and each
    // channel now says it translates.
    let (reason,): (String,) = sqlx::query_as(
        "SELECT reason FROM audit_log WHERE channel_id = $1 AND data->>'translation' = 'true'",
    )
    .bind(&ops)
    .fetch_one(&ws.state.db)
    .await
    .unwrap();
    assert!(reason.contains("translation provider"), "{reason}");
    let (_, channel) = ws.get(&format!("/api/v1/channels/{ops}"), &bob).await;
    assert_eq!(
        (
            channel["translation"].as_bool(),
            channel["translate"].as_bool()
        ),
        (Some(true), Some(true)),
        "{channel}"
    );

    let (mut bob_socket, _) = connect(port, &bob, None).await;
    let (mut dave_socket, _) = connect(port, &dave, None).await;
    let message = "The convoy leaves at dawn from the north gate. @bob see https://ops.example/plan?x=1 and run `make deploy` :+1:\n```\nconvoy --dawn\n```";
    let post = ws.say(&alice, &ops, message).await;
    let id = post["id"].as_str().unwrap();

    // Bob reads Spanish: the words are translated, the rest kept as written.
    let spanish = translated(&mut bob_socket, id, "es").await;
    assert_eq!(spanish["provider"], "apertium");
    assert_eq!(spanish["source"], "en");
    let text = spanish["text"].as_str().unwrap();
    assert_ne!(text, message);
    for kept in [
        "@bob",
        "https://ops.example/plan?x=1",
        "`make deploy`",
        ":+1:",
        "\n```\nconvoy --dawn\n```",
    ] {
        assert!(text.contains(kept), "{kept:?} kept in {text:?}");
    }
    assert!(!text.contains("convoy leaves"), "translated: {text}");
    // Dave reads French, a pair this Apertium does not have: said, not faked.
    let french = translated(&mut dave_socket, id, "fr").await;
    assert_eq!(french.get("text"), None, "{french}");
    assert_eq!(
        french["problem"], "en→fr is not a pair apertium offers here",
        "{french}"
    );
    // Carol reads what alice writes: nothing for her.
    drained(&ws).await;
    assert_eq!(languages(&ws, id).await, ["es", "fr"]);

    // Beside the posts, each reader gets their own language's.
    let page = |token: String| {
        let (ws, ops) = (&ws, ops.clone());
        async move {
            let (status, page) = ws
                .get(&format!("/api/v1/channels/{ops}/posts"), &token)
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            page["translations"].clone()
        }
    };
    let bobs = page(bob.clone()).await;
    assert_eq!(bobs[0]["language"], "es", "{bobs}");
    assert_eq!(bobs[0]["text"], text, "{bobs}");
    assert_eq!(page(carol.clone()).await, Value::Null, "nothing for carol");

    // An edit is translated again.
    let (status, _) = ws
        .call(
            Method::PATCH,
            &format!("/api/v1/posts/{id}"),
            Some(&alice),
            Some(json!({"message": "The convoy leaves at noon."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let again = translated(&mut bob_socket, id, "es").await;
    assert_ne!(again["text"], spanish["text"], "{again}");

    // Bob opts out in ~ops: nothing more is translated for him there.
    let (status, _) = put(&ws, &format!("{path}/me"), &bob, json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, channel) = ws.get(&format!("/api/v1/channels/{ops}"), &bob).await;
    assert_eq!(channel["translate"], false, "{channel}");
    let later = ws.say(&alice, &ops, "The bridge is open.").await;
    let later = later["id"].as_str().unwrap();
    translated(&mut dave_socket, later, "fr").await;
    drained(&ws).await;
    assert_eq!(languages(&ws, later).await, ["fr"]);
    assert_eq!(
        page(bob.clone()).await,
        Value::Null,
        "opted out: none shown"
    );

    // A delete takes the translations with it.
    let (status, _) = ws
        .call(
            Method::DELETE,
            &format!("/api/v1/posts/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(languages(&ws, id).await.is_empty());

    // Admins see the provider and what it cannot do.
    let (status, report) = ws.get("/api/v1/admin/translation", &admin).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["provider"], "apertium");
    let pairs: Vec<&str> = report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        pairs.contains(&"en→es") && pairs.contains(&"es→en"),
        "{report}"
    );
    assert!(
        report["missing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "en→fr"),
        "{report}"
    );
    let metrics = ws.state.metrics.render();
    assert!(
        metrics.contains(r#"entente_translations_total{provider="apertium",outcome="ok"}"#)
            && metrics.contains(
                r#"entente_translations_total{provider="apertium",outcome="unsupported"}"#
            ),
        "{metrics}"
    );
}

/// In a channel shared with a partner, each side translates for its own
/// people with its own provider: a partner's post is translated here for
/// the reader here, and the partner (which declares no provider) sends
/// nothing anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_a_shared_channel_each_side_translates_for_its_own_people() {
    let pair = common::federation::pair_with("translation", &section()).await;
    let (_, alice) = pair.a.user("alice", "member").await;
    let (_, bob) = pair.b.user("bob", "member").await;
    let (status, _) = put(
        &pair.a,
        "/api/v1/users/me/language",
        &alice,
        json!({"language": "es"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let a_joint = common::federation::join_shared(&pair.a, &alice, "joint").await;
    let b_joint = common::federation::join_shared(&pair.b, &bob, "joint-ops").await;
    // The shared channel's admin here is whoever the server made it for: an admin.
    let admin = pair.a.admin().await;
    let (status, body) = put(
        &pair.a,
        &format!("/api/v1/channels/{a_joint}/translation"),
        &admin,
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let a_port = serve(&pair.a).await;
    let (mut socket, _) = connect(a_port, &alice, None).await;
    let post = common::federation::post(
        &pair.b,
        &bob,
        &b_joint,
        json!({"message": "The patrol returns at midnight."}),
    )
    .await;
    let id = post["id"].as_str().unwrap();
    let spanish = translated(&mut socket, id, "es").await;
    assert_eq!(spanish["provider"], "apertium");
    assert_ne!(spanish["text"], "The patrol returns at midnight.");
    // Only alice's language: bob is the partner's, translated for there.
    drained(&pair.a).await;
    assert_eq!(languages(&pair.a, id).await, ["es"]);
    let (queued,): (i64,) = sqlx::query_as("SELECT count(*) FROM translation_jobs")
        .fetch_one(&pair.b.state.db)
        .await
        .unwrap();
    assert_eq!(
        queued, 0,
        "the partner declares no provider and queues nothing"
    );
}

/// What a LibreTranslate-compatible API was sent.
type Sent = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;

/// A LibreTranslate-compatible stub: no LibreTranslate can run here (it is
/// not packaged for Debian, and its PyPI package downloads its models at
/// run time). It offers en, es and fr each way, answers `[es] <text>`,
/// detects French by "bonjour" and Spanish by "hola" (English otherwise),
/// and records what it was sent to translate, so the test reads exactly
/// what left the workspace.
async fn libretranslate_stub() -> (u16, Sent) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    libretranslate_stub_on(listener).await
}

async fn libretranslate_stub_on(listener: tokio::net::TcpListener) -> (u16, Sent) {
    use axum::{routing::get, routing::post, Json, Router};
    let sent: Sent = Default::default();
    let recorded = sent.clone();
    let app = Router::new()
        .route(
            "/languages",
            get(|| async {
                Json(json!([
                    {"code": "en", "targets": ["en", "es", "fr"]},
                    {"code": "es", "targets": ["es", "en", "fr"]},
                    {"code": "fr", "targets": ["fr", "en", "es"]}
                ]))
            }),
        )
        .route(
            "/detect",
            post(|Json(body): Json<Value>| async move {
                let text = body["q"].as_str().unwrap().to_lowercase();
                let language = if text.contains("bonjour") {
                    "fr"
                } else if text.contains("hola") {
                    "es"
                } else {
                    "en"
                };
                Json(json!([{"language": language, "confidence": 90.0}]))
            }),
        )
        .route(
            "/translate",
            post(move |Json(body): Json<Value>| {
                let recorded = recorded.clone();
                async move {
                    recorded.lock().unwrap().push(body.clone());
                    Json(json!({"translatedText": format!("[{}] {}", body["target"].as_str().unwrap(), body["q"].as_str().unwrap())}))
                }
            }),
        );
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, sent)
}

/// Alice (English) and bob (Spanish) in ~ops with translation on; bob's socket.
async fn readers(ws: &Workspace) -> (String, String, Socket) {
    let port = serve(ws).await;
    let (_, alice) = ws.user("alice", "member").await;
    let (_, bob) = ws.user("bob", "member").await;
    let ops = ws.channel(&alice, "ops", "public").await;
    ws.post(&format!("/api/v1/channels/{ops}/join"), &bob, json!({}))
        .await;
    put(
        ws,
        "/api/v1/users/me/language",
        &bob,
        json!({"language": "es"}),
    )
    .await;
    let (status, _) = put(
        ws,
        &format!("/api/v1/channels/{ops}/translation"),
        &alice,
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (socket, _) = connect(port, &bob, None).await;
    (alice, ops, socket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_libretranslate_api_gets_only_the_words_and_its_key() {
    let (port, sent) = libretranslate_stub().await;
    let dir = tempfile::tempdir().unwrap();
    let ws = libretranslate_workspace(port, dir.path()).await;
    let (alice, ops, mut socket) = readers(&ws).await;
    let post = ws
        .say(
            &alice,
            &ops,
            "Deploy now @bob with `make deploy` at https://ci.example/run",
        )
        .await;
    let spanish = translated(&mut socket, post["id"].as_str().unwrap(), "es").await;
    assert_eq!(spanish["provider"], "libretranslate");
    assert_eq!(
        spanish["text"],
        "[es] Deploy now @bob [es] with `make deploy` [es] at https://ci.example/run"
    );
    let sent = sent.lock().unwrap().clone();
    let texts: Vec<&str> = sent.iter().map(|b| b["q"].as_str().unwrap()).collect();
    assert_eq!(texts, ["Deploy now", "with", "at"], "only the words left");
    assert!(sent
        .iter()
        .all(|b| b["api_key"] == "lt-secret" && b["source"] == "en" && b["target"] == "es"));
}

/// A workspace translating with the LibreTranslate-compatible API on
/// `port` (its key in `dir`), offering en, es and fr.
async fn libretranslate_workspace(port: u16, dir: &std::path::Path) -> Workspace {
    let key = dir.join("lt-key");
    std::fs::write(&key, "lt-secret\n").unwrap();
    let section = format!(
        "\ntranslation:\n  provider: {{libreTranslate: {{url: \"http://127.0.0.1:{port}\", apiKey: {{file: {}}}}}}}\n  languages: [en, es, fr]\n  defaultLanguage: en\n  concurrency: 2\n",
        key.display()
    );
    Workspace::with_config(move |yaml| format!("{yaml}{section}")).await
}

/// Where the provider tells a text's language, that language is the
/// source, whatever its author reads: French from an English-reading
/// author is translated from French, and Spanish is not "translated" for
/// a Spanish reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_language_a_provider_detects_is_the_source() {
    let (port, sent) = libretranslate_stub().await;
    let dir = tempfile::tempdir().unwrap();
    let ws = libretranslate_workspace(port, dir.path()).await;
    let (alice, ops, mut socket) = readers(&ws).await;
    let french = ws
        .say(&alice, &ops, "Bonjour à tous, le pont est ouvert")
        .await;
    let french = french["id"].as_str().unwrap();
    let spanish = translated(&mut socket, french, "es").await;
    assert_eq!(spanish["source"], "fr", "{spanish}");
    assert_eq!(sent.lock().unwrap().last().unwrap()["source"], "fr");

    let already = ws
        .say(&alice, &ops, "Hola a todos, el puente está abierto")
        .await;
    let already = already["id"].as_str().unwrap();
    drained(&ws).await;
    assert!(
        languages(&ws, already).await.is_empty(),
        "already in Spanish: nothing stored"
    );
    assert!(
        !sent
            .lock()
            .unwrap()
            .iter()
            .any(|b| b["q"].as_str().unwrap().contains("Hola")),
        "not sent to be translated"
    );
}

/// With Apertium, the server tells the language itself (among the
/// workspace's): a Spanish sentence from an English-reading author is left
/// as it is for a Spanish reader, an English one is translated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_apertium_a_post_already_in_the_readers_language_is_left_as_it_is() {
    let section = section();
    let ws = Workspace::with_config(move |yaml| format!("{yaml}{section}")).await;
    let (alice, ops, mut socket) = readers(&ws).await;
    let spanish = ws
        .say(&alice, &ops, "El convoy sale del puerto norte al amanecer")
        .await;
    let spanish = spanish["id"].as_str().unwrap();
    let english = ws
        .say(&alice, &ops, "The convoy leaves the north harbour at dawn")
        .await;
    let english = english["id"].as_str().unwrap();
    let translated = translated(&mut socket, english, "es").await;
    assert_eq!(translated["source"], "en", "{translated}");
    drained(&ws).await;
    assert!(languages(&ws, spanish).await.is_empty(), "left as it is");
    assert_eq!(languages(&ws, english).await, ["es"]);
}

/// A provider that is down: the post waits in the queue (counted in
/// `entente_queued`), is asked again only after a backoff, and is
/// translated once the provider is back. Nothing is lost or faked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_post_waits_for_a_provider_that_is_down() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let ws = libretranslate_workspace(port, dir.path()).await;
    let (alice, ops, mut socket) = readers(&ws).await;
    let post = ws.say(&alice, &ops, "The bridge is open").await;
    let post = post["id"].as_str().unwrap();

    tokio::time::sleep(Duration::from_secs(3)).await;
    let (attempts,): (i32,) =
        sqlx::query_as("SELECT attempts FROM translation_jobs WHERE post_id = $1")
            .bind(post)
            .fetch_one(&ws.state.db)
            .await
            .unwrap();
    assert_eq!(attempts, 1, "asked once, then waiting out its backoff");
    let metrics = common::scrape(&ws).await;
    assert!(
        metrics.contains(r#"entente_queued{queue="translation"} 1"#)
            && metrics.contains(
                r#"entente_translations_total{provider="libretranslate",outcome="unavailable"} 1"#
            ),
        "{metrics}"
    );
    assert!(languages(&ws, post).await.is_empty(), "nothing faked");

    // Back, on the same address.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    libretranslate_stub_on(listener).await;
    let spanish = translated(&mut socket, post, "es").await;
    assert_eq!(spanish["text"], "[es] The bridge is open");
    drained(&ws).await;
    assert!(common::scrape(&ws)
        .await
        .contains(r#"entente_queued{queue="translation"} 0"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_workspaces_language_model_translates_when_it_is_the_provider() {
    let proxy = common::model::Proxy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let section = format!(
        "{}\ntranslation:\n  provider: languageModel\n  languages: [en, es]\n  defaultLanguage: en\n  concurrency: 2\n",
        common::model::ai_section(&proxy, dir.path())
    );
    let ws = Workspace::with_config(move |yaml| format!("{yaml}{section}")).await;
    let (alice, ops, mut socket) = readers(&ws).await;
    let post = ws.say(&alice, &ops, "The bridge is open.").await;
    let spanish = translated(&mut socket, post["id"].as_str().unwrap(), "es").await;
    assert_eq!(spanish["provider"], "language-model");
    assert!(!spanish["text"].as_str().unwrap().is_empty(), "{spanish}");
    let prompts = proxy.prompts();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(
        prompts[0].contains("from the language tagged en into the language tagged es")
            && prompts[0].contains("The bridge is open."),
        "{}",
        prompts[0]
    );
}
