//! Guests and attribute-based access, enforced by the server: the
//! authorisation matrix, revocation when attributes or policies change
//! (live subscriptions included), guest invitations and expiry, the
//! simulator and the audit log.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{connect, next, serve, Workspace};
use entente_runtime::server::authz::sweep;
use serde_json::{json, Value};

const LEVELS: &str = "[UNCLASSIFIED, RESTRICTED, CONFIDENTIAL, SECRET, TOP SECRET]";

/// A workspace with ranked clearance, a guest policy and two access
/// policies; `extra` is appended to the RuntimeConfig.
async fn workspace(guest_extra: &str, extra: &str) -> Workspace {
    let guest_extra = guest_extra.to_string();
    let extra = extra.to_string();
    Workspace::with_config(move |yaml| {
        let yaml = yaml.replace(
            "identity:\n  local:",
            &format!("identity:\n  rankedAttributes: {{clearance: {LEVELS}}}\n  local:"),
        );
        format!(
            r#"{yaml}
guests:
  - policy: liaison
    domains: [partner.example]
    channels: [joint-ops]
    invitationLifetimeSeconds: 3600
    uploadFiles: false
    directMessages: false
    attributes: {{organisation: Partner Corp, nation: FR}}
{guest_extra}
access:
  policies:
    - policy: secret-intel
      expression: "user.clearance >= 'SECRET'"
      channels: [intel]
      mode: Enforce
    - policy: five-eyes
      expression: "user.nation in ['GB', 'US', 'CA', 'AU', 'NZ']"
      channelLabels: {{mission: watch}}
      mode: Audit
{extra}"#
        )
    })
    .await
}

