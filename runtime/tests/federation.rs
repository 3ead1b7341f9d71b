//! Federation between two real servers (each with its own PostgreSQL
//! database) over mutual TLS on loopback, through a link the test can cut:
//! shared channels converge in both directions, across a cut, with no loss
//! and no duplicates; partners are held to what is shared with them.

mod common;

use std::{path::Path, time::Duration};

use axum::http::{Method, StatusCode};
use common::federation::{
    carry_by_hand, converge, event_by, history, join_shared, new_post, pair, pair_tuned, pair_with,
    partner_user, post, push_as, Identity,
};
use serde_json::{json, Value};

#[tokio::test]
async fn shared_channels_converge_both_ways_and_across_a_cut_link() {
    let pair = pair("converge").await;
    let b_admin = pair.b.admin().await;
    let (_, alice) = pair.a.user("alice", "member").await;
    let (_, bob) = pair.b.user("bob", "member").await;
    let a_joint = join_shared(&pair.a, &alice, "joint").await;
    let b_joint = join_shared(&pair.b, &bob, "joint-ops").await;

    // Posts, a thread reply, an edit and a reaction, both ways.
    let hello = post(
        &pair.a,
        &alice,
        &a_joint,
        json!({"message": "hello from alpha"}),
    )
    .await;
    let hello_id = hello["id"].as_str().unwrap();
    converge(&pair, (&alice, &a_joint), (&bob, &b_joint), 1).await;
    post(
        &pair.b,
        &bob,
        &b_joint,
        json!({"message": "bravo here", "rootId": hello_id}),
    )
    .await;
    let (status, body) = pair
        .a
        .call(
            Method::PATCH,
            &format!("/api/v1/posts/{hello_id}"),
            Some(&alice),
            Some(json!({"message": "hello from alpha (edited)"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = pair
        .b
        .call(
            Method::PUT,
            &format!("/api/v1/posts/{hello_id}/reactions/thumbsup"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = converge(&pair, (&alice, &a_joint), (&bob, &b_joint), 2).await;
    let reply = seen.iter().find(|p| p.0 != hello_id).unwrap();
    assert_eq!(
        reply.1,
        json!(hello_id),
        "the reply is in the thread on both sides"
    );
    let first = seen.iter().find(|p| p.0 == hello_id).unwrap();
    assert_eq!(first.2, "hello from alpha (edited)");
    assert_eq!(
        first.4.as_array().unwrap().len(),
        1,
        "bob's reaction: {first:?}"
    );

    // Bob is shown on A as a member from his organisation, and cannot sign in there.
    let (role, origin, organisation, member): (String, String, String, bool) = sqlx::query_as(
        "SELECT u.role, u.origin, u.organisation,
                EXISTS (SELECT 1 FROM channel_members m WHERE m.user_id = u.id AND m.channel_id = $1)
         FROM users u WHERE u.username = 'bob@ws-b'",
    )
    .bind(&a_joint)
    .fetch_one(&pair.a.state.db)
    .await
    .unwrap();
    assert_eq!(
        (
            role.as_str(),
            origin.as_str(),
            organisation.as_str(),
            member
        ),
        ("remote", "ws-b", "Bravo Org", true)
    );
    let (status, _) = pair
        .a
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "bob@ws-b", "password": "anything-long-enough"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Cut the link both ways; both sides keep posting, editing and deleting.
    pair.links.0.set(false);
    pair.links.1.set(false);
    let mut doomed = None;
    for i in 0..15 {
        let a_post = post(
            &pair.a,
            &alice,
            &a_joint,
            json!({"message": format!("alpha during the cut {i}")}),
        )
        .await;
        post(
            &pair.b,
            &bob,
            &b_joint,
            json!({"message": format!("bravo during the cut {i}"), "rootId": hello_id}),
        )
        .await;
        if i == 3 {
            doomed = Some(a_post["id"].as_str().unwrap().to_string());
        }
    }
    let doomed = doomed.unwrap();
    let (status, _) = pair
        .a
        .call(
            Method::DELETE,
            &format!("/api/v1/posts/{doomed}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Nothing crossed while the link was down.
    assert_eq!(history(&pair.b, &bob, &b_joint).await.len(), 2 + 15);

    pair.links.0.set(true);
    pair.links.1.set(true);
    // Everything crossed once; the delete too (deleted posts leave the list on both sides).
    let after = converge(&pair, (&alice, &a_joint), (&bob, &b_joint), 2 + 30 - 1).await;
    assert!(after.iter().all(|p| p.0 != doomed), "the delete crossed");
    let replies = after.iter().filter(|p| p.1 == json!(hello_id)).count();
    assert_eq!(replies, 1 + 15, "every reply stayed in its thread");
    let texts: std::collections::BTreeSet<&str> = after.iter().map(|p| p.2.as_str()).collect();
    assert_eq!(texts.len(), after.len(), "no duplicates");

    // A partner's post goes through the same write as a local one: whom it
    // mentions here counts, as for any post.
    let mentions = async || {
        let (status, channels) = pair.a.get("/api/v1/channels", &alice).await;
        assert_eq!(status, StatusCode::OK, "{channels}");
        channels
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == a_joint.as_str())
            .unwrap()["mentions"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(mentions().await, 0);
    post(
        &pair.b,
        &bob,
        &b_joint,
        json!({"message": "@alice over to you"}),
    )
    .await;
    converge(&pair, (&alice, &a_joint), (&bob, &b_joint), 2 + 30).await;
    assert_eq!(mentions().await, 1, "bob's mention of alice counts on A");

    // The admin API reports the link: connected, queue drained.
    let figures = entente_runtime::server::federation::figures(&pair.a.state)
        .await
        .unwrap();
    assert_eq!(figures.len(), 1);
    assert_eq!(figures[0].queued_events, 0, "{figures:?}");
    assert!(figures[0].connected, "{figures:?}");
    assert_eq!(figures[0].rejected_events, 0, "{figures:?}");
    let _ = (b_admin, &pair.dir);
}

#[tokio::test]
async fn partners_touch_only_what_is_shared_and_foreign_certificates_are_refused() {
    use entente_runtime::server::federation::proto::Profile;
    let pair = pair("security").await;
    let a_admin = pair.a.admin().await;
    let (alice_id, alice) = pair.a.user("alice", "member").await;
    let a_joint = join_shared(&pair.a, &alice, "joint").await;
    pair.a.channel(&alice, "secret-stuff", "public").await;
    let b_config = pair.b.state.config();
    let to_a = b_config.federation.partners[0].clone();
    let bob = partner_user("bob", "ws-b");
    let event = |channel: &str, origin: &str, author: &Profile, message: &str| {
        let post_id = ulid::Ulid::new().to_string();
        event_by(origin, channel, author, new_post(&post_id, "", message))
    };
    let mut impostor = bob.clone();
    impostor.id = alice_id.clone();
    let mut from_c = bob.clone();
    from_c.origin = "ws-c".into();
    let valid = event("joint-ops", "ws-b", &bob, "a proper post from bravo");
    let ack = push_as(
        &b_config,
        &to_a,
        vec![
            event("joint-ops", "ws-c", &from_c, "forged origin"),
            event("secret-stuff", "ws-b", &bob, "unshared channel"),
            event("briefings", "ws-b", &bob, "into a read-only share"),
            event("joint-ops", "ws-b", &impostor, "speaking for alice"),
            valid.clone(),
            valid.clone(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(ack.rejected, 4, "{ack:?}");
    // The valid one took effect once, though it came twice.
    let (_, page) = pair
        .a
        .get(&format!("/api/v1/channels/{a_joint}/posts"), &alice)
        .await;
    let messages: Vec<&str> = page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["a proper post from bravo"]);
    // Each refusal is audited with its reason.
    let (status, entries) = pair
        .a
        .get("/api/v1/admin/audit?kind=federation.rejected", &a_admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    let reasons: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    for expected in [
        "claims origin \"ws-c\"",
        "\"secret-stuff\" is not shared",
        "shared read-only",
        "is not a user of \"ws-b\"",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "{expected:?} not in {reasons:?}"
        );
    }
    let figures = entente_runtime::server::federation::figures(&pair.a.state)
        .await
        .unwrap();
    assert_eq!(figures[0].rejected_events, 4);

    // A certificate for B's name from a foreign CA is refused before any gRPC.
    let foreign = Identity::issue(&pair.dir.join("foreign"), "b.fed.test");
    let mut forged = (*b_config).clone();
    forged.federation.tls.cert_file = foreign.dir.join("tls.crt");
    forged.federation.tls.key_file = foreign.dir.join("tls.key");
    let refused_before = pair.a.state.metrics.federation_refused_connections.get();
    let outcome = push_as(
        &forged,
        &to_a,
        vec![event("joint-ops", "ws-b", &bob, "from a foreign CA")],
    )
    .await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert_eq!(
        pair.a.state.metrics.federation_refused_connections.get(),
        refused_before + 1
    );
    // So is a certificate from B's own CA for a name that is not B's identity.
    let b_dir = Path::new(&b_config.federation.tls.cert_file)
        .parent()
        .unwrap();
    let b_identity = Identity {
        dir: b_dir.to_path_buf(),
    };
    let other = Identity::issue_by(&pair.dir.join("other"), "c.fed.test", Some(&b_identity));
    assert_eq!(
        std::fs::read(other.dir.join("ca.pem")).unwrap(),
        std::fs::read(b_dir.join("ca.pem")).unwrap(),
        "issued by B's CA"
    );
    let mut wrong_name = (*b_config).clone();
    wrong_name.federation.tls.cert_file = other.dir.join("tls.crt");
    wrong_name.federation.tls.key_file = other.dir.join("tls.key");
    let outcome = push_as(
        &wrong_name,
        &to_a,
        vec![event("joint-ops", "ws-b", &bob, "wrong name")],
    )
    .await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert_eq!(
        pair.a.state.metrics.federation_refused_connections.get(),
        refused_before + 2
    );
    let (_, page) = pair
        .a
        .get(&format!("/api/v1/channels/{a_joint}/posts"), &alice)
        .await;
    assert_eq!(
        page["posts"].as_array().unwrap().len(),
        1,
        "nothing more got in"
    );
}

/// A batch is applied as if event by event, though consecutive new posts
/// are written together: a reply to a post of the same batch joins its
/// thread, an edit and a reaction see a post written just before them, a
/// user who left and posts again is a member again, an event sent twice is
/// applied once, and a post id already taken is refused alone.
#[tokio::test]
async fn a_batch_lands_as_if_applied_event_by_event() {
    use entente_runtime::server::federation::proto::{event::Op, Membership, PostEdited, Reaction};
    let pair = pair("batch").await;
    let (_, alice) = pair.a.user("alice", "member").await;
    let a_joint = join_shared(&pair.a, &alice, "joint").await;
    let b_config = pair.b.state.config();
    let to_a = b_config.federation.partners[0].clone();
    let bob = partner_user("bob", "ws-b");
    let event = |op: Op| event_by("ws-b", "joint-ops", &bob, op);
    let posted = |id: &str, root: &str, message: &str| event(new_post(id, root, message));
    let (first, reply, again) = (
        ulid::Ulid::new().to_string(),
        ulid::Ulid::new().to_string(),
        ulid::Ulid::new().to_string(),
    );
    let created = posted(&first, "", "first");
    let ack = push_as(
        &b_config,
        &to_a,
        vec![
            created.clone(),
            posted(&reply, &first, "a reply in the same batch"),
            event(Op::MemberLeft(Membership {
                member: Some(bob.clone()),
            })),
            posted(&again, "", "back again"),
            created,
            posted(&first, "", "a second post with the first one's id"),
            event(Op::PostEdited(PostEdited {
                post_id: first.clone(),
                message: "first, edited".into(),
            })),
            event(Op::ReactionAdded(Reaction {
                post_id: again.clone(),
                emoji: "+1".into(),
            })),
        ],
    )
    .await
    .unwrap();
    assert_eq!(ack.rejected, 1, "only the taken id is refused: {ack:?}");
    let (_, page) = pair
        .a
        .get(&format!("/api/v1/channels/{a_joint}/posts"), &alice)
        .await;
    let posts = page["posts"].as_array().unwrap();
    let messages: Vec<&str> = posts
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["back again", "a reply in the same batch", "first, edited"]
    );
    assert_eq!(posts[1]["rootId"], first.as_str(), "{}", posts[1]);
    assert_eq!(posts[0]["reactions"], json!([["+1", bob.id]]));
    let (_, members) = pair
        .a
        .get(&format!("/api/v1/channels/{a_joint}/members"), &alice)
        .await;
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == bob.id.as_str()),
        "bob posted after leaving, so is a member again: {members}"
    );
    let (_, entries) = pair
        .a
        .get(
            "/api/v1/admin/audit?kind=federation.rejected",
            &pair.a.admin().await,
        )
        .await;
    assert!(
        entries.to_string().contains("is already taken"),
        "the refusal is audited: {entries}"
    );
}

/// A's rules for the authorisation matrix: a guest policy whose guests
/// work in the shared channel, and an access policy gating `intel`.
const A_RULES: &str = r#"guests:
  - policy: liaison
    domains: [partner.example]
    channels: [joint]
    invitationLifetimeSeconds: 3600
    uploadFiles: false
    directMessages: false
    attributes: {organisation: Partner Corp, nation: FR}
access:
  policies:
    - policy: gb-only
      expression: "user.nation == 'GB'"
      channels: [intel, briefings]
      mode: Enforce
"#;

/// The partner-user row of the authorisation matrix (the guest, member and
/// admin rows are in `access.rs`): a partner's user never signs in here and
/// reaches A only through federation, where they may list, read, post,
/// search and join in the shared channel and in no public, private or gated
/// one. And a guest in a shared channel is a guest on the partner's side too.
#[tokio::test]
async fn a_partners_user_reaches_only_shared_channels_and_guests_cross_as_guests() {
    use entente_runtime::server::federation::proto::{
        event::Op, Event, Membership, PostCreated, Profile, Reaction,
    };
    let pair = pair_with("matrix", A_RULES).await;
    let a_admin = pair.a.admin().await;
    let (owner_id, owner) = pair.a.user("owner", "member").await;
    let (status, body) = pair
        .a
        .call(
            Method::PUT,
            &format!("/api/v1/users/{owner_id}/attributes"),
            Some(&a_admin),
            Some(json!({"nation": "GB"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let public = pair.a.channel(&owner, "town", "public").await;
    let private = pair.a.channel(&owner, "plans", "private").await;
    let gated = pair.a.channel(&owner, "intel", "public").await;
    let shared = join_shared(&pair.a, &owner, "joint").await;
    let (_, bob) = pair.b.user("bob", "member").await;
    let b_joint = join_shared(&pair.b, &bob, "joint-ops").await;

    // Read and search: of A's posts, only the shared channel's reach B.
    // The shared one goes last, so once it is there nothing else is coming.
    let mut town_post = String::new();
    for (channel, word) in [
        (&public, "townword"),
        (&private, "planword"),
        (&gated, "intelword"),
        (&shared, "jointword"),
    ] {
        let posted = post(&pair.a, &owner, channel, json!({ "message": word })).await;
        if channel == &public {
            town_post = posted["id"].as_str().unwrap().to_string();
        }
    }
    converge(&pair, (&owner, &shared), (&bob, &b_joint), 1).await;
    for (word, found) in [
        ("townword", false),
        ("planword", false),
        ("intelword", false),
        ("jointword", true),
    ] {
        let (status, hits) = pair.b.get(&format!("/api/v1/search?q={word}"), &bob).await;
        assert_eq!(status, StatusCode::OK, "{hits}");
        assert_eq!(
            !hits.as_array().unwrap().is_empty(),
            found,
            "{word}: {hits}"
        );
        let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM posts WHERE message = $1")
            .bind(word)
            .fetch_one(&pair.b.state.db)
            .await
            .unwrap();
        assert_eq!(stored > 0, found, "{word} is on B: {stored}");
    }

    // Post, react and join as a partner's user, in every kind of channel.
    let carol = Profile {
        id: ulid::Ulid::new().to_string(),
        username: "carol".into(),
        display_name: "Carol".into(),
        origin: "ws-b".into(),
        guest: false,
    };
    let event = |channel: &str, op: Op| Event {
        id: ulid::Ulid::new().to_string(),
        origin: "ws-b".into(),
        channel: channel.into(),
        at_micros: chrono::Utc::now().timestamp_micros(),
        author: Some(carol.clone()),
        op: Some(op),
    };
    let created = |word: &str| {
        Op::PostCreated(PostCreated {
            post_id: ulid::Ulid::new().to_string(),
            root_id: String::new(),
            message: format!("carol in {word}"),
            files: Vec::new(),
        })
    };
    let joined = || {
        Op::MemberJoined(Membership {
            member: Some(carol.clone()),
        })
    };
    let react = || {
        Op::ReactionAdded(Reaction {
            post_id: town_post.clone(),
            emoji: "eyes".into(),
        })
    };
    let b_config = pair.b.state.config();
    let to_a = b_config.federation.partners[0].clone();
    let mut events = Vec::new();
    for name in ["town", "plans", "intel", "joint-ops"] {
        events.push(event(name, created(name)));
        events.push(event(name, joined()));
    }
    // A post of an unshared channel, reached for through the shared one.
    events.push(event("town", react()));
    events.push(event("joint-ops", react()));
    let ack = push_as(&b_config, &to_a, events).await.unwrap();
    assert_eq!(ack.rejected, 3 * 2 + 2, "{ack:?}");

    // What took effect, channel by channel, as A's owner sees it.
    let mut failures = Vec::new();
    for (name, channel, admitted) in [
        ("public", &public, false),
        ("private", &private, false),
        ("gated", &gated, false),
        ("shared", &shared, true),
    ] {
        let (status, members) = pair
            .a
            .get(&format!("/api/v1/channels/{channel}/members"), &owner)
            .await;
        assert_eq!(status, StatusCode::OK, "{members}");
        let member = members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["username"] == "carol@ws-b");
        let page = history(&pair.a, &owner, channel).await;
        let posted = page.iter().any(|p| p.2.starts_with("carol in"));
        let reacted = page.iter().any(|p| !p.4.as_array().unwrap().is_empty());
        if (member, posted, reacted) != (admitted, admitted, false) {
            failures.push(format!(
                "{name}: member {member}, posted {posted}, reacted {reacted} (want {admitted}, {admitted}, false)"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let refused = pair
        .a
        .get("/api/v1/admin/audit?kind=federation.rejected", &a_admin)
        .await
        .1;
    assert_eq!(refused.as_array().unwrap().len(), 8, "{refused}");
    // Never an account here: no password opens it.
    let (status, _) = pair
        .a
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "carol@ws-b", "password": "anything-long-enough"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Policies bind local users in shared channels too (the reference
    // product exempts them): `briefings`, shared with B, is gated.
    let (_, outsider) = pair.a.user("outsider", "member").await;
    let (status, channels) = pair.a.get("/api/v1/channels", &outsider).await;
    assert_eq!(status, StatusCode::OK);
    let briefings = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "briefings");
    assert!(
        briefings.is_none(),
        "listed to a user the gate refuses: {channels}"
    );
    let (_, listed) = pair.a.get("/api/v1/channels", &owner).await;
    let briefings = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "briefings")
        .expect("listed to the owner, who passes the gate")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = pair
        .a
        .post(
            &format!("/api/v1/channels/{briefings}/join"),
            &outsider,
            json!({}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the gate refuses the outsider"
    );
    let (status, _) = pair
        .a
        .post(
            &format!("/api/v1/channels/{briefings}/join"),
            &owner,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // A guest of A in the shared channel is a guest on B.
    let (_, liaison) = pair
        .a
        .guest(&a_admin, "liaison", "liaison@partner.example", "liaison")
        .await;
    post(
        &pair.a,
        &liaison,
        &shared,
        json!({"message": "from the liaison officer"}),
    )
    .await;
    // (Carol's pushed post exists on A only: B never made it.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !history(&pair.b, &bob, &b_joint)
        .await
        .iter()
        .any(|p| p.2 == "from the liaison officer")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the guest's post never reached B"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, members) = pair
        .b
        .get(&format!("/api/v1/channels/{b_joint}/members"), &bob)
        .await;
    assert_eq!(status, StatusCode::OK, "{members}");
    let seen: Vec<(&str, &Value, &Value, &Value)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap(),
                &m["guest"],
                &m["role"],
                &m["organisation"],
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("bob", &json!(false), &json!("member"), &Value::Null),
            (
                "liaison@ws-a",
                &json!(true),
                &json!("remote"),
                &json!("Alpha Org")
            ),
            (
                "owner@ws-a",
                &json!(false),
                &json!("remote"),
                &json!("Alpha Org")
            ),
        ],
        "{members}"
    );
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["email"].is_null()),
        "member lists carry no email addresses: {members}"
    );
}

/// The operator's PartnerConnection controller reads the link from the
/// server's admin API: connected and synced, then behind while the link is
/// cut, degraded once the queue passes its bound, and synced again after.
#[tokio::test]
async fn the_operator_copies_the_link_into_partner_connection_status() {
    use entente_crds::{
        common::HasConditions,
        validate::{parse_manifests, Resource as Manifest},
        PartnerConnection, Workspace as WorkspaceResource,
    };
    use k8s_openapi::{api::core::v1::Secret, ByteString};
    use kube::Api;

    let pair = pair("status").await;
    let (_, alice) = pair.a.user("alice", "member").await;
    let (_, bob) = pair.b.user("bob", "member").await;
    let a_joint = join_shared(&pair.a, &alice, "joint").await;
    let b_joint = join_shared(&pair.b, &bob, "joint-ops").await;
    post(&pair.a, &alice, &a_joint, json!({"message": "first"})).await;
    converge(&pair, (&alice, &a_joint), (&bob, &b_joint), 1).await;
    // The queue is judged empty below: B's acknowledgement must be in.
    common::federation::acknowledged(&pair.a).await;
    let (admin_url, admin_task) = common::serve_admin(&pair.a).await;

    // The cluster side: A as the edge example's Workspace, and its
    // PartnerConnection to B with B's real CA.
    let text = std::fs::read_to_string(
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap())
            .join("../examples/edge-ddil/edge.yaml"),
    )
    .unwrap();
    let (mut workspace, mut partner) = (None, None);
    for manifest in parse_manifests(&text, "edge.yaml") {
        match manifest.unwrap() {
            Manifest::Workspace(w) => workspace = Some(*w),
            Manifest::PartnerConnection(p) => partner = Some(*p),
            _ => {}
        }
    }
    let (mut workspace, mut partner): (WorkspaceResource, PartnerConnection) =
        (workspace.unwrap(), partner.unwrap());
    workspace.metadata.namespace = Some("edge".into());
    partner.metadata.namespace = Some("edge".into());
    partner.spec.partner.workspace_id = "ws-b".into();
    let ca = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(partner.spec.partner.ca_bundle.name.clone()),
            namespace: Some("edge".into()),
            ..Default::default()
        },
        data: Some(
            [(
                partner.spec.partner.ca_bundle.key.clone(),
                ByteString(std::fs::read(pair.dir.join("b/ca.pem")).unwrap()),
            )]
            .into(),
        ),
        ..Default::default()
    };
    let client = kube_fake_client::ClientBuilder::new()
        .with_resource::<WorkspaceResource>()
        .with_resource::<PartnerConnection>()
        .with_object(workspace)
        .with_object(partner.clone())
        .with_object(ca)
        .build()
        .await
        .unwrap();
    let connections: Api<PartnerConnection> = Api::namespaced(client.clone(), "edge");
    let name = partner.metadata.name.clone().unwrap();
    let judge = async || {
        let stored = connections.get(&name).await.unwrap();
        entente_operator::partners::reconcile(
            std::sync::Arc::new(stored),
            common::operator_context(&client, &admin_url),
        )
        .await
        .unwrap();
        connections.get(&name).await.unwrap().status.unwrap()
    };
    let condition = |status: &entente_crds::PartnerConnectionStatus, kind: &str| {
        let c = status.condition(kind).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    };

    let status = judge().await;
    assert_eq!(condition(&status, "Ready").0, "True", "{status:?}");
    assert_eq!(condition(&status, "Connected").0, "True", "{status:?}");
    assert_eq!(condition(&status, "Synced").1, "QueueEmpty", "{status:?}");
    assert_eq!(
        (status.queued_events, status.rejected_events),
        (Some(0), Some(0))
    );
    assert!(status.last_contact.is_some(), "{status:?}");

    // Cut: A's posts queue up, and status says how far behind B is.
    pair.links.0.set(false);
    pair.links.1.set(false);
    for i in 0..3 {
        post(
            &pair.a,
            &alice,
            &a_joint,
            json!({"message": format!("queued {i}")}),
        )
        .await;
    }
    let status = judge().await;
    let (synced, reason, message) = condition(&status, "Synced");
    assert_eq!((synced.as_str(), reason.as_str()), ("False", "Behind"));
    assert!(message.starts_with("3 events ("), "{message}");
    assert_eq!(status.queued_events, Some(3));
    assert!(status.queued_bytes.unwrap() > 0);

    // Past its bound, the queue keeps everything and the link is Degraded.
    let mut config = (*pair.a.state.config()).clone();
    config.federation.partners[0].sync.max_queued_events = 2;
    pair.a.state.apply(config);
    let status = judge().await;
    let degraded = status.condition("Degraded").unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "QueueFull"),
        "{status:?}"
    );
    assert!(
        degraded.message.contains("every event is kept"),
        "{}",
        degraded.message
    );

    // Under PauseSharedChannels, local posts in the shared channel wait
    // (with a reason and Retry-After); other channels carry on.
    let mut config = (*pair.a.state.config()).clone();
    config.federation.partners[0].sync.when_queue_full =
        entente_crds::partner_connection::QueueFullPolicy::PauseSharedChannels;
    pair.a.state.apply(config);
    let town = pair.a.channel(&alice, "town", "public").await;
    let attempt = async |channel: &str| {
        let response = pair
            .a
            .request(
                axum::http::Request::post(format!("/api/v1/channels/{channel}/posts"))
                    .header("authorization", format!("Bearer {alice}"))
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(r#"{"message": "during the pause"}"#))
                    .unwrap(),
            )
            .await;
        let retry_after = response.headers().get("retry-after").cloned();
        (response.status(), retry_after)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (status, retry_after) = loop {
        let (status, retry_after) = attempt(&a_joint).await;
        if status != StatusCode::CREATED || tokio::time::Instant::now() > deadline {
            break (status, retry_after);
        }
        // Posted before the pause took hold: one more in the queue.
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after.is_some(), "Retry-After is set");
    assert_eq!(
        attempt(&town).await.0,
        StatusCode::CREATED,
        "unshared channels carry on"
    );

    // Healed: everything crosses, and status is clean again.
    pair.links.0.set(true);
    pair.links.1.set(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while attempt(&a_joint).await.0 != StatusCode::CREATED {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pause never lifted"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let count = history(&pair.a, &alice, &a_joint).await.len();
    converge(&pair, (&alice, &a_joint), (&bob, &b_joint), count).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = judge().await;
        if status.queued_events == Some(0) {
            assert_eq!(condition(&status, "Synced").0, "True");
            assert_eq!(condition(&status, "Ready").0, "True", "{status:?}");
            assert_eq!(status.condition("Degraded").unwrap().status, "False");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    admin_task.abort();
}

/// Air gap: two workspaces that never had a link converge by carrying
/// signed bundles by hand, through the `entente admin federation` command;
/// a re-imported bundle changes nothing, and an altered or misdirected one
/// is refused before anything is read.
#[tokio::test]
async fn an_offline_bundle_round_trip_converges_two_workspaces_with_no_link() {
    use entente_runtime::server::federation::bundle;
    let pair = pair("bundle").await;
    pair.links.0.set(false);
    pair.links.1.set(false);
    let (_, alice) = pair.a.user("alice", "member").await;
    let (_, bob) = pair.b.user("bob", "member").await;
    let a_joint = join_shared(&pair.a, &alice, "joint").await;
    let b_joint = join_shared(&pair.b, &bob, "joint-ops").await;
    let first = post(
        &pair.a,
        &alice,
        &a_joint,
        json!({"message": "over the gap"}),
    )
    .await;
    let first = first["id"].as_str().unwrap();
    post(
        &pair.a,
        &alice,
        &a_joint,
        json!({"message": "a reply", "rootId": first}),
    )
    .await;
    post(
        &pair.b,
        &bob,
        &b_joint,
        json!({"message": "bravo, by courier"}),
    )
    .await;
    // A file crosses the gap with its post.
    let map = noise(300_000, 3);
    let (status, file) = pair
        .a
        .upload(
            &alice,
            &a_joint,
            "map.bin",
            map.clone(),
            "application/octet-stream",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let file_id = file["id"].as_str().unwrap().to_string();
    post(
        &pair.a,
        &alice,
        &a_joint,
        json!({"message": "the map", "fileIds": [file_id]}),
    )
    .await;

    // Through the command line, as an operator at an air gap would.
    let config = |ws: &common::Workspace| ws.dir.join("runtime.yaml").display().to_string();
    let (a_config, b_config) = (config(&pair.a), config(&pair.b));
    let a_to_b = carry_by_hand(&a_config, &b_config, "ws-b", &pair.dir);
    carry_by_hand(&b_config, &a_config, "ws-a", &pair.dir);
    let seen = converge(&pair, (&alice, &a_joint), (&bob, &b_joint), 4).await;
    let (status, _, bytes) = download(&pair.b, &bob, &file_id).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the file came in the bundle, not over a link"
    );
    assert!(bytes == map, "byte for byte");
    assert!(
        seen.iter().any(|p| p.1 == json!(first)),
        "the reply is in its thread"
    );
    for ws in [&pair.a, &pair.b] {
        let figures = entente_runtime::server::federation::figures(&ws.state)
            .await
            .unwrap();
        assert_eq!(figures[0].queued_events, 0, "acknowledged: {figures:?}");
    }

    // Carried twice: nothing changes.
    let again = std::fs::read(&a_to_b).unwrap();
    match bundle::import(&pair.b.state, &again).await.unwrap() {
        bundle::Imported::Events {
            events, rejected, ..
        } => assert_eq!((events, rejected), (4, 0)),
        other => panic!("{other:?}"),
    }
    assert_eq!(history(&pair.b, &bob, &b_joint).await.len(), 4);

    // Altered on the way: refused, whatever byte changed.
    use prost::Message as _;
    let mut signed =
        entente_runtime::server::federation::proto::SignedBundle::decode(again.as_slice()).unwrap();
    let middle = signed.signed.len() / 2;
    signed.signed[middle] ^= 1;
    let error = bundle::import(&pair.b.state, &signed.encode_to_vec())
        .await
        .unwrap_err();
    // Refused as the partner's, naming it.
    use entente_runtime::server::federation::error::Error;
    assert!(
        matches!(&error, Error::Protocol { partner, .. } if partner == "ws-a"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("the signature does not match"),
        "{error}"
    );
    // For someone else: A's own bundle is not from any partner of A.
    let error = bundle::import(&pair.a.state, &again).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("does not chain to any partner's CA"),
        "{error}"
    );
    let z = pair.dir.join("z");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_entente"))
        .args(["admin", "federation", "export", "--config", &a_config])
        .args(["--partner", "ws-z", "--out"])
        .arg(&z)
        .output()
        .unwrap();
    let (ok, text) = (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    );
    assert!(!ok);
    assert!(
        text.contains("\"ws-z\" is not a partner of this workspace"),
        "{text}"
    );
}

/// Bytes that do not compress, so the wire carries all of them.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `GET /api/v1/files/{id}` as `token`: status, content type, body.
async fn download(ws: &common::Workspace, token: &str, id: &str) -> (StatusCode, String, Vec<u8>) {
    let request = axum::http::Request::builder()
        .uri(format!("/api/v1/files/{id}"))
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = ws.request(request).await;
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), 8 << 20)
        .await
        .unwrap();
    (status, kind, body.to_vec())
}

/// A post's files on `ws`, by name: (id, state).
async fn files_of(
    ws: &common::Workspace,
    token: &str,
    channel: &str,
) -> Vec<(String, String, String)> {
    let (status, page) = ws
        .get(&format!("/api/v1/channels/{channel}/posts"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["files"].as_array().unwrap().clone())
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["id"].as_str().unwrap().to_string(),
                f["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Files follow their posts: pulled in chunks under A's bandwidth cap, the
/// transfer cut mid-file resumes where B's stored chunks end (no byte is
/// received twice), each file is checked against its SHA-256 and typed
/// from its bytes; a file over B's size limit for A is refused on B with
/// the reason while its post and the other files arrive; a partner may
/// fetch only files of posts in channels shared with it.
#[tokio::test]
async fn files_follow_their_posts_resume_after_a_cut_and_respect_the_size_cap() {
    let pair = pair_tuned("files", "", ", bandwidthBytesPerSecond: 200000").await;
    let (_, alice) = pair.a.user("alice", "member").await;
    let (_, bob) = pair.b.user("bob", "member").await;
    let a_joint = join_shared(&pair.a, &alice, "joint").await;
    let b_joint = join_shared(&pair.b, &bob, "joint-ops").await;
    let big = noise(900_000, 7);
    let over = noise(1_040_000, 11);
    let note = b"minutes of the joint meeting\n".to_vec();
    let mut ids = Vec::new();
    for (name, bytes, declared) in [
        ("big.bin", &big, "application/octet-stream"),
        ("over.bin", &over, "application/octet-stream"),
        ("note.txt", &note, "text/html"),
    ] {
        let (status, file) = pair
            .a
            .upload(&alice, &a_joint, name, bytes.clone(), declared)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{file}");
        ids.push(file["id"].as_str().unwrap().to_string());
    }
    post(
        &pair.a,
        &alice,
        &a_joint,
        json!({"message": "the files", "fileIds": ids}),
    )
    .await;

    // The post arrives with its files: the one over B's limit refused at once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let arrived = loop {
        let files = files_of(&pair.b, &bob, &b_joint).await;
        if files.len() == 3 {
            break files;
        }
        assert!(tokio::time::Instant::now() < deadline, "no post on B");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let state = |name: &str| {
        arrived
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, id, state)| (id.clone(), state.clone()))
            .unwrap()
    };
    assert_eq!(state("over.bin").1, "refused", "{arrived:?}");
    assert_eq!(state("big.bin").1, "pending", "{arrived:?}");
    let (big_id, over_id, note_id) = (state("big.bin").0, state("over.bin").0, state("note.txt").0);
    assert_eq!(big_id, ids[0], "file ids are global");

    // Cut both links once some of the big file is stored on B.
    let stored = || async {
        let (bytes,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(sum(length(data)), 0)::bigint FROM federation_file_parts WHERE file_id = $1",
        )
        .bind(&big_id)
        .fetch_one(&pair.b.state.db)
        .await
        .unwrap();
        bytes
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stored().await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no chunk arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pair.links.0.set(false);
    pair.links.1.set(false);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let at_cut = stored().await;
    assert!(
        0 < at_cut && at_cut < big.len() as i64,
        "the cut came mid-file: {at_cut} bytes stored"
    );
    let (status, _, body) = download(&pair.b, &bob, &big_id).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "file_pending", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("Alpha Org"),
        "{body}"
    );
    pair.links.0.set(true);
    pair.links.1.set(true);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while files_of(&pair.b, &bob, &b_joint)
        .await
        .iter()
        .any(|(_, _, state)| state == "pending")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "files still pending: {:?}",
            files_of(&pair.b, &bob, &b_joint).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, kind, bytes) = download(&pair.b, &bob, &big_id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, "application/octet-stream");
    assert!(bytes == big, "the big file arrived whole and unchanged");
    let (status, kind, bytes) = download(&pair.b, &bob, &note_id).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "text/plain"));
    assert_eq!(bytes, note);
    // Resumed, not restarted: B stored each byte once.
    assert_eq!(
        pair.b.state.metrics.federation_file_bytes_received.get(),
        (big.len() + note.len()) as u64
    );
    let (remaining,): (i64,) = sqlx::query_as("SELECT count(*) FROM federation_file_parts")
        .fetch_one(&pair.b.state.db)
        .await
        .unwrap();
    assert_eq!(remaining, 0, "chunks are dropped once the file is whole");
    let (status, _, body) = download(&pair.b, &bob, &over_id).await;
    assert_eq!(status, StatusCode::GONE);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "file_refused", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("over the 1000000-byte limit for files from Alpha Org"),
        "{body}"
    );

    // B may fetch A's file in the shared channel, and nothing in another.
    use entente_runtime::server::federation::{
        proto::{federation_client::FederationClient, FetchRequest},
        tls,
    };
    let b_config = pair.b.state.config();
    let to_a = b_config.federation.partners[0].clone();
    let a_town = pair.a.channel(&alice, "town", "public").await;
    let (status, private) = pair
        .a
        .upload(
            &alice,
            &a_town,
            "private.txt",
            b"not for bravo".to_vec(),
            "text/plain",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{private}");
    post(
        &pair.a,
        &alice,
        &a_town,
        json!({"message": "ours", "fileIds": [private["id"]]}),
    )
    .await;
    let mut client = FederationClient::new(tls::connect(&b_config, &to_a).await.unwrap());
    let fetch = |file_id: &str, offset: u64| FetchRequest {
        file_id: file_id.into(),
        offset,
    };
    let denied = client
        .fetch(fetch(private["id"].as_str().unwrap(), 0))
        .await
        .expect_err("a file in an unshared channel is not served");
    assert_eq!(denied.code(), tonic::Code::NotFound, "{denied:?}");
    let mut chunks = client.fetch(fetch(&note_id, 9)).await.unwrap().into_inner();
    let mut tail = Vec::new();
    while let Some(chunk) = chunks.message().await.unwrap() {
        tail.extend(chunk.data);
    }
    assert_eq!(tail, note[9..], "a fetch starts at its offset");
    let over_limit = client
        .fetch(fetch(&over_id, 0))
        .await
        .expect_err("a file over B's limit is not served to B");
    assert_eq!(over_limit.code(), tonic::Code::FailedPrecondition);
}

/// A workspace restored from a backup older than what its partner applied:
/// its outbox numbers start again below the partner's mark. Its new posts
/// must still arrive — renumbered above the mark — not be skipped by the
/// partner and dropped here as acknowledged.
#[tokio::test]
async fn a_workspace_restored_from_a_backup_loses_nothing_its_partner_had_seen() {
    let pair = pair("restored").await;
    let (_, alice) = pair.a.user("alice", "member").await;
    let (_, bob) = pair.b.user("bob", "member").await;
    let a_joint = join_shared(&pair.a, &alice, "joint").await;
    let b_joint = join_shared(&pair.b, &bob, "joint-ops").await;
    for i in 0..3 {
        post(
            &pair.a,
            &alice,
            &a_joint,
            json!({"message": format!("before {i}")}),
        )
        .await;
    }
    converge(&pair, (&alice, &a_joint), (&bob, &b_joint), 3).await;
    // B's acknowledgement of them has reached A: none can arrive after the
    // restore below and empty the queue renumbered from 1 (a restored
    // workspace's old process is gone, so nothing of it is in flight).
    common::federation::acknowledged(&pair.a).await;

    // The restore: A's outbox numbering goes back, with A cut off meanwhile.
    pair.links.0.set(false);
    pair.links.1.set(false);
    sqlx::query("ALTER SEQUENCE federation_outbox_seq_seq RESTART WITH 1")
        .execute(&pair.a.state.db)
        .await
        .unwrap();
    for i in 0..2 {
        post(
            &pair.a,
            &alice,
            &a_joint,
            json!({"message": format!("after {i}")}),
        )
        .await;
    }
    let (lowest,): (i64,) = sqlx::query_as("SELECT min(seq) FROM federation_outbox")
        .fetch_one(&pair.a.state.db)
        .await
        .unwrap();
    assert_eq!(lowest, 1, "numbered again from the start");
    tokio::time::sleep(Duration::from_secs(3)).await;
    pair.links.0.set(true);
    pair.links.1.set(true);
    let seen = converge(&pair, (&alice, &a_joint), (&bob, &b_joint), 5).await;
    assert!(seen.iter().any(|p| p.2 == "after 1"), "{seen:?}");
}
