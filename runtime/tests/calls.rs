//! Calls through the server: a channel's members get join tokens for the
//! channel's one call, held on the least loaded healthy SFU node (a real
//! `entente-sfu` process; an unreachable node is passed over), and three
//! real WebRTC peers (aiortc) joining with those tokens hear each other.
//! The call's start and end are posted in the channel and announced over
//! the WebSocket; a non-member gets nothing.

mod common;

use axum::http::StatusCode;
use common::{start_sfu, Workspace};
use serde_json::json;

async fn posts(ws: &Workspace, token: &str, channel: &str) -> Vec<String> {
    let (status, page) = ws
        .get(&format!("/api/v1/channels/{channel}/posts"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_get_tokens_for_one_call_on_a_healthy_node_and_hear_each_other() {
    let dir = std::env::temp_dir().join(format!("entente-calls-{}", std::process::id()));
    let (_sfu, port) = start_sfu(&dir);
    let dead = entente_e2e::free_port();
    let key_file = dir.join("join-key").display().to_string();
    let ws = Workspace::with_config(move |yaml| {
        format!(
            "{yaml}calls: {{sfuNodes: [\"http://127.0.0.1:{dead}\", \"http://127.0.0.1:{port}\"], joinTokenKey: {{file: {key_file}}}, joinTokenTtlSeconds: 60, recording: false}}\n"
        )
    })
    .await;
    let (alice_id, alice) = ws.user("alice", "member").await;
    let (bob_id, bob) = ws.user("bob", "member").await;
    let (carol_id, carol) = ws.user("carol", "member").await;
    let (_, dave) = ws.user("dave", "member").await;
    let channel = ws.channel(&alice, "ops", "private").await;
    for id in [&bob_id, &carol_id] {
        let (status, body) = ws
            .post(
                &format!("/api/v1/channels/{channel}/members"),
                &alice,
                json!({"userId": id}),
            )
            .await;
        assert!(status.is_success(), "{body}");
    }
    let http = common::serve(&ws).await;
    let (mut events, _) = common::connect(http, &bob, None).await;

    // Not a member: nothing, not even that there is a call.
    let (status, _) = ws
        .post(
            &format!("/api/v1/channels/{channel}/call"),
            &dave,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let mut tickets = Vec::new();
    for token in [&alice, &bob, &carol] {
        let (status, ticket) = ws
            .post(
                &format!("/api/v1/channels/{channel}/call"),
                token,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{ticket}");
        tickets.push(ticket);
    }
    let call_id = tickets[0]["call"]["id"].as_str().unwrap().to_string();
    for ticket in &tickets {
        assert_eq!(
            ticket["call"]["id"],
            call_id.as_str(),
            "one call per channel"
        );
        assert_eq!(
            ticket["url"],
            format!("ws://127.0.0.1:{port}/calls/{call_id}/ws"),
            "the healthy node, for everyone"
        );
        let claims = entente_crds::join_token::verify(
            common::SFU_KEY.as_bytes(),
            ticket["token"].as_str().unwrap(),
            &call_id,
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
        assert!(claims.expires <= chrono::Utc::now().timestamp() + 60);
    }
    assert_eq!(
        tickets[2]["call"]["participants"],
        json!([alice_id, bob_id, carol_id])
    );
    // Bob's client hears of the call.
    let started = loop {
        let event = common::next(&mut events).await;
        if event["type"] == "call_started" {
            break event;
        }
    };
    assert_eq!(started["data"]["id"], call_id.as_str(), "{started}");
    assert_eq!(posts(&ws, &bob, &channel).await, ["📞 started a call"]);

    // The three, through the SFU, with the server's tokens.
    let peers: Vec<std::process::Child> = tickets
        .iter()
        .zip([440, 660, 990])
        .map(|(ticket, freq)| common::call_peer(ticket, freq, "8"))
        .collect();
    let reports = tokio::task::spawn_blocking(move || {
        peers
            .into_iter()
            .map(common::peer_report)
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (report, (me, others)) in reports.iter().zip([
        (&alice_id, [(&bob_id, 660.0), (&carol_id, 990.0)]),
        (&bob_id, [(&alice_id, 440.0), (&carol_id, 990.0)]),
        (&carol_id, [(&alice_id, 440.0), (&bob_id, 660.0)]),
    ]) {
        assert!(report["joined"].as_bool().unwrap(), "{me}: {report}");
        for (user, freq) in others {
            let heard = report["tracks"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(id, t)| id.starts_with(user.as_str()) && t["kind"] == "audio")
                .map(|(_, t)| t["freq"].as_f64().unwrap_or(0.0))
                .unwrap_or_else(|| panic!("{me} got nothing from {user}: {report}"));
            assert!(
                (heard - freq).abs() < 15.0,
                "{me} heard {heard} Hz from {user}: {report}"
            );
        }
    }

    // Alice leaves; Bob and Carol just close their apps (their peers are gone
    // from the SFU). Within the grace to connect nothing changes; after it,
    // the sweep sees they are not on the node, and the last one out ends it.
    let (status, body) = ws
        .post(
            &format!("/api/v1/channels/{channel}/call/leave"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    entente_runtime::server::calls::sweep_once(&ws.state)
        .await
        .unwrap();
    let (status, call) = ws
        .get(&format!("/api/v1/channels/{channel}/call"), &bob)
        .await;
    assert_eq!(status, StatusCode::OK, "{call}");
    assert_eq!(call["participants"], json!([bob_id, carol_id]));
    sqlx::query("UPDATE call_participants SET joined_at = joined_at - interval '2 minutes'")
        .execute(&ws.state.db)
        .await
        .unwrap();
    entente_runtime::server::calls::sweep_once(&ws.state)
        .await
        .unwrap();
    let ended = loop {
        let event = common::next(&mut events).await;
        if event["type"] == "call_ended" {
            break event;
        }
    };
    assert!(!ended["data"]["endedAt"].is_null(), "{ended}");
    let (status, _) = ws
        .get(&format!("/api/v1/channels/{channel}/call"), &alice)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let messages = posts(&ws, &alice, &channel).await;
    assert!(
        messages[0].starts_with("📞 call ended after "),
        "{messages:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