async fn set_attributes(ws: &Workspace, admin: &str, user: &str, attributes: Value) {
    let (status, body) = ws
        .call(
            Method::PUT,
            &format!("/api/v1/users/{user}/attributes"),
            Some(admin),
            Some(attributes),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn add(ws: &Workspace, token: &str, channel: &str, user: &str) -> (StatusCode, Value) {
    ws.post(
        &format!("/api/v1/channels/{channel}/members"),
        token,
        json!({"userId": user}),
    )
    .await
}

async fn audit(ws: &Workspace, admin: &str, query: &str) -> Vec<Value> {
    let (status, body) = ws.get(&format!("/api/v1/admin/audit?{query}"), admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn the_authorisation_matrix_with_guests_and_gated_channels() {
    let ws = workspace("", "").await;
    let admin = ws.admin().await;
    let (owner_id, owner) = ws.user("owner", "member").await;
    let (cleared_id, cleared) = ws.user("cleared", "member").await;
    let (_, uncleared) = ws.user("uncleared", "member").await;
    set_attributes(&ws, &admin, &owner_id, json!({"clearance": "TOP SECRET"})).await;
    set_attributes(
        &ws,
        &admin,
        &cleared_id,
        json!({"clearance": "SECRET", "nation": "GB"}),
    )
    .await;
    // Owner of every channel, so admins and members start outside them.
    let public = ws.channel(&owner, "town-square", "public").await;
    let private = ws.channel(&owner, "planning", "private").await;
    let joint = ws.channel(&owner, "joint-ops", "public").await;
    let intel = ws.channel(&owner, "intel", "public").await;
    let (guest_id, guest_token) = ws
        .guest(&admin, "liaison", "liaison@partner.example", "liaison")
        .await;
    // The guest joined their policy's channel on redemption; private
    // channels are entered by being added.
    let (status, body) = add(&ws, &owner, &private, &cleared_id).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Seed each channel with a findable post and a file.
    let mut seeds = std::collections::HashMap::new();
    for (i, channel) in [&public, &private, &joint, &intel].into_iter().enumerate() {
        let (status, file) = ws
            .upload(&owner, channel, "seed.txt", b"seed".to_vec(), "text/plain")
            .await;
        assert_eq!(status, StatusCode::CREATED, "{file}");
        let word = format!("matrixword{i}");
        let post = ws
            .post(
                &format!("/api/v1/channels/{channel}/posts"),
                &owner,
                json!({"message": word, "fileIds": [file["id"]]}),
            )
            .await
            .1;
        seeds.insert(
            channel.clone(),
            (
                post["id"].as_str().unwrap().to_string(),
                word,
                file["id"].as_str().unwrap().to_string(),
            ),
        );
    }

    // (who, token, channel, listed, read, post, join)
    let ok = StatusCode::OK;
    let created = StatusCode::CREATED;
    let forbidden = StatusCode::FORBIDDEN;
    let absent = StatusCode::NOT_FOUND;
    let cases: Vec<(
        &str,
        &String,
        &String,
        bool,
        StatusCode,
        StatusCode,
        StatusCode,
    )> = vec![
        ("member", &uncleared, &public, true, ok, forbidden, ok),
        (
            "member", &uncleared, &private, false, absent, absent, absent,
        ),
        ("member", &uncleared, &joint, true, ok, forbidden, ok),
        (
            "member below the gate",
            &uncleared,
            &intel,
            false,
            absent,
            absent,
            absent,
        ),
        ("cleared member", &cleared, &intel, true, ok, forbidden, ok),
        ("cleared member", &cleared, &private, true, ok, created, ok),
        (
            "guest",
            &guest_token,
            &public,
            false,
            absent,
            absent,
            absent,
        ),
        (
            "guest",
            &guest_token,
            &private,
            false,
            absent,
            absent,
            absent,
        ),
        ("guest", &guest_token, &joint, true, ok, created, ok),
        ("guest", &guest_token, &intel, false, absent, absent, absent),
        ("admin", &admin, &public, true, ok, forbidden, ok),
        ("admin", &admin, &private, false, absent, absent, absent),
        // Policies bind admins too: no clearance, no intel.
        (
            "admin below the gate",
            &admin,
            &intel,
            false,
            absent,
            absent,
            absent,
        ),
    ];
    let mut failures = Vec::new();
    for (who, token, channel, listed, read, post, join) in cases {
        let (seed, word, file) = &seeds[channel];
        let list = ws.get("/api/v1/channels", token).await.1;
        let got_listed = list
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == channel.as_str());
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
        let got_thread = ws
            .get(&format!("/api/v1/posts/{seed}/thread"), token)
            .await
            .0;
        let got_download = ws.get(&format!("/api/v1/files/{file}"), token).await.0;
        let found = ws.get(&format!("/api/v1/search?q={word}"), token).await.1;
        let searchable = found.as_array().is_some_and(|hits| !hits.is_empty());
        // Join last: it changes membership. Members get 200 as well.
        let got_join = ws
            .post(
                &format!("/api/v1/channels/{channel}/join"),
                token,
                json!({}),
            )
            .await
            .0;
        let join_ok = |s: StatusCode| s == ok;
        let readable = read == ok;
        if (
            got_listed,
            got_read,
            got_post,
            got_thread,
            got_download,
            searchable,
            join_ok(got_join),
        ) != (listed, read, post, read, read, readable, join_ok(join))
        {
            failures.push(format!(
                "{who} on {channel}: listed {got_listed} (want {listed}), read {got_read} (want {read}), post {got_post} (want {post}), thread {got_thread}, download {got_download}, search {searchable}, join {got_join} (want {join})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nobody can add a user a policy refuses, and the refusal is audited.
    let (status, body) = add(&ws, &owner, &intel, &guest_id).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("guest policy \"liaison\" does not list channel \"intel\""),
        "{body}"
    );
    let denied = audit(
        &ws,
        &admin,
        &format!("kind=access.denied&userId={guest_id}"),
    )
    .await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["actorId"], owner_id.as_str());

    // Guests: no uploads unless allowed, no direct messages unless allowed.
    let (status, body) = ws
        .upload(&guest_token, &joint, "x.txt", b"x".to_vec(), "text/plain")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("may not upload"),
        "{body}"
    );
    let (status, _) = ws
        .post(
            "/api/v1/channels/direct",
            &guest_token,
            json!({"userId": owner_id}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = ws
        .post(
            "/api/v1/channels",
            &guest_token,
            json!({"name": "g", "kind": "public"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_attribute_change_revokes_access_and_ends_the_live_subscription() {
    let ws = workspace("", "").await;
    let port = serve(&ws).await;
    let admin = ws.admin().await;
    let (owner_id, owner) = ws.user("owner", "member").await;
    let (analyst_id, analyst) = ws.user("analyst", "member").await;
    set_attributes(&ws, &admin, &owner_id, json!({"clearance": "TOP SECRET"})).await;
    set_attributes(&ws, &admin, &analyst_id, json!({"clearance": "SECRET"})).await;
    let intel = ws.channel(&owner, "intel", "private").await;
    let (status, body) = add(&ws, &owner, &intel, &analyst_id).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (mut socket, _) = connect(port, &analyst, None).await;
    ws.say(&owner, &intel, "before the downgrade").await;
    let event = next(&mut socket).await;
    assert_eq!(event["type"], "posted", "{event}");

    // Downgraded: removed at once, told why, and the subscription ends.
    set_attributes(
        &ws,
        &admin,
        &analyst_id,
        json!({"clearance": "CONFIDENTIAL"}),
    )
    .await;
    let event = next(&mut socket).await;
    assert_eq!(event["type"], "member_removed", "{event}");
    assert_eq!(event["channelId"], intel.as_str());
    assert!(
        event["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("secret-intel"),
        "{event}"
    );
    ws.say(&owner, &intel, "after the downgrade").await;
    let lobby = ws.channel(&owner, "lobby", "public").await;
    ws.post(
        &format!("/api/v1/channels/{lobby}/join"),
        &analyst,
        json!({}),
    )
    .await;
    ws.say(&owner, &lobby, "marker").await;
    // The next thing the analyst hears is the lobby, never intel again.
    loop {
        let event = next(&mut socket).await;
        assert_ne!(
            event["channelId"],
            intel.as_str(),
            "intel leaked after removal: {event}"
        );
        if event["type"] == "posted" {
            assert_eq!(event["data"]["message"], "marker");
            break;
        }
    }
    assert_eq!(
        ws.get(&format!("/api/v1/channels/{intel}/posts"), &analyst)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let revoked = audit(&ws, &admin, "kind=access.revoked").await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["userId"], analyst_id.as_str());
    assert_eq!(revoked[0]["policy"], "secret-intel");
    assert!(revoked[0]["reason"]
        .as_str()
        .unwrap()
        .contains("user.clearance >= 'SECRET'"));
    let changed = audit(
        &ws,
        &admin,
        &format!("kind=user.attributes_changed&userId={analyst_id}"),
    )
    .await;
    assert_eq!(
        changed.last().unwrap()["data"]["after"]["clearance"],
        "CONFIDENTIAL"
    );
}

#[tokio::test]
async fn a_policy_change_removes_members_who_no_longer_match_and_is_audited() {
    let ws = workspace("", "").await;
    let admin = ws.admin().await;
    let (owner_id, owner) = ws.user("owner", "member").await;
    let (fr_id, fr) = ws.user("fr", "member").await;
    set_attributes(
        &ws,
        &admin,
        &owner_id,
        json!({"clearance": "SECRET", "nation": "DE"}),
    )
    .await;
    set_attributes(
        &ws,
        &admin,
        &fr_id,
        json!({"clearance": "SECRET", "nation": "FR"}),
    )
    .await;
    let intel = ws.channel(&owner, "intel", "private").await;
    add(&ws, &owner, &intel, &fr_id).await;
    sweep::all(&ws.state).await.unwrap();
    assert!(
        audit(&ws, &admin, "kind=policy.added").await.len() >= 3,
        "both access policies and the guest policy"
    );

    // The simulator says what tightening the policy would do, before it is applied.
    let (status, simulation) = ws
        .post(
            "/api/v1/admin/access-policies/simulate",
            &admin,
            json!({"policy": "secret-intel", "expression": "user.clearance >= 'SECRET' && user.nation == 'DE'", "channels": ["intel"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{simulation}");
    let losses = simulation["losses"].as_array().unwrap();
    assert_eq!(losses.len(), 1, "{simulation}");
    assert_eq!(losses[0]["username"], "fr");
    assert_eq!(losses[0]["member"], true);
    assert!(simulation["gains"].as_array().unwrap().is_empty());
    // Loosening: the admin (no attributes) and fr stay out; nobody gains but those admitted.
    let (_, loosen) = ws
        .post(
            "/api/v1/admin/access-policies/simulate",
            &admin,
            json!({"policy": "secret-intel", "remove": true}),
        )
        .await;
    let gained: Vec<&str> = loosen["gains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["username"].as_str().unwrap())
        .collect();
    assert!(gained.contains(&"admin"), "{loosen}");
    // A typo is a clear error, not a silent deny-all.
    let (status, error) = ws
        .post(
            "/api/v1/admin/access-policies/simulate",
            &admin,
            json!({"policy": "secret-intel", "expression": "user.clearance >= 'SECERT'", "channels": ["intel"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["field"], "expression");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("\"SECERT\" is not a level of clearance"),
        "{error}"
    );

    // Nothing changed yet; now apply it as the operator would (config reload).
    assert_eq!(
        ws.get(&format!("/api/v1/channels/{intel}"), &fr).await.0,
        StatusCode::OK
    );
    let mut config = (*ws.state.config()).clone();
    config.access.policies[0].expression =
        "user.clearance >= 'SECRET' && user.nation == 'DE'".into();
    ws.state.apply(config);
    // The channel closes at once (every request checks) and the sweep removes the member.
    assert_eq!(
        ws.get(&format!("/api/v1/channels/{intel}"), &fr).await.0,
        StatusCode::NOT_FOUND
    );
    sweep::all(&ws.state).await.unwrap();
    let members: Vec<(String,)> =
        sqlx::query_as("SELECT user_id FROM channel_members WHERE channel_id = $1")
            .bind(&intel)
            .fetch_all(&ws.state.db)
            .await
            .unwrap();
    assert_eq!(members, vec![(owner_id.clone(),)]);
    let changed = audit(&ws, &admin, "kind=policy.changed&policy=secret-intel").await;
    assert_eq!(changed.len(), 1, "recorded once: {changed:?}");
    assert!(changed[0]["data"]["after"]["expression"]
        .as_str()
        .unwrap()
        .contains("nation == 'DE'"));
    // A second sweep records nothing new.
    sweep::all(&ws.state).await.unwrap();
    assert_eq!(audit(&ws, &admin, "kind=policy.").await.len(), 4);
    assert_eq!(audit(&ws, &admin, "kind=access.revoked").await.len(), 1);
}

#[tokio::test]
async fn audit_mode_allows_and_records_each_would_be_denial_once() {
    let ws = workspace("", "").await;
    let admin = ws.admin().await;
    let (owner_id, owner) = ws.user("owner", "member").await;
    let (_, member) = ws.user("member", "member").await;
    set_attributes(&ws, &admin, &owner_id, json!({"nation": "GB"})).await;
    let watch = ws.channel(&owner, "watch-floor", "public").await;
    let (status, body) = ws
        .call(
            Method::PUT,
            &format!("/api/v1/channels/{watch}/labels"),
            Some(&admin),
            Some(json!({"mission": "watch"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The member has no nation: the audit policy would deny, but access is allowed.
    for _ in 0..3 {
        assert_eq!(
            ws.get(&format!("/api/v1/channels/{watch}/posts"), &member)
                .await
                .0,
            StatusCode::OK
        );
    }
    let findings = audit(&ws, &admin, "kind=access.would_deny").await;
    assert_eq!(findings.len(), 1, "once, not per request: {findings:?}");
    assert_eq!(findings[0]["policy"], "five-eyes");
    assert!(findings[0]["reason"]
        .as_str()
        .unwrap()
        .contains("audit mode"));
    // Labels are validated, and only admins set them.
    let (status, _) = ws
        .call(
            Method::PUT,
            &format!("/api/v1/channels/{watch}/labels"),
            Some(&member),
            Some(json!({"mission": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, error) = ws
        .call(
            Method::PUT,
            &format!("/api/v1/channels/{watch}/labels"),
            Some(&admin),
            Some(json!({"mission": "no spaces"})),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("labels"))
    );
}

#[tokio::test]
async fn invitations_are_single_use_and_limited_to_the_invitees() {
    let ws = workspace(
        "  - policy: brief\n    emails: [visitor@elsewhere.example]\n    channels: [joint-ops]\n    invitationLifetimeSeconds: 1\n    uploadFiles: true\n    directMessages: true",
        "",
    )
    .await;
    let admin = ws.admin().await;
    let (_, member) = ws.user("member", "member").await;
    // Only admins invite, only under a policy that exists, only its invitees.
    let invite = |token: String, body: Value| {
        let ws = &ws;
        async move { ws.post("/api/v1/guests/invitations", &token, body).await }
    };
    assert_eq!(
        invite(
            member.clone(),
            json!({"policy": "liaison", "email": "a@partner.example"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (status, error) = invite(
        admin.clone(),
        json!({"policy": "nope", "email": "a@partner.example"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("brief, liaison"),
        "{error}"
    );
    let (status, error) = invite(
        admin.clone(),
        json!({"policy": "liaison", "email": "a@attacker.example"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("partner.example"),
        "{error}"
    );

    let (status, invitation) = invite(
        admin.clone(),
        json!({"policy": "liaison", "email": "Officer@Partner.Example"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    let redeem = |token: Value, username: &str| {
        let body = json!({"token": token, "username": username, "password": "guest-password-long"});
        let ws = &ws;
        async move {
            ws.call(Method::POST, "/api/v1/guests/redeem", None, Some(body))
                .await
        }
    };
    let (status, login) = redeem(invitation["token"].clone(), "officer").await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    assert_eq!(login["user"]["attributes"]["organisation"], "Partner Corp");
    assert!(login["user"]["accessExpiresAt"].is_string());
    // Used once: a second redemption is refused and audited.
    let (status, error) = redeem(invitation["token"].clone(), "officer2").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::GONE, Some("invitation_used"))
    );
    let refused = audit(&ws, &admin, "kind=guest.invitation_refused").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["data"]["username"], "officer2");
    assert_eq!(
        redeem(json!("not-a-token"), "x").await.0,
        StatusCode::NOT_FOUND
    );

    // An invitation past its lifetime is refused.
    let (_, short) = invite(
        admin.clone(),
        json!({"policy": "brief", "email": "visitor@elsewhere.example"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, error) = redeem(short["token"].clone(), "visitor").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::GONE, Some("invitation_expired"))
    );

    let lifecycle: Vec<String> = audit(&ws, &admin, "kind=guest.")
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        lifecycle,
        [
            "guest.invited",
            "guest.joined",
            "guest.invitation_refused",
            "guest.invited",
            "guest.invitation_refused"
        ]
    );
}

#[tokio::test]
async fn at_expiry_a_guest_can_no_longer_sign_in_and_leaves_its_channels() {
    let ends = (chrono::Utc::now() + chrono::Duration::seconds(3)).to_rfc3339();
    let ws = workspace(
        &format!("  - policy: short\n    domains: [partner.example]\n    channels: [joint-ops]\n    expiresAt: \"{ends}\"\n    invitationLifetimeSeconds: 3600\n    uploadFiles: false\n    directMessages: false"),
        "",
    )
    .await;
    let port = serve(&ws).await;
    let admin = ws.admin().await;
    let (_, owner) = ws.user("owner", "member").await;
    let joint = ws.channel(&owner, "joint-ops", "public").await;
    let (guest_id, token) = ws
        .guest(&admin, "short", "temp@partner.example", "temp")
        .await;
    assert_eq!(
        ws.get(&format!("/api/v1/channels/{joint}/posts"), &token)
            .await
            .0,
        StatusCode::OK
    );
    let (mut socket, _) = connect(port, &token, None).await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    // Refused at once, before any sweep: the token no longer works.
    assert_eq!(
        ws.get("/api/v1/users/me", &token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, error) = ws
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "temp", "password": "guest-password-long"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("guest access ended"),
        "{error}"
    );
    // The sweep takes the guest out of its channels and records it.
    sweep::all(&ws.state).await.unwrap();
    let event = next(&mut socket).await;
    assert_eq!(event["type"], "member_removed", "{event}");
    assert!(
        event["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("access period ended"),
        "{event}"
    );
    let expired = audit(
        &ws,
        &admin,
        &format!("kind=guest.expired&userId={guest_id}"),
    )
    .await;
    assert_eq!(expired.len(), 1);
    sweep::all(&ws.state).await.unwrap();
    assert_eq!(
        audit(&ws, &admin, "kind=guest.expired").await.len(),
        1,
        "once"
    );
}

#[tokio::test]
async fn a_policy_that_does_not_compile_closes_its_channels() {
    let ws = workspace("", "").await;
    let admin = ws.admin().await;
    let (owner_id, owner) = ws.user("owner", "member").await;
    set_attributes(&ws, &admin, &owner_id, json!({"clearance": "TOP SECRET"})).await;
    let vault = ws.channel(&owner, "vault", "public").await;
    // The operator reports the compile error on the AccessPolicy; if the
    // server is handed it anyway, it fails closed.
    let mut config = (*ws.state.config()).clone();
    let mut broken = config.access.policies[0].clone();
    broken.policy = "broken".into();
    broken.expression = "user.clearance >= ".into();
    broken.channels = vec!["vault".into(), "vault-2".into()];
    config.access.policies.push(broken);
    ws.state.apply(config);
    assert_eq!(
        ws.get(&format!("/api/v1/channels/{vault}"), &owner).await.0,
        StatusCode::NOT_FOUND
    );
    // Nor can a channel it gates be created (rather than created unseen).
    let (status, error) = ws
        .post(
            "/api/v1/channels",
            &owner,
            json!({"name": "vault-2", "kind": "public"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("does not compile"),
        "{error}"
    );
}

#[tokio::test]
async fn the_audit_log_is_append_only() {
    let ws = workspace("", "").await;
    sweep::all(&ws.state).await.unwrap();
    for statement in [
        "UPDATE audit_log SET reason = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let error = sqlx::query(statement)
            .execute(&ws.state.db)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    let admin = ws.admin().await;
    assert!(!audit(&ws, &admin, "").await.is_empty());
    let (_, member) = ws.user("member", "member").await;
    assert_eq!(
        ws.get("/api/v1/admin/audit", &member).await.0,
        StatusCode::FORBIDDEN
    );
}

/// The operator's GuestPolicy and AccessPolicy controllers, run against an
/// in-memory Kubernetes API, copy this server's figures from its admin gRPC
/// API into status.
#[tokio::test]
async fn the_operator_copies_the_servers_figures_into_policy_status() {
    use entente_crds::{
        common::HasConditions,
        validate::{parse_manifests, Resource as Manifest},
        AccessPolicy, GuestPolicy, Workspace as WorkspaceResource,
    };
    use entente_operator::policies::{reconcile_access, reconcile_guest};
    use kube::Api;
    use std::sync::Arc;

    let ws = workspace("", "").await;
    let admin = ws.admin().await;
    let (owner_id, owner) = ws.user("owner", "member").await;
    let (cleared_id, _) = ws.user("cleared", "member").await;
    let (uncleared_id, _) = ws.user("uncleared", "member").await;
    set_attributes(&ws, &admin, &owner_id, json!({"clearance": "TOP SECRET"})).await;
    set_attributes(&ws, &admin, &cleared_id, json!({"clearance": "SECRET"})).await;
    // Cleared but not a member: neither admitted nor denied.
    let (outsider_id, _) = ws.user("outsider", "member").await;
    set_attributes(&ws, &admin, &outsider_id, json!({"clearance": "SECRET"})).await;
    let intel = ws.channel(&owner, "intel", "public").await;
    assert_eq!(
        add(&ws, &owner, &intel, &cleared_id).await.0,
        StatusCode::NO_CONTENT
    );
    // Refused and audited: gives the policy a last audit time.
    assert_eq!(
        add(&ws, &owner, &intel, &uncleared_id).await.0,
        StatusCode::FORBIDDEN
    );
    // Liaison guests: one active, one whose access ended, one invitation pending.
    ws.guest(&admin, "liaison", "a@partner.example", "guest-a")
        .await;
    let (ended, _) = ws
        .guest(&admin, "liaison", "b@partner.example", "guest-b")
        .await;
    sqlx::query("UPDATE users SET access_expires_at = now() - interval '1 minute' WHERE id = $1")
        .bind(&ended)
        .execute(&ws.state.db)
        .await
        .unwrap();
    let (status, body) = ws
        .post(
            "/api/v1/guests/invitations",
            &admin,
            json!({"policy": "liaison", "email": "c@partner.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(entente_runtime::server::admin::serve(
        ws.state.clone(),
        listener,
        async {
            stopped.await.ok();
        },
    ));

    // The cluster side: the edge example's Workspace and GuestPolicy, and
    // AccessPolicies named like the server's, plus one the server lacks.
    let text = std::fs::read_to_string(
        std::path::Path::new(
            &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("../examples/edge-ddil/edge.yaml"),
    )
    .unwrap();
    let (mut workspace_resource, mut liaison, mut policy) = (None, None, None);
    for manifest in parse_manifests(&text, "edge.yaml") {
        match manifest.unwrap() {
            Manifest::Workspace(w) => workspace_resource = Some(*w),
            Manifest::GuestPolicy(g) => liaison = Some(*g),
            Manifest::AccessPolicy(a) => policy = Some(*a),
            _ => {}
        }
    }
    let namespaced = |meta: &mut kube::api::ObjectMeta| meta.namespace = Some("edge".into());
    let mut workspace_resource = workspace_resource.unwrap();
    namespaced(&mut workspace_resource.metadata);
    let mut liaison: GuestPolicy = liaison.unwrap();
    namespaced(&mut liaison.metadata);
    let mut policy: AccessPolicy = policy.unwrap();
    namespaced(&mut policy.metadata);
    policy.metadata.name = Some("secret-intel".into());
    policy.spec.expression = "user.clearance >= 'SECRET'".into();
    let mut unknown = policy.clone();
    unknown.metadata.name = Some("not-loaded".into());
    let client = kube_fake_client::ClientBuilder::new()
        .with_resource::<WorkspaceResource>()
        .with_resource::<GuestPolicy>()
        .with_resource::<AccessPolicy>()
        .with_object(workspace_resource)
        .with_object(liaison.clone())
        .with_object(policy.clone())
        .with_object(unknown.clone())
        .build()
        .await
        .unwrap();
    let context = |url: &str| common::operator_context(&client, url);
    let access: Api<AccessPolicy> = Api::namespaced(client.clone(), "edge");
    let guests: Api<GuestPolicy> = Api::namespaced(client.clone(), "edge");

    reconcile_access(Arc::new(policy.clone()), context(&admin_url))
        .await
        .unwrap();
    let status = access.get("secret-intel").await.unwrap().status.unwrap();
    // Admitted: the two cleared members of intel. Denied: the admin, the
    // uncleared member and the active guest, who have no SECRET clearance.
    assert_eq!((status.admitted, status.denied), (Some(2), Some(3)));
    let last = status
        .last_audit
        .clone()
        .expect("the refused add was audited")
        .0;
    assert!(
        (k8s_openapi::jiff::Timestamp::now() - last)
            .get_seconds()
            .abs()
            < 60,
        "{last}"
    );
    assert_eq!(status.condition("Ready").unwrap().status, "True");

    reconcile_guest(Arc::new(liaison.clone()), context(&admin_url))
        .await
        .unwrap();
    let status = guests.get("liaison").await.unwrap().status.unwrap();
    assert_eq!(
        (
            status.active_guests,
            status.expired_guests,
            status.pending_invitations
        ),
        (Some(1), Some(1), Some(1))
    );

    // A policy the server does not run yet is not Ready.
    reconcile_access(Arc::new(unknown), context(&admin_url))
        .await
        .unwrap();
    let ready = access
        .get("not-loaded")
        .await
        .unwrap()
        .status
        .unwrap()
        .condition("Ready")
        .unwrap()
        .clone();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ServerLoading")
    );

    // A server that does not answer leaves the figures as they were, and says so.
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let stored = access.get("secret-intel").await.unwrap();
    reconcile_access(Arc::new(stored), context(&admin_url))
        .await
        .unwrap();
    let status = access.get("secret-intel").await.unwrap().status.unwrap();
    assert_eq!((status.admitted, status.denied), (Some(2), Some(3)));
    let ready = status.condition("Ready").unwrap();
    assert!(
        ready.message.contains("figures not updated"),
        "{}",
        ready.message
    );
}
