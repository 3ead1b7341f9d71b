//! What a client needs to manage people and channels: the user directory
//! (what each caller may find), one's own password, deactivating and
//! reactivating accounts, renaming channels and changing their purpose and
//! header, notes to oneself, and who may pin.

mod common;

use axum::http::{Method, StatusCode};
use common::{connect, next, serve, Workspace, ADMIN_PASSWORD};
use serde_json::{json, Value};

fn usernames(page: &Value) -> Vec<&str> {
    page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_directory_shows_each_caller_whom_they_may_find() {
    let ws = Workspace::with_config(|yaml| {
        format!(
            "{yaml}\nguests:\n  - policy: liaison\n    domains: [partner.example]\n    channels: [ops]\n    invitationLifetimeSeconds: 3600\n    uploadFiles: false\n    directMessages: false\n"
        )
    })
    .await;
    let admin = ws.admin().await;
    let (_, alice) = ws.user("alice", "member").await;
    let (bob_id, _) = ws.user("bob", "member").await;
    ws.user("carol", "member").await;
    let (status, _) = ws
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "dave", "password": "long-enough-pass", "displayName": "Dave Alderman", "email": "dave@example.org"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // By name, any case, in username or display name.
    let (_, page) = ws.get("/api/v1/users?q=ALDER", &alice).await;
    assert_eq!(usernames(&page), ["dave"], "{page}");
    assert!(
        page["users"][0]["email"].is_null(),
        "a member does not see others' emails"
    );
    let (_, page) = ws.get("/api/v1/users?q=ALDER", &admin).await;
    assert_eq!(
        page["users"][0]["email"], "dave@example.org",
        "an admin does"
    );

    // Paging: no overlap, no gap.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = ws
            .get(&format!("/api/v1/users?limit=2{after}"), &alice)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(usernames(&page).into_iter().map(String::from));
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["admin", "alice", "bob", "carol", "dave"]);

    // A guest finds only the people they share a channel with.
    let ops = ws.channel(&admin, "ops", "public").await;
    ws.post(
        &format!("/api/v1/channels/{ops}/members"),
        &admin,
        json!({"userId": bob_id}),
    )
    .await;
    let (_, guest) = ws
        .guest(&admin, "liaison", "gina@partner.example", "gina")
        .await;
    let (_, page) = ws.get("/api/v1/users", &guest).await;
    let found = usernames(&page);
    assert!(
        found.contains(&"bob") && found.contains(&"gina"),
        "{found:?}"
    );
    assert!(
        !found.contains(&"carol") && !found.contains(&"dave"),
        "{found:?}"
    );

    // Deactivated accounts: for admins, on request.
    let (status, _) = ws
        .post(
            &format!("/api/v1/users/{bob_id}/deactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = ws.get("/api/v1/users", &alice).await;
    assert!(!usernames(&page).contains(&"bob"));
    let (status, _) = ws
        .get("/api/v1/users?includeDeactivated=true", &alice)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, page) = ws
        .get("/api/v1/users?includeDeactivated=true&q=bob", &admin)
        .await;
    assert!(page["users"][0]["deactivatedAt"].is_string(), "{page}");
}

#[tokio::test]
async fn changing_ones_password_ends_the_other_sessions() {
    let ws = Workspace::new().await;
    let port = serve(&ws).await;
    let (_, here) = ws.user("alice", "member").await;
    let elsewhere = ws.login("alice", "alice-password-long").await;
    let (mut other_socket, _) = connect(port, &elsewhere, None).await;
    let change = |current: &str, new: &str| {
        ws.post(
            "/api/v1/users/me/password",
            &here,
            json!({"currentPassword": current, "newPassword": new}),
        )
    };
    let (status, error) = change("not it at all", "a new long passphrase").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert_eq!(error["field"], "currentPassword");
    let (status, error) = change("alice-password-long", "short").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["field"], "newPassword");
    let (status, _) = change("alice-password-long", "a new long passphrase").await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    assert_eq!(
        ws.get("/api/v1/users/me", &here).await.0,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        ws.get("/api/v1/users/me", &elsewhere).await.0,
        StatusCode::UNAUTHORIZED,
        "the other one ended"
    );
    // Its WebSocket is closed at once, not at its next request.
    assert!(
        common::closes(&mut other_socket, std::time::Duration::from_secs(5)).await,
        "the ended session's socket closes"
    );
    let login = |password: &str| {
        ws.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "alice", "password": password})),
        )
    };
    assert_eq!(
        login("alice-password-long").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login("a new long passphrase").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_deactivated_user_is_locked_out_at_once_and_keeps_their_posts() {
    let ws = Workspace::new().await;
    let port = serve(&ws).await;
    let admin = ws.login("admin", ADMIN_PASSWORD).await;
    let admin_id = ws.get("/api/v1/users/me", &admin).await.1["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (bob_id, bob) = ws.user("bob", "member").await;
    let (status, token) = ws
        .post("/api/v1/users/me/tokens", &bob, json!({"name": "bot"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let bot = token["token"].as_str().unwrap().to_string();
    let ops = ws.channel(&admin, "ops", "public").await;
    ws.post(&format!("/api/v1/channels/{ops}/join"), &bob, json!({}))
        .await;
    let post = ws.say(&bob, &ops, "written before").await;
    let (mut socket, _) = connect(port, &bob, None).await;

    let (status, user) = ws
        .post(
            &format!("/api/v1/users/{bob_id}/deactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert!(user["deactivatedAt"].is_string());
    for token in [&bob, &bot] {
        assert_eq!(
            ws.get("/api/v1/users/me", token).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(
        common::closes(&mut socket, std::time::Duration::from_secs(5)).await,
        "the deactivated user's socket closes"
    );
    let login = || {
        ws.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "bob", "password": "bob-password-long"})),
        )
    };
    assert_eq!(login().await.0, StatusCode::UNAUTHORIZED);
    let (_, page) = ws
        .get(&format!("/api/v1/channels/{ops}/posts"), &admin)
        .await;
    assert_eq!(page["posts"][0]["id"], post["id"], "what they wrote stays");

    // Not oneself; not by a member; then back.
    let (status, _) = ws
        .post(
            &format!("/api/v1/users/{admin_id}/deactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, carol) = ws.user("carol", "member").await;
    let (status, _) = ws
        .post(
            &format!("/api/v1/users/{bob_id}/reactivate"),
            &carol,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = ws
        .post(
            &format!("/api/v1/users/{bob_id}/reactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(login().await.0, StatusCode::OK);
    assert_eq!(
        ws.get("/api/v1/users/me", &bot).await.0,
        StatusCode::UNAUTHORIZED,
        "revoked tokens stay revoked"
    );
    let (_, audit) = ws.get("/api/v1/admin/audit?kind=user.", &admin).await;
    let kinds: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["user.deactivated", "user.reactivated"]);
}

#[tokio::test]
async fn channels_are_renamed_and_described_by_those_allowed() {
    let ws = Workspace::new().await;
    let port = serve(&ws).await;
    let admin = ws.admin().await;
    let (_, alice) = ws.user("alice", "member").await;
    let (_, bob) = ws.user("bob", "member").await;
    let ops = ws.channel(&alice, "ops", "public").await;
    ws.post(&format!("/api/v1/channels/{ops}/join"), &bob, json!({}))
        .await;
    let (mut watcher, _) = connect(port, &bob, None).await;
    let path = format!("/api/v1/channels/{ops}");
    let patch = |token: &str, body: Value| {
        let (ws, path, token) = (&ws, path.clone(), token.to_string());
        async move {
            ws.call(Method::PATCH, &path, Some(&token), Some(body))
                .await
        }
    };
    // The channel's admin (its creator) describes it; members are told.
    let (status, channel) = patch(
        &alice,
        json!({"displayName": "Operations", "purpose": "Joint operations", "header": "On call: @alice"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{channel}");
    assert_eq!(
        (
            &channel["displayName"],
            &channel["purpose"],
            &channel["header"]
        ),
        (
            &json!("Operations"),
            &json!("Joint operations"),
            &json!("On call: @alice")
        )
    );
    let event = next(&mut watcher).await;
    assert_eq!(event["type"], "channel_updated", "{event}");
    assert_eq!(event["data"]["header"], "On call: @alice");
    // A member may not; nor may a channel admin rename it (policies select
    // channels by name); a system admin may.
    assert_eq!(
        patch(&bob, json!({"purpose": "mine"})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        patch(&alice, json!({"name": "ops-2"})).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, renamed) = patch(&admin, json!({"name": "joint-ops"})).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "joint-ops");
    assert_eq!(
        renamed["purpose"], "Joint operations",
        "what was not sent stays"
    );
    ws.channel(&alice, "intel", "public").await;
    let (status, taken) = patch(&admin, json!({"name": "intel"})).await;
    assert_eq!(
        (status, taken["field"].clone()),
        (StatusCode::CONFLICT, json!("name"))
    );
    let (status, empty) = patch(&alice, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{empty}");
    let (_, log) = ws
        .get("/api/v1/admin/audit?kind=channel.updated", &admin)
        .await;
    assert_eq!(log.as_array().unwrap().len(), 2, "{log}");
}

#[tokio::test]
async fn a_conversation_with_oneself_is_ones_notes() {
    let ws = Workspace::new().await;
    let (alice_id, alice) = ws.user("alice", "member").await;
    let (status, notes) = ws
        .post(
            "/api/v1/channels/direct",
            &alice,
            json!({"userId": alice_id}),
        )
        .await;
    assert!(status.is_success(), "{notes}");
    let (_, again) = ws
        .post(
            "/api/v1/channels/direct",
            &alice,
            json!({"userId": alice_id}),
        )
        .await;
    assert_eq!(again["id"], notes["id"], "one notes channel");
    let id = notes["id"].as_str().unwrap();
    let (_, members) = ws
        .get(&format!("/api/v1/channels/{id}/members"), &alice)
        .await;
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
    let post = ws.say(&alice, id, "remember the milk").await;
    let (status, pinned) = ws
        .post(
            &format!("/api/v1/posts/{}/pin", post["id"].as_str().unwrap()),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pinned}");
}
