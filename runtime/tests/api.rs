//! The REST API against a real PostgreSQL: accounts, channels, posts, and who
//! may see and do what.

mod common;

use axum::http::{Method, StatusCode};
use common::{Workspace, ADMIN_PASSWORD};
use serde_json::{json, Value};

#[tokio::test]
async fn login_sessions_and_personal_tokens() {
    let ws = Workspace::new().await;
    let (status, body) = ws
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": "wrong"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthenticated");
    let (status, _) = ws
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "nobody", "password": "wrong"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an unknown user looks like a wrong password"
    );

    let session = ws.login("ADMIN", ADMIN_PASSWORD).await; // usernames are case-insensitive
    let (status, me) = ws.get("/api/v1/users/me", &session).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "system_admin");
    assert!(me.get("passwordHash").is_none() && !me.to_string().contains("argon2"));

    // A personal access token works until revoked, and is shown only once.
    let (status, created) = ws
        .post(
            "/api/v1/users/me/tokens",
            &session,
            json!({"name": "ci bot"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let pat = created["token"].as_str().unwrap().to_string();
    assert_eq!(ws.get("/api/v1/users/me", &pat).await.0, StatusCode::OK);
    let (_, listed) = ws.get("/api/v1/users/me/tokens", &session).await;
    assert_eq!(listed[0]["name"], "ci bot");
    assert!(listed[0].get("token").is_none());
    let id = created["id"].as_str().unwrap();
    let (status, _) = ws
        .call(
            Method::DELETE,
            &format!("/api/v1/users/me/tokens/{id}"),
            Some(&session),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        ws.get("/api/v1/users/me", &pat).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Logging out revokes the session.
    let (status, _) = ws
        .call(Method::POST, "/api/v1/auth/logout", Some(&session), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        ws.get("/api/v1/users/me", &session).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ws.get("/api/v1/users/me", "garbage").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn only_admins_create_users_and_bad_input_names_the_field() {
    let ws = Workspace::new().await;
    let admin = ws.admin().await;
    let (_, member) = ws.user("alice", "member").await;
    let (status, _) = ws
        .post(
            "/api/v1/users",
            &member,
            json!({"username": "mallory", "password": "long-enough-pass"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    for (body, field) in [
        (
            json!({"username": "Bad Name", "password": "long-enough-pass"}),
            "username",
        ),
        (json!({"username": "bob", "password": "short"}), "password"),
        (
            json!({"username": "bob", "password": "long-enough-pass", "role": "root"}),
            "role",
        ),
    ] {
        let (status, error) = ws.post("/api/v1/users", &admin, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["field"], field);
        assert!(error["message"].as_str().unwrap().len() > 10);
    }
    let (status, error) = ws
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "alice", "password": "long-enough-pass"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["field"], "username");

    // Attributes are set by an admin and carried on the user.
    let (_, bob) = ws
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "bob", "password": "long-enough-pass", "attributes": {"nation": "FR"}}),
        )
        .await;
    let id = bob["id"].as_str().unwrap();
    let (status, updated) = ws
        .call(
            Method::PUT,
            &format!("/api/v1/users/{id}/attributes"),
            Some(&admin),
            Some(json!({"nation": "FR", "clearance": "SECRET"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["attributes"]["clearance"], "SECRET");
}

#[tokio::test]
async fn posts_threads_edits_reactions_pins_and_pagination() {
    let ws = Workspace::new().await;
    let (alice_id, alice) = ws.user("alice", "member").await;
    let (_, bob) = ws.user("bob", "member").await;
    let ops = ws.channel(&alice, "ops", "public").await;
    assert_eq!(
        ws.post(&format!("/api/v1/channels/{ops}/join"), &bob, json!({}))
            .await
            .0,
        StatusCode::OK
    );

    let (status, root) = ws
        .post(
            &format!("/api/v1/channels/{ops}/posts"),
            &alice,
            json!({"message": "first @bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{root}");
    let root_id = root["id"].as_str().unwrap().to_string();
    assert_eq!(root["userId"], alice_id.as_str());

    // Replies to a reply land in the same thread.
    let (_, reply) = ws
        .post(
            &format!("/api/v1/channels/{ops}/posts"),
            &bob,
            json!({"message": "reply", "rootId": root_id}),
        )
        .await;
    let (_, nested) = ws
        .post(
            &format!("/api/v1/channels/{ops}/posts"),
            &alice,
            json!({"message": "nested", "rootId": reply["id"]}),
        )
        .await;
    assert_eq!(nested["rootId"], root_id.as_str());
    let (_, thread) = ws
        .get(&format!("/api/v1/posts/{root_id}/thread"), &bob)
        .await;
    let messages: Vec<&str> = thread
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["first @bob", "reply", "nested"]);

    // Only the author edits; history keeps the earlier text.
    let path = format!("/api/v1/posts/{root_id}");
    assert_eq!(
        ws.call(
            Method::PATCH,
            &path,
            Some(&bob),
            Some(json!({"message": "hijack"}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (status, edited) = ws
        .call(
            Method::PATCH,
            &path,
            Some(&alice),
            Some(json!({"message": "first, edited"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(edited["editedAt"].is_string());
    let (_, history) = ws.get(&format!("{path}/history"), &bob).await;
    assert_eq!(history[0]["message"], "first @bob");

    // Reactions are idempotent per user and emoji.
    let reaction = format!("{path}/reactions/thumbsup");
    ws.call(Method::PUT, &reaction, Some(&bob), None).await;
    let (_, reacted) = ws.call(Method::PUT, &reaction, Some(&bob), None).await;
    assert_eq!(reacted["reactions"].as_array().unwrap().len(), 1);
    let (status, _) = ws
        .call(
            Method::PUT,
            &format!("{path}/reactions/not%20an%20emoji"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, unreacted) = ws.call(Method::DELETE, &reaction, Some(&bob), None).await;
    assert!(unreacted["reactions"].as_array().unwrap().is_empty());

    // Pins: the channel's admins (alice made it) and a post's author, not
    // any member.
    let (status, refused) = ws.post(&format!("{path}/pin"), &bob, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, pinned) = ws.post(&format!("{path}/pin"), &alice, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{pinned}");
    let (_, pinned) = ws
        .get(&format!("/api/v1/channels/{ops}/pinned"), &alice)
        .await;
    assert_eq!(pinned[0]["id"], root_id.as_str());

    // Cursor pagination: newest first, no overlap, no gap.
    for i in 0..7 {
        ws.post(
            &format!("/api/v1/channels/{ops}/posts"),
            &alice,
            json!({"message": format!("bulk {i}")}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let query = cursor.map(|c| format!("&before={c}")).unwrap_or_default();
        let (status, page) = ws
            .get(
                &format!("/api/v1/channels/{ops}/posts?limit=4{query}"),
                &bob,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(
            page["posts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["seq"].as_i64().unwrap()),
        );
        match page["next"].as_i64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    let (status, error) = ws
        .get(&format!("/api/v1/channels/{ops}/posts?limit=1000"), &bob)
        .await;
    assert_eq!(
        (status, error["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("limit"))
    );

    // Deleting: the author (or a channel admin), and the post is gone from lists.
    assert_eq!(
        ws.call(Method::DELETE, &path, Some(&bob), None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ws.call(Method::DELETE, &path, Some(&alice), None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, page) = ws
        .get(&format!("/api/v1/channels/{ops}/posts?limit=200"), &bob)
        .await;
    assert!(page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["id"] != root_id.as_str()));
    assert_eq!(
        ws.call(
            Method::PATCH,
            &path,
            Some(&alice),
            Some(json!({"message": "x"}))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

/// The messages of a list of posts, sorted.
fn sorted_messages(posts: &Value) -> Vec<String> {
    let mut messages: Vec<String> = posts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap().to_string())
        .collect();
    messages.sort();
    messages
}

fn counts(channels: &Value, id: &str) -> (i64, i64) {
    let channel = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap();
    (
        channel["unread"].as_i64().unwrap(),
        channel["mentions"].as_i64().unwrap(),
    )
}

/// Posts made at the same moment are committed together (the group
/// commit), yet each is held to the rules alone: a bad one among them is
/// refused with its field named, and every other is written once, with the
/// author's read marker past their own posts.
#[tokio::test]
async fn posts_made_together_are_committed_together_and_refused_alone() {
    let ws = Workspace::new().await;
    let (_, alice) = ws.user("alice", "member").await;
    let busy = ws.channel(&alice, "busy", "public").await;
    let elsewhere = ws.channel(&alice, "elsewhere", "public").await;
    let foreign = ws
        .say(&alice, &elsewhere, "a post in another channel")
        .await;
    let (groups, grouped) = (
        ws.state.metrics.post_groups.get(),
        ws.state.metrics.posts_grouped.get(),
    );
    let path = format!("/api/v1/channels/{busy}/posts");
    let bad = |i: usize| i % 10 == 7;
    let answers = futures_util::future::join_all((0..40).map(|i| {
        let body = if bad(i) {
            json!({"message": format!("reply {i}"), "rootId": foreign["id"]})
        } else {
            json!({"message": format!("post {i}")})
        };
        ws.post(&path, &alice, body)
    }))
    .await;
    for (i, (status, body)) in answers.iter().enumerate() {
        if bad(i) {
            assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["field"], "rootId", "{body}");
        } else {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
        }
    }
    let groups = ws.state.metrics.post_groups.get() - groups;
    let grouped = ws.state.metrics.posts_grouped.get() - grouped;
    assert_eq!(grouped, 40, "every post went through a group");
    assert!(
        groups < grouped,
        "some were committed together: {groups} groups"
    );
    let (_, page) = ws.get(&format!("{path}?limit=200"), &alice).await;
    let messages = sorted_messages(&page["posts"]);
    let mut expected: Vec<String> = (0..40)
        .filter(|i| !bad(*i))
        .map(|i| format!("post {i}"))
        .collect();
    expected.sort();
    assert_eq!(messages, expected);
    let (_, channels) = ws.get("/api/v1/channels", &alice).await;
    assert_eq!(counts(&channels, &busy), (0, 0), "one's own posts are read");
}

#[tokio::test]
async fn unread_and_mention_counts_follow_the_read_marker() {
    let ws = Workspace::new().await;
    let (_, alice) = ws.user("alice", "member").await;
    let (_, bob) = ws.user("bob", "member").await;
    let ops = ws.channel(&alice, "ops", "public").await;
    ws.post(&format!("/api/v1/channels/{ops}/join"), &bob, json!({}))
        .await;
    for message in [
        "hello",
        "@bob look",
        "@channel all hands",
        "mail bob@example.org",
    ] {
        ws.post(
            &format!("/api/v1/channels/{ops}/posts"),
            &alice,
            json!({"message": message}),
        )
        .await;
    }
    let (_, channels) = ws.get("/api/v1/channels", &bob).await;
    assert_eq!(counts(&channels, &ops), (4, 2));
    // Alice's own posts are not unread for her.
    let (_, channels) = ws.get("/api/v1/channels", &alice).await;
    assert_eq!(counts(&channels, &ops), (0, 0));

    let (status, _) = ws
        .post(&format!("/api/v1/channels/{ops}/read"), &bob, json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, channels) = ws.get("/api/v1/channels", &bob).await;
    assert_eq!(counts(&channels, &ops), (0, 0));
}

/// (what, may a member / non-member / guest member / guest outsider / admin outsider do it)
#[tokio::test]
async fn the_authorisation_matrix() {
    let ws = Workspace::new().await;
    let (_, owner) = ws.user("owner", "member").await;
    let (member_id, member) = ws.user("member", "member").await;
    let (_, outsider) = ws.user("outsider", "member").await;
    let (guest_id, guest) = ws.user("guest", "guest").await;
    let (_, guest_outsider) = ws.user("guest2", "guest").await;
    let admin = ws.admin().await;

    let public = ws.channel(&owner, "town-square", "public").await;
    let private = ws.channel(&owner, "planning", "private").await;
    for channel in [&public, &private] {
        for user in [&member_id, &guest_id] {
            let (status, body) = ws
                .post(
                    &format!("/api/v1/channels/{channel}/members"),
                    &owner,
                    json!({"userId": user}),
                )
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        }
    }
    let (_, direct) = ws
        .post(
            "/api/v1/channels/direct",
            &owner,
            json!({"userId": member_id}),
        )
        .await;
    let direct = direct["id"].as_str().unwrap().to_string();

    // Each channel gets a post with a word of its own and an attached file.
    let mut seeds = std::collections::HashMap::new();
    for (i, channel) in [&public, &private, &direct].into_iter().enumerate() {
        let (status, file) = ws
            .upload(
                &owner,
                channel,
                "seed.txt",
                b"seed file".to_vec(),
                "text/plain",
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{file}");
        let file = file["id"].as_str().unwrap().to_string();
        let word = format!("seedword{i}");
        let (_, post) = ws
            .post(
                &format!("/api/v1/channels/{channel}/posts"),
                &owner,
                json!({"message": word, "fileIds": [file]}),
            )
            .await;
        seeds.insert(
            channel.clone(),
            (post["id"].as_str().unwrap().to_string(), word, file),
        );
    }

    // (caller, channel, read, post, react)
    let cases: Vec<(&str, &String, &String, StatusCode, StatusCode, StatusCode)> = vec![
        (
            "member",
            &member,
            &public,
            StatusCode::OK,
            StatusCode::CREATED,
            StatusCode::OK,
        ),
        (
            "member",
            &member,
            &private,
            StatusCode::OK,
            StatusCode::CREATED,
            StatusCode::OK,
        ),
        (
            "member",
            &member,
            &direct,
            StatusCode::OK,
            StatusCode::CREATED,
            StatusCode::OK,
        ),
        (
            "non-member",
            &outsider,
            &public,
            StatusCode::OK,
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
        ),
        (
            "non-member",
            &outsider,
            &private,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
        ),
        (
            "non-member",
            &outsider,
            &direct,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
        ),
        (
            "guest member",
            &guest,
            &public,
            StatusCode::OK,
            StatusCode::CREATED,
            StatusCode::OK,
        ),
        (
            "guest member",
            &guest,
            &private,
            StatusCode::OK,
            StatusCode::CREATED,
            StatusCode::OK,
        ),
        (
            "guest member",
            &guest,
            &direct,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
        ),
        (
            "guest outsider",
            &guest_outsider,
            &public,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
        ),
        (
            "guest outsider",
            &guest_outsider,
            &private,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
        ),
        (
            "admin",
            &admin,
            &public,
            StatusCode::OK,
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
        ),
        (
            "admin",
            &admin,
            &private,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
        ),
        (
            "admin",
            &admin,
            &direct,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
        ),
    ];
    let mut failures = Vec::new();
    for (who, token, channel, read, post, react) in cases {
        let (seed, word, file) = &seeds[channel];
        let got_read = ws
            .get(&format!("/api/v1/channels/{channel}/posts"), token)
            .await
            .0;
        let got_post = ws
            .post(
                &format!("/api/v1/channels/{channel}/posts"),
                token,
                json!({"message": "hi"}),
            )
            .await
            .0;
        let got_react = ws
            .call(
                Method::PUT,
                &format!("/api/v1/posts/{seed}/reactions/eyes"),
                Some(token),
                None,
            )
            .await
            .0;
        let got_thread = ws
            .get(&format!("/api/v1/posts/{seed}/thread"), token)
            .await
            .0;
        let got_download = ws.get(&format!("/api/v1/files/{file}"), token).await.0;
        let (_, found) = ws.get(&format!("/api/v1/search?q={word}"), token).await;
        let searchable = found.as_array().is_some_and(|hits| !hits.is_empty());
        let readable = read == StatusCode::OK;
        if (
            got_read,
            got_post,
            got_react,
            got_thread,
            got_download,
            searchable,
        ) != (read, post, react, read, read, readable)
        {
            failures.push(format!(
                "{who} on {channel}: read {got_read} (want {read}), post {got_post} (want {post}), react {got_react} (want {react}), thread {got_thread}, download {got_download}, found by search {searchable} (want {readable})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The channel list shows exactly what each caller may see.
    let names = |channels: Value| -> Vec<String> {
        let mut ids: Vec<String> = channels
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    assert_eq!(
        names(ws.get("/api/v1/channels", &member).await.1),
        sorted(vec![&public, &private, &direct])
    );
    assert_eq!(
        names(ws.get("/api/v1/channels", &outsider).await.1),
        sorted(vec![&public])
    );
    assert_eq!(
        names(ws.get("/api/v1/channels", &guest).await.1),
        sorted(vec![&public, &private])
    );
    assert!(names(ws.get("/api/v1/channels", &guest_outsider).await.1).is_empty());
    assert_eq!(
        names(ws.get("/api/v1/channels", &admin).await.1),
        sorted(vec![&public])
    );

    // Guests cannot join public channels, create channels or open direct messages.
    assert_eq!(
        ws.post(
            &format!("/api/v1/channels/{public}/join"),
            &guest_outsider,
            json!({})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ws.post(
            "/api/v1/channels",
            &guest,
            json!({"name": "g", "kind": "public"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ws.post(
            "/api/v1/channels/direct",
            &guest,
            json!({"userId": member_id})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn membership_admins_and_archiving() {
    let ws = Workspace::new().await;
    let (_, owner) = ws.user("owner", "member").await;
    let (member_id, member) = ws.user("member", "member").await;
    let (other_id, _) = ws.user("other", "member").await;
    let private = ws.channel(&owner, "planning", "private").await;
    ws.post(
        &format!("/api/v1/channels/{private}/members"),
        &owner,
        json!({"userId": member_id}),
    )
    .await;

    // A plain member of a private channel cannot add or remove people.
    assert_eq!(
        ws.post(
            &format!("/api/v1/channels/{private}/members"),
            &member,
            json!({"userId": other_id})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let kick = format!("/api/v1/channels/{private}/members/{member_id}");
    assert_eq!(
        ws.call(Method::DELETE, &kick, Some(&member), None).await.0,
        StatusCode::FORBIDDEN
    );

    // Leaving makes the channel vanish for the leaver.
    assert_eq!(
        ws.post(
            &format!("/api/v1/channels/{private}/leave"),
            &member,
            json!({})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ws.get(&format!("/api/v1/channels/{private}"), &member)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // Archived: readable, not writable.
    let (status, archived) = ws
        .post(
            &format!("/api/v1/channels/{private}/archive"),
            &owner,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(archived["archivedAt"].is_string());
    assert_eq!(
        ws.get(&format!("/api/v1/channels/{private}/posts"), &owner)
            .await
            .0,
        StatusCode::OK
    );
    let (status, error) = ws
        .post(
            &format!("/api/v1/channels/{private}/posts"),
            &owner,
            json!({"message": "late"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error["message"].as_str().unwrap().contains("archived"));

    // Direct conversations are unique per pair; group conversations need 3 to 8 people.
    let (_, a) = ws
        .post(
            "/api/v1/channels/direct",
            &owner,
            json!({"userId": member_id}),
        )
        .await;
    let (_, b) = ws
        .post(
            "/api/v1/channels/direct",
            &member,
            json!({"userId": ws_user_id(&ws, &owner).await}),
        )
        .await;
    assert_eq!(a["id"], b["id"]);
    let (status, error) = ws
        .post(
            "/api/v1/channels/group",
            &owner,
            json!({"userIds": [member_id]}),
        )
        .await;
    assert_eq!(
        (status, error["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("userIds"))
    );
    let (status, group) = ws
        .post(
            "/api/v1/channels/group",
            &owner,
            json!({"userIds": [member_id, other_id]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(group["kind"], "group");
}

async fn ws_user_id(ws: &Workspace, token: &str) -> String {
    ws.get("/api/v1/users/me", token).await.1["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn malformed_requests_are_400_and_unknown_things_404() {
    let ws = Workspace::new().await;
    let (_, alice) = ws.user("alice", "member").await;
    let ops = ws.channel(&alice, "ops", "public").await;
    let (status, error) = ws
        .post(
            &format!("/api/v1/channels/{ops}/posts"),
            &alice,
            json!({"message": "   "}),
        )
        .await;
    assert_eq!(
        (status, error["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("message"))
    );
    let (status, error) = ws
        .post(
            &format!("/api/v1/channels/{ops}/posts"),
            &alice,
            json!({"mesage": "typo"}),
        )
        .await;
    assert_eq!(
        (status, error["code"].clone(), error["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid"), json!("mesage")),
        "{error}"
    );
    let (status, error) = ws
        .post(
            &format!("/api/v1/channels/{ops}/posts"),
            &alice,
            json!({"message": 42}),
        )
        .await;
    assert_eq!(
        (status, error["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("message")),
        "{error}"
    );
    let (status, error) = ws
        .call(
            Method::POST,
            &format!("/api/v1/channels/{ops}/posts"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{error}");
    // An id that could be one but is not: 404; one that cannot be: 400.
    let (status, _) = ws
        .post(
            "/api/v1/channels/01ARZ3NDEKTSV4RRFFQ69G5FAV/posts",
            &alice,
            json!({"message": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, error) = ws
        .post(
            "/api/v1/channels/NOPE/posts",
            &alice,
            json!({"message": "x"}),
        )
        .await;
    assert_eq!(
        (status, error["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("id")),
        "{error}"
    );
    let (status, error) = ws
        .post(
            "/api/v1/channels",
            &alice,
            json!({"name": "ops", "kind": "public"}),
        )
        .await;
    assert_eq!(
        (status, error["field"].clone()),
        (StatusCode::CONFLICT, json!("name"))
    );
    let huge = "x".repeat(70_000);
    let (status, error) = ws
        .post(
            &format!("/api/v1/channels/{ops}/posts"),
            &alice,
            json!({"message": huge}),
        )
        .await;
    assert_eq!(
        (status, error["code"].clone()),
        (StatusCode::PAYLOAD_TOO_LARGE, json!("too_large")),
        "{error}"
    );
}

#[tokio::test]
async fn search_finds_only_what_the_caller_may_read() {
    let ws = Workspace::new().await;
    let (_, alice) = ws.user("alice", "member").await;
    let (bob_id, bob) = ws.user("bob", "member").await;
    let (_, carol) = ws.user("carol", "member").await;
    let (guest_id, guest) = ws.user("guest", "guest").await;
    let lobby = ws.channel(&alice, "lobby", "public").await;
    let intel = ws.channel(&alice, "intel", "private").await;
    ws.post(
        &format!("/api/v1/channels/{intel}/members"),
        &alice,
        json!({"userId": bob_id}),
    )
    .await;
    ws.post(&format!("/api/v1/channels/{lobby}/join"), &bob, json!({}))
        .await;
    ws.post(
        &format!("/api/v1/channels/{intel}/members"),
        &alice,
        json!({"userId": guest_id}),
    )
    .await;
    for (token, channel, message) in [
        (&alice, &lobby, "convoy leaves at dawn"),
        (&bob, &lobby, "convoy delayed by weather"),
        (&alice, &intel, "convoy route compromised"),
        (&alice, &lobby, "unrelated chatter"),
    ] {
        ws.post(
            &format!("/api/v1/channels/{channel}/posts"),
            token,
            json!({"message": message}),
        )
        .await;
    }
    let found = |token: &str, q: &str| {
        let ws = &ws;
        let q = q.replace(' ', "%20").replace(':', "%3A");
        let token = token.to_string();
        async move {
            let (status, body) = ws.get(&format!("/api/v1/search?q={q}"), &token).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            sorted_messages(&body)
        }
    };
    assert_eq!(
        found(&bob, "convoy").await,
        [
            "convoy delayed by weather",
            "convoy leaves at dawn",
            "convoy route compromised"
        ]
    );
    // Carol reads the public channel without being in it, never the private one.
    assert_eq!(
        found(&carol, "convoy").await,
        ["convoy delayed by weather", "convoy leaves at dawn"]
    );
    // The guest sees only the channel they were given.
    assert_eq!(found(&guest, "convoy").await, ["convoy route compromised"]);
    assert_eq!(
        found(&bob, "convoy in:intel").await,
        ["convoy route compromised"]
    );
    assert_eq!(
        found(&bob, "convoy from:bob").await,
        ["convoy delayed by weather"]
    );
    assert_eq!(found(&bob, "from:bob").await, ["convoy delayed by weather"]);
    assert!(found(&bob, "convoy before:2000-01-01").await.is_empty());
    assert_eq!(
        found(&bob, "convoy after:2000-01-01 in:lobby").await.len(),
        2
    );
    let (status, error) = ws.get("/api/v1/search?q=before%3Asoon", &bob).await;
    assert_eq!(
        (status, error["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("q"))
    );
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_for_longer_each_time_and_are_audited() {
    let ws = Workspace::new().await;
    let admin = ws.login("admin", ADMIN_PASSWORD).await;
    let (status, body) = ws
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "target", "password": "the right password"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let attempt = |password: &'static str| {
        let ws = &ws;
        async move {
            ws.call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": "Target", "password": password})),
            )
            .await
        }
    };
    // The free allowance, then the failure that starts a 1 s lock.
    for _ in 0..6 {
        assert_eq!(attempt("a guess").await.0, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password waits, and says for how long.
    let (status, body) = attempt("the right password").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "throttled");
    // Another account is not locked with it.
    ws.login("admin", ADMIN_PASSWORD).await;
    let (_, entries) = ws
        .get("/api/v1/admin/audit?kind=auth.throttled", &admin)
        .await;
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0]["reason"]
        .as_str()
        .unwrap()
        .contains("account:target"));
    // After the lock, the right password works and clears the count.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    ws.login("target", "the right password").await;
    assert_eq!(attempt("a guess").await.0, StatusCode::UNAUTHORIZED);
    ws.login("target", "the right password").await;
}

#[tokio::test]
async fn wrong_passwords_from_one_address_lock_that_address_not_the_proxy() {
    use axum::{body::Body, http::Request};
    let ws = Workspace::new().await;
    let login = |address: &'static str, username: String| {
        let ws = &ws;
        async move {
            let request = Request::post("/api/v1/auth/login")
                .header("content-type", "application/json")
                .header("x-forwarded-for", format!("203.0.113.9, {address}"))
                .body(Body::from(
                    json!({"username": username, "password": "a guess"}).to_string(),
                ))
                .unwrap();
            ws.request(request).await.status()
        }
    };
    // Twenty free failures from one client address (other accounts each
    // time, so no account is locked), then that address is locked.
    for i in 0..21 {
        assert_eq!(
            login("198.51.100.7", format!("nobody{i}")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login("198.51.100.7", "someone".into()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy is not.
    assert_eq!(
        login("198.51.100.8", "someone".into()).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_nul_character_anywhere_is_a_400_not_a_500() {
    let ws = Workspace::new().await;
    let admin = ws.login("admin", ADMIN_PASSWORD).await;
    let channel = ws.channel(&admin, "nul-test", "public").await;
    let refused = |(status, body): (StatusCode, Value)| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], "invalid");
        assert!(body["message"].as_str().unwrap().contains("NUL"), "{body}");
    };
    // In a body's text, in JSON, in a path id, in a query.
    refused(
        ws.post(
            &format!("/api/v1/channels/{channel}/posts"),
            &admin,
            json!({"message": "a\u{0}b"}),
        )
        .await,
    );
    let (user, _) = ws.user("somebody", "member").await;
    refused(
        ws.call(
            Method::PUT,
            &format!("/api/v1/users/{user}/attributes"),
            Some(&admin),
            Some(json!({"nation": "G\u{0}B"})),
        )
        .await,
    );
    let (status, error) = ws.get("/api/v1/channels/a%00b", &admin).await;
    assert_eq!(
        (status, error["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("id")),
        "a path id is refused before any lookup: {error}"
    );
    refused(ws.get("/api/v1/search?q=a%00b", &admin).await);
}

/// Every field a client fills is bounded and refuses control characters,
/// each refusal a JSON 400 naming the field; query strings, unknown paths
/// and wrong methods answer in the same JSON shape.
#[tokio::test]
async fn bad_input_is_a_json_4xx_naming_the_field() {
    let ws = Workspace::new().await;
    let admin = ws.login("admin", ADMIN_PASSWORD).await;
    let channel = ws.channel(&admin, "limits", "public").await;
    let expect = |what: &str, (status, body): (StatusCode, Value), field: &str| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["code"], "invalid", "{what}: {body}");
        assert_eq!(body["field"], field, "{what}: {body}");
        assert!(
            body["message"].as_str().unwrap().len() < 300,
            "{what}: the message names the problem, not the input: {body}"
        );
    };
    let user = |extra: Value| {
        let mut body = json!({"username": "newcomer", "password": "long-enough-pass"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (what, extra, field) in [
        (
            "a 60 KB display name",
            json!({"displayName": "x".repeat(60_000)}),
            "displayName",
        ),
        (
            "a 65-character display name",
            json!({"displayName": "é".repeat(65)}),
            "displayName",
        ),
        (
            "a line break in a name",
            json!({"displayName": "two\nlines"}),
            "displayName",
        ),
        (
            "a right-to-left override",
            json!({"displayName": "adm\u{202E}nim"}),
            "displayName",
        ),
        (
            "an invisible name",
            json!({"displayName": "\u{200B}\u{200B}"}),
            "displayName",
        ),
        (
            "not an email",
            json!({"email": "alice at example.org"}),
            "email",
        ),
        (
            "an email without a domain",
            json!({"email": "alice@localhost"}),
            "email",
        ),
        (
            "a 2 KB password",
            json!({"password": "p".repeat(2048)}),
            "password",
        ),
        (
            "an attribute holding an object",
            json!({"attributes": {"nation": {"x": 1}}}),
            "attributes",
        ),
        (
            "a 1 KB attribute value",
            json!({"attributes": {"nation": "x".repeat(1024)}}),
            "attributes",
        ),
        (
            "a badly named attribute",
            json!({"attributes": {"na tion": "FR"}}),
            "attributes",
        ),
    ] {
        expect(
            what,
            ws.post("/api/v1/users", &admin, user(extra)).await,
            field,
        );
    }
    let too_many: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("a{i}"), json!("x"))).collect();
    expect(
        "33 attributes",
        ws.call(
            Method::PUT,
            &format!(
                "/api/v1/users/{}/attributes",
                ws.user("holder", "member").await.0
            ),
            Some(&admin),
            Some(Value::Object(too_many)),
        )
        .await,
        "attributes",
    );
    for (what, body, field) in [
        (
            "an overlong purpose",
            json!({"name": "c1", "kind": "public", "purpose": "p".repeat(1025)}),
            "purpose",
        ),
        (
            "an escape in a purpose",
            json!({"name": "c1", "kind": "public", "purpose": "\u{1b}[31mred"}),
            "purpose",
        ),
        (
            "an overlong channel display name",
            json!({"name": "c1", "kind": "public", "displayName": "d".repeat(65)}),
            "displayName",
        ),
    ] {
        expect(what, ws.post("/api/v1/channels", &admin, body).await, field);
    }
    let posts = format!("/api/v1/channels/{channel}/posts");
    for (what, body, field) in [
        (
            "only zero-width spaces",
            json!({"message": "\u{200B}\u{FEFF} \u{2060}"}),
            "message",
        ),
        ("a bell", json!({"message": "ding\u{7}"}), "message"),
        (
            "a root that is not an id",
            json!({"message": "hi", "rootId": "../x"}),
            "rootId",
        ),
        (
            "eleven files",
            json!({"message": "hi", "fileIds": vec!["01ARZ3NDEKTSV4RRFFQ69G5FAV"; 11]}),
            "fileIds",
        ),
    ] {
        expect(what, ws.post(&posts, &admin, body).await, field);
    }
    // Line breaks and tabs are kept as sent.
    let kept = ws.say(&admin, &channel, "line one\n\tline two").await;
    assert_eq!(kept["message"], "line one\n\tline two");
    expect(
        "a token without a name",
        ws.post(
            "/api/v1/users/me/tokens",
            &admin,
            json!({"name": " \u{200B} "}),
        )
        .await,
        "name",
    );
    expect(
        "an overlong search",
        ws.get(&format!("/api/v1/search?q={}", "x".repeat(257)), &admin)
            .await,
        "q",
    );
    // Query strings that do not parse are JSON too, naming the parameter.
    expect(
        "a limit that is not a number",
        ws.get(&format!("{posts}?limit=many"), &admin).await,
        "limit",
    );
    expect(
        "a limit out of range",
        ws.get(&format!("{posts}?limit=0"), &admin).await,
        "limit",
    );
    let (status, body) = ws.get(&format!("{posts}?colour=red"), &admin).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid")),
        "{body}"
    );
    // No route, or not this method: JSON, with Allow on a 405.
    use axum::{body::Body, http::Request};
    let response = ws
        .request(Request::get("/api/v1/nowhere").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["content-type"], "application/json");
    let response = ws
        .request(
            Request::delete("/api/v1/search")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(
        response.headers().contains_key("allow"),
        "{:?}",
        response.headers()
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "method_not_allowed");
}

/// Guessing invitation tokens is throttled per address like passwords, and
/// minting personal access tokens in bulk is slowed per account; each lock
/// is in the audit log.
#[tokio::test]
async fn invitation_guesses_and_token_minting_are_throttled() {
    use axum::{body::Body, http::Request};
    let ws = Workspace::new().await;
    let admin = ws.admin().await;
    let redeem = |n: usize| {
        let ws = &ws;
        async move {
            let request = Request::post("/api/v1/guests/redeem")
                .header("content-type", "application/json")
                .header("x-forwarded-for", "192.0.2.44")
                .body(Body::from(
                    json!({"token": format!("guess-{n}"), "username": format!("g{n}"), "password": "long-enough-pass"})
                        .to_string(),
                ))
                .unwrap();
            ws.request(request).await.status()
        }
    };
    for n in 0..21 {
        assert_eq!(redeem(n).await, StatusCode::NOT_FOUND, "guess {n}");
    }
    assert_eq!(redeem(99).await, StatusCode::TOO_MANY_REQUESTS);

    let mint = || ws.post("/api/v1/users/me/tokens", &admin, json!({"name": "bot"}));
    for n in 0..6 {
        let (status, body) = mint().await;
        assert_eq!(status, StatusCode::CREATED, "token {n}: {body}");
    }
    let (status, body) = mint().await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("access tokens created"),
        "{body}"
    );

    let (_, entries) = ws
        .get("/api/v1/admin/audit?kind=auth.throttled", &admin)
        .await;
    let reasons: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("address:192.0.2.44") && r.contains("invitation tokens")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("tokens:") && r.contains("access tokens created")),
        "{reasons:?}"
    );
}

/// A request only reads its token; when it was used is written in batches.
#[tokio::test]
async fn token_use_is_recorded_in_batches_off_the_request() {
    let ws = Workspace::new().await;
    let (_, alice) = ws.user("alice", "member").await;
    let (_, created) = ws
        .post("/api/v1/users/me/tokens", &alice, json!({"name": "bot"}))
        .await;
    let bot = created["token"].as_str().unwrap().to_string();
    assert_eq!(ws.get("/api/v1/users/me", &bot).await.0, StatusCode::OK);
    let (_, tokens) = ws.get("/api/v1/users/me/tokens", &alice).await;
    assert!(
        tokens[0]["lastUsedAt"].is_null(),
        "not written by the request: {tokens}"
    );
    ws.state.token_usage.flush(&ws.state.db).await.unwrap();
    let (_, tokens) = ws.get("/api/v1/users/me/tokens", &alice).await;
    assert!(
        tokens[0]["lastUsedAt"].is_string(),
        "written by the flush: {tokens}"
    );
}

/// A workspace without calls says what an admin sets up to have them.
#[tokio::test]
async fn calls_not_set_up_say_what_to_configure() {
    let ws = Workspace::new().await;
    let (_, alice) = ws.user("alice", "member").await;
    let channel = ws.channel(&alice, "ops", "public").await;
    let (status, body) = ws
        .post(
            &format!("/api/v1/channels/{channel}/call"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("spec.features.calls.callsClusterRef"),
        "{body}"
    );
}
