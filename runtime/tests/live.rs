//! Live events over the WebSocket: members only, resumable, across replicas.

mod common;

use std::time::Duration;

use common::{connect, http, next, serve, wait_ready, write_config, KillOnDrop, Workspace};
use entente_e2e::{free_port, Postgres};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

#[tokio::test]
async fn members_get_every_kind_of_event_and_outsiders_none() {
    let ws = Workspace::new().await;
    let port = serve(&ws).await;
    let (_, alice) = ws.user("alice", "member").await;
    let (bob_id, bob) = ws.user("bob", "member").await;
    let (_, carol) = ws.user("carol", "member").await;
    let ops = ws.channel(&alice, "ops", "private").await;
    let lobby = ws.channel(&alice, "lobby", "public").await;
    ws.post(&format!("/api/v1/channels/{lobby}/join"), &carol, json!({}))
        .await;

    let (mut bob_socket, _) = connect(port, &bob, None).await;
    let (mut carol_socket, _) = connect(port, &carol, None).await;

    // Being added announces the channel to the new member.
    ws.post(
        &format!("/api/v1/channels/{ops}/members"),
        &alice,
        json!({"userId": bob_id}),
    )
    .await;
    let added = next(&mut bob_socket).await;
    assert_eq!(
        (added["type"].as_str(), added["channelId"].as_str()),
        (Some("member_added"), Some(ops.as_str()))
    );

    let posted = ws.say(&alice, &ops, "secret plan").await;
    let event = next(&mut bob_socket).await;
    assert_eq!(event["type"], "posted");
    assert_eq!(event["data"]["message"], "secret plan");
    assert!(event["seq"].as_i64().unwrap() > added["seq"].as_i64().unwrap());

    let id = posted["id"].as_str().unwrap();
    ws.call(
        axum::http::Method::PATCH,
        &format!("/api/v1/posts/{id}"),
        Some(&alice),
        Some(json!({"message": "secret plan v2"})),
    )
    .await;
    ws.call(
        axum::http::Method::PUT,
        &format!("/api/v1/posts/{id}/reactions/eyes"),
        Some(&bob),
        None,
    )
    .await;
    ws.call(
        axum::http::Method::DELETE,
        &format!("/api/v1/posts/{id}"),
        Some(&alice),
        None,
    )
    .await;
    let kinds: Vec<String> = [
        next(&mut bob_socket).await,
        next(&mut bob_socket).await,
        next(&mut bob_socket).await,
    ]
    .iter()
    .map(|e| e["type"].as_str().unwrap().to_string())
    .collect();
    assert_eq!(kinds, ["edited", "reaction_added", "deleted"]);

    // Typing reaches the other members, not the typist.
    bob_socket
        .send(Message::Text(
            json!({"type": "typing", "channelId": ops})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let (mut alice_socket, _) = connect(port, &alice, None).await;
    bob_socket
        .send(Message::Text(
            json!({"type": "typing", "channelId": ops})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let typing = next(&mut alice_socket).await;
    assert_eq!(
        (typing["type"].as_str(), typing["data"]["userId"].as_str()),
        (Some("typing"), Some(bob_id.as_str()))
    );

    // Carol, outside the private channel, heard none of it: her first event is from lobby.
    ws.say(&alice, &lobby, "all hands").await;
    let first = next(&mut carol_socket).await;
    assert_eq!(first["channelId"], lobby.as_str(), "{first}");

    // Removed: told so, then silence from that channel.
    ws.call(
        axum::http::Method::DELETE,
        &format!("/api/v1/channels/{ops}/members/{bob_id}"),
        Some(&alice),
        None,
    )
    .await;
    let removed = next(&mut bob_socket).await;
    assert_eq!(removed["type"], "member_removed");
    ws.say(&alice, &ops, "after bob left").await;
    ws.say(&alice, &lobby, "sentinel").await;
    ws.post(&format!("/api/v1/channels/{lobby}/join"), &bob, json!({}))
        .await;
    let after = next(&mut bob_socket).await;
    assert_eq!(
        (after["type"].as_str(), after["channelId"].as_str()),
        (Some("member_added"), Some(lobby.as_str())),
        "{after}"
    );
}

#[tokio::test]
async fn a_client_that_reconnects_with_its_last_seq_misses_nothing() {
    let ws = Workspace::new().await;
    let port = serve(&ws).await;
    let (_, alice) = ws.user("alice", "member").await;
    let (_, bob) = ws.user("bob", "member").await;
    let ops = ws.channel(&alice, "ops", "public").await;
    ws.post(&format!("/api/v1/channels/{ops}/join"), &bob, json!({}))
        .await;

    let (mut socket, _) = connect(port, &bob, None).await;
    ws.say(&alice, &ops, "before").await;
    let last = next(&mut socket).await["seq"].as_i64().unwrap();
    socket.close(None).await.unwrap();

    for i in 0..5 {
        ws.say(&alice, &ops, &format!("while away {i}")).await;
    }
    let (mut socket, hello_seq) = connect(port, &bob, Some(last)).await;
    let mut messages = Vec::new();
    for _ in 0..5 {
        messages.push(
            next(&mut socket).await["data"]["message"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        messages,
        (0..5)
            .map(|i| format!("while away {i}"))
            .collect::<Vec<_>>()
    );
    assert!(hello_seq >= last);
    // And live again after the backlog, without duplicates.
    ws.say(&alice, &ops, "live").await;
    assert_eq!(next(&mut socket).await["data"]["message"], "live");

    // A bad token is refused before the upgrade.
    let mut request = format!("ws://127.0.0.1:{port}/api/v1/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
}

#[test]
fn two_server_processes_on_one_database_share_live_events_and_close_sockets_on_shutdown() {
    let url = Postgres::shared().create_database("replicas").unwrap();
    let dir = std::env::temp_dir().join(format!("entente-live-{}", std::process::id()));
    let (port_a, port_b) = (free_port(), free_port());
    let config_a = write_config(&dir.join("a"), &url, port_a);
    common::create_bucket_blocking(&config_a);
    let config_b = write_config(&dir.join("b"), &url, port_b);
    common::create_bucket_blocking(&config_b);
    let spawn = |config: &std::path::Path| {
        KillOnDrop(
            std::process::Command::new(env!("CARGO_BIN_EXE_entente-server"))
                .args(["serve", "--config"])
                .arg(config)
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let mut a = spawn(&config_a);
    wait_ready(port_a);
    let mut b = spawn(&config_b);
    wait_ready(port_b);

    let token = common::admin_token(port_a);
    let channel = common::public_channel(port_a, &token, "ops");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (mut on_b, _) = connect(port_b, &token, None).await;
        for i in 0..3 {
            let (status, _) = http(
                port_a,
                "POST",
                &format!("/api/v1/channels/{channel}/posts"),
                Some(&token),
                Some(json!({"message": format!("via a {i}")})),
            )
            .unwrap();
            assert_eq!(status, 201);
        }
        for i in 0..3 {
            assert_eq!(
                next(&mut on_b).await["data"]["message"],
                format!("via a {i}")
            );
        }
        // SIGTERM to b: its sockets are told to go elsewhere (1001), not cut.
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(b.0.id() as i32, libc::SIGTERM);
        }
        let closing = tokio::time::timeout(Duration::from_secs(10), on_b.next())
            .await
            .unwrap();
        match closing {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected a close frame, got {other:?}"),
        }
    });
    assert!(b.0.wait().unwrap().success());
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// A replica keeps the callers it recently checked, yet a change made on
/// another replica reaches it as soon as that replica hears of it — far
/// sooner than the cache's own expiry: a deactivated user and a logged-out
/// session are refused there.
#[tokio::test]
async fn a_change_on_one_replica_reaches_the_sessions_another_remembers() {
    let a = Workspace::new().await;
    let config = entente_crds::config::RuntimeConfig::load(&a.dir.join("runtime.yaml")).unwrap();
    let state = entente_runtime::server::prepare(config).await.unwrap();
    let b = Workspace {
        router: entente_runtime::server::router(state.clone()),
        state,
        dir: a.dir.clone(),
    };
    let admin = a.admin().await;
    let (bob_id, bob) = a.user("bob", "member").await;
    let (_, carol) = a.user("carol", "member").await;
    // Each token is checked on B, so B remembers it.
    for token in [&bob, &carol] {
        assert_eq!(
            b.get("/api/v1/users/me", token).await.0,
            axum::http::StatusCode::OK
        );
    }
    let (status, _) = a
        .post(
            &format!("/api/v1/users/{bob_id}/deactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    let (status, _) = a.post("/api/v1/auth/logout", &carol, json!({})).await;
    assert_eq!(status, axum::http::StatusCode::NO_CONTENT);
    let started = std::time::Instant::now();
    for token in [&bob, &carol] {
        while b.get("/api/v1/users/me", token).await.0 != axum::http::StatusCode::UNAUTHORIZED {
            assert!(
                started.elapsed() < entente_runtime::server::sessions::TTL / 5,
                "B still takes a token A revoked"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Concurrent posts commit in parallel, yet every replica delivers them in
/// one order, each once, and a reader that reconnects mid-stream with its
/// last `seq` continues exactly: eight writers split over two replicas of
/// one database, the reader on the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_two_replicas_are_delivered_in_one_order_and_resume_exactly() {
    const WRITERS: usize = 8;
    const EACH: usize = 30;
    let a = Workspace::new().await;
    let config = entente_crds::config::RuntimeConfig::load(&a.dir.join("runtime.yaml")).unwrap();
    let state = entente_runtime::server::prepare(config).await.unwrap();
    let b = std::sync::Arc::new(Workspace {
        router: entente_runtime::server::router(state.clone()),
        state,
        dir: a.dir.clone(),
    });
    let a = std::sync::Arc::new(a);
    let port_b = serve(&b).await;
    let (_, reader) = a.user("reader", "member").await;
    let channel = a.channel(&reader, "firehose", "public").await;
    let mut tokens = Vec::new();
    for i in 0..WRITERS {
        let (_, token) = a.user(&format!("writer{i}"), "member").await;
        a.post(
            &format!("/api/v1/channels/{channel}/join"),
            &token,
            json!({}),
        )
        .await;
        tokens.push(token);
    }
    let (mut socket, start) = connect(port_b, &reader, None).await;

    let mut writers = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let replica = if i % 2 == 0 { a.clone() } else { b.clone() };
        let channel = channel.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..EACH {
                let (status, post) = replica
                    .post(
                        &format!("/api/v1/channels/{channel}/posts"),
                        &token,
                        json!({"message": format!("w{i} n{n}")}),
                    )
                    .await;
                assert_eq!(status, axum::http::StatusCode::CREATED, "{post}");
            }
        }));
    }
    // Read half, drop the connection, come back with the last seq.
    let mut received: Vec<(i64, String)> = Vec::new();
    let take = |event: serde_json::Value, received: &mut Vec<(i64, String)>| {
        if event["type"] == "posted" {
            received.push((
                event["seq"].as_i64().unwrap(),
                event["data"]["message"].as_str().unwrap().to_string(),
            ));
        }
    };
    while received.len() < WRITERS * EACH / 2 {
        take(next(&mut socket).await, &mut received);
    }
    let last = received.last().unwrap().0;
    drop(socket);
    let (mut socket, _) = connect(port_b, &reader, Some(last)).await;
    while received.len() < WRITERS * EACH {
        take(next(&mut socket).await, &mut received);
    }
    for writer in writers {
        writer.await.unwrap();
    }

    // One order: strictly increasing, the table's own, nothing twice.
    let seqs: Vec<i64> = received.iter().map(|(seq, _)| *seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(seqs[0] > start);
    let messages: std::collections::HashSet<&String> = received.iter().map(|(_, m)| m).collect();
    assert_eq!(messages.len(), WRITERS * EACH, "each post once");
    let table: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM events WHERE kind = 'posted' AND seq > $1 ORDER BY seq",
    )
    .bind(start)
    .fetch_all(&a.state.db)
    .await
    .unwrap();
    assert_eq!(
        seqs, table,
        "the order every replica and every resume reads"
    );
    // Each writer's posts in the order it made them.
    for i in 0..WRITERS {
        let mine: Vec<usize> = received
            .iter()
            .filter_map(|(_, m)| m.strip_prefix(&format!("w{i} n")))
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(mine, (0..EACH).collect::<Vec<_>>(), "writer {i}");
    }
}
