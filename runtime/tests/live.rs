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
