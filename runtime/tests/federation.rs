//! Federation between two real servers (each with its own PostgreSQL
//! database) over mutual TLS on loopback, through a link the test can cut:
//! shared channels converge in both directions, across a cut, with no loss
//! and no duplicates; partners are held to what is shared with them.

mod common;

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::http::{Method, StatusCode};
use common::Workspace;
use entente_operator::workspace::certs::{ensure, Wanted};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

/// A TCP link between two hosts that can be cut: while it is down, bytes
/// are held (as on an unplugged cable: nothing is closed, nothing arrives).
#[derive(Clone)]
struct Link {
    up: Arc<AtomicBool>,
}

impl Link {
    async fn start(target: std::net::SocketAddr) -> (Link, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let link = Link {
            up: Arc::new(AtomicBool::new(true)),
        };
        let up = link.up.clone();
        tokio::spawn(async move {
            loop {
                let (inbound, _) = listener.accept().await.unwrap();
                let up = up.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    tokio::spawn(pump(ri, wo, up.clone()));
                    pump(ro, wi, up).await;
                });
            }
        });
        (link, port)
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    up: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // A cut link delivers nothing, ever: what was in flight is lost.
        if !up.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// PEM files of one workspace's federation identity.
struct Identity {
    dir: PathBuf,
}

impl Identity {
    fn issue(dir: &Path, name: &str) -> Identity {
        Identity::issue_by(dir, name, None)
    }

    /// A certificate for `name` from the CA of `by` (a new CA if none).
    fn issue_by(dir: &Path, name: &str, by: Option<&Identity>) -> Identity {
        std::fs::create_dir_all(dir).unwrap();
        let names = [name.to_string()];
        let ca = by.map(|by| entente_operator::workspace::certs::Pair {
            cert: std::fs::read_to_string(by.dir.join("ca.pem")).unwrap(),
            key: std::fs::read_to_string(by.dir.join("ca.key")).unwrap(),
        });
        let issued = ensure(
            ca,
            None,
            &Wanted {
                names: &names,
                organisation: name,
                lifetime_seconds: 86_400,
                renew_before_seconds: 3_600,
            },
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
        std::fs::write(dir.join("ca.pem"), issued.ca.cert).unwrap();
        std::fs::write(dir.join("ca.key"), issued.ca.key).unwrap();
        std::fs::write(dir.join("tls.crt"), issued.server.cert).unwrap();
        std::fs::write(dir.join("tls.key"), issued.server.key).unwrap();
        Identity {
            dir: dir.to_path_buf(),
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// What one side says about its partner.
struct PartnerSide<'a> {
    id: &'a str,
    organisation: &'a str,
    port: u16,
    identity: &'a str,
    ca: String,
    /// (local name, the partner's name, read-only)
    channels: &'a [(&'a str, &'a str, bool)],
}

async fn workspace(id: &str, own: &Identity, partner: PartnerSide<'_>) -> Workspace {
    let channels: String = partner
        .channels
        .iter()
        .map(|(name, remote, read_only)| {
            let (mode, write) = if *read_only { ("ReadOnly", false) } else { ("ReadWrite", true) };
            format!("        - {{name: {name}, remoteName: {remote}, mode: {mode}, post: {write}, react: {write}, uploadFiles: {write}}}\n")
        })
        .collect();
    let federation = format!(
        r#"federation:
  tls: {{certFile: {cert}, keyFile: {key}, caFile: {ca}}}
  partners:
    - workspaceId: {pid}
      organisation: {org}
      endpoint: "https://127.0.0.1:{port}"
      caFile: {pca}
      identity: {pidentity}
      channels:
{channels}      sync: {{maxQueuedEvents: 100000, maxQueuedBytes: 1000000000, whenQueueFull: KeepAndDegrade, maxFileBytes: 1000000, keepaliveSeconds: 2, maxBackoffSeconds: 2, compression: true}}
      allowRelay: false
      suspended: false
"#,
        cert = own.file("tls.crt"),
        key = own.file("tls.key"),
        ca = own.file("ca.pem"),
        pid = partner.id,
        org = partner.organisation,
        port = partner.port,
        pca = partner.ca,
        pidentity = partner.identity,
    );
    let id = id.to_string();
    Workspace::with_config(move |yaml| {
        let start = yaml.find("\nfederation:").unwrap() + 1;
        let end = yaml.find("\nlimits:").unwrap() + 1;
        format!("{}{}{}", &yaml[..start], federation, &yaml[end..])
            .replace("workspace: {id: test,", &format!("workspace: {{id: {id},"))
    })
    .await
}

struct Pair {
    a: Workspace,
    b: Workspace,
    /// A→B and B→A.
    links: (Link, Link),
    tasks: Vec<tokio::task::JoinHandle<()>>,
    dir: PathBuf,
}

impl Drop for Pair {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn serve_federation(ws: &Workspace, listener: TcpListener) -> tokio::task::JoinHandle<()> {
    let state = ws.state.clone();
    tokio::spawn(async move {
        entente_runtime::server::federation::tls::serve(state, listener, std::future::pending())
            .await
            .unwrap();
    })
}

/// Workspaces `ws-a` and `ws-b`: A's `joint` is B's `joint-ops`, and A
/// shares `briefings` read-only.
async fn pair(name: &str) -> Pair {
    let dir =
        std::env::temp_dir().join(format!("entente-federation-{}-{name}", std::process::id()));
    let (a_id, b_id) = (
        Identity::issue(&dir.join("a"), "a.fed.test"),
        Identity::issue(&dir.join("b"), "b.fed.test"),
    );
    let (a_listener, b_listener) = (
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    );
    let (to_b, to_b_port) = Link::start(b_listener.local_addr().unwrap()).await;
    let (to_a, to_a_port) = Link::start(a_listener.local_addr().unwrap()).await;
    let a = workspace(
        "ws-a",
        &a_id,
        PartnerSide {
            id: "ws-b",
            organisation: "Bravo Org",
            port: to_b_port,
            identity: "b.fed.test",
            ca: b_id.file("ca.pem"),
            channels: &[
                ("joint", "joint-ops", false),
                ("briefings", "briefings", true),
            ],
        },
    )
    .await;
    let b = workspace(
        "ws-b",
        &b_id,
        PartnerSide {
            id: "ws-a",
            organisation: "Alpha Org",
            port: to_a_port,
            identity: "a.fed.test",
            ca: a_id.file("ca.pem"),
            channels: &[
                ("joint-ops", "joint", false),
                ("briefings", "briefings", false),
            ],
        },
    )
    .await;
    let tasks = vec![
        serve_federation(&a, a_listener).await,
        serve_federation(&b, b_listener).await,
    ];
    Pair {
        a,
        b,
        links: (to_b, to_a),
        tasks,
        dir,
    }
}

/// A channel's posts as comparable facts: (id, root, message, deleted, reactions).
async fn history(
    ws: &Workspace,
    token: &str,
    channel: &str,
) -> Vec<(String, Value, String, bool, Value)> {
    let (status, page) = ws
        .get(
            &format!("/api/v1/channels/{channel}/posts?limit=200"),
            token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut posts: Vec<_> = page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let mut reactions: Vec<String> = p["reactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| format!("{}:{}", r[0], r[1]))
                .collect();
            reactions.sort();
            (
                p["id"].as_str().unwrap().to_string(),
                p["rootId"].clone(),
                p["message"].as_str().unwrap().to_string(),
                !p["deletedAt"].is_null(),
                json!(reactions),
            )
        })
        .collect();
    posts.sort_by(|x, y| x.0.cmp(&y.0));
    posts
}

/// Waits until both channels hold the same history with `count` posts.
async fn converge(
    pair: &Pair,
    (a_token, a_channel): (&str, &str),
    (b_token, b_channel): (&str, &str),
    count: usize,
) -> Vec<(String, Value, String, bool, Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = (
            history(&pair.a, a_token, a_channel).await,
            history(&pair.b, b_token, b_channel).await,
        );
        if a == b && a.len() == count {
            return a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no convergence within 60s:\nA ({}): {a:?}\nB ({}): {b:?}",
            a.len(),
            b.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Joins the channel a share names: the server made it when the config
/// took effect, before any partner's event could.
async fn join_shared(ws: &Workspace, token: &str, name: &str) -> String {
    let (status, channels) = ws.get("/api/v1/channels", token).await;
    assert_eq!(status, StatusCode::OK, "{channels}");
    let channel = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no shared channel {name}: {channels}"));
    assert_eq!(channel["kind"], "public", "{channel}");
    let id = channel["id"].as_str().unwrap().to_string();
    let (status, body) = ws
        .post(&format!("/api/v1/channels/{id}/join"), token, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

async fn post(ws: &Workspace, token: &str, channel: &str, body: Value) -> Value {
    let (status, post) = ws
        .post(&format!("/api/v1/channels/{channel}/posts"), token, body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{post}");
    post
}

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

/// Pushes `events` to A as whoever `config` makes us; returns the ack.
async fn push_as(
    config: &entente_crds::config::RuntimeConfig,
    to_a: &entente_crds::config::PartnerConfig,
    events: Vec<entente_runtime::server::federation::proto::Event>,
) -> Result<entente_runtime::server::federation::proto::Ack, String> {
    use entente_runtime::server::federation::{
        proto::{
            federation_client::FederationClient, push_frame, push_reply, Batch, Envelope, PushFrame,
        },
        tls,
    };
    let channel = tls::connect(config, to_a).await?;
    let (frames, outgoing) = tokio::sync::mpsc::channel(4);
    let mut replies = FederationClient::new(channel)
        .push(tokio_stream::wrappers::ReceiverStream::new(outgoing))
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let resume = match replies
        .message()
        .await
        .map_err(|s| s.message().to_string())?
    {
        Some(reply) => match reply.body {
            Some(push_reply::Body::Resume(r)) => r.applied,
            other => return Err(format!("not a resume: {other:?}")),
        },
        None => return Err("closed".into()),
    };
    let envelopes = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Envelope {
            seq: resume + 1 + i as u64,
            event: Some(event),
        })
        .collect();
    frames
        .send(PushFrame {
            body: Some(push_frame::Body::Batch(Batch { events: envelopes })),
        })
        .await
        .unwrap();
    match replies
        .message()
        .await
        .map_err(|s| s.message().to_string())?
    {
        Some(reply) => match reply.body {
            Some(push_reply::Body::Ack(ack)) => Ok(ack),
            other => Err(format!("not an ack: {other:?}")),
        },
        None => Err("closed".into()),
    }
}

#[tokio::test]
async fn partners_touch_only_what_is_shared_and_foreign_certificates_are_refused() {
    use entente_runtime::server::federation::proto::{event::Op, Event, PostCreated, Profile};
    let pair = pair("security").await;
    let a_admin = pair.a.admin().await;
    let (alice_id, alice) = pair.a.user("alice", "member").await;
    let a_joint = join_shared(&pair.a, &alice, "joint").await;
    pair.a.channel(&alice, "secret-stuff", "public").await;
    let b_config = pair.b.state.config();
    let to_a = b_config.federation.partners[0].clone();
    let bob = Profile {
        id: ulid::Ulid::new().to_string(),
        username: "bob".into(),
        display_name: "Bob".into(),
        origin: "ws-b".into(),
        guest: false,
    };
    let event = |channel: &str, origin: &str, author: &Profile, message: &str| Event {
        id: ulid::Ulid::new().to_string(),
        origin: origin.into(),
        channel: channel.into(),
        at_micros: chrono::Utc::now().timestamp_micros(),
        author: Some(author.clone()),
        op: Some(Op::PostCreated(PostCreated {
            post_id: ulid::Ulid::new().to_string(),
            root_id: String::new(),
            message: message.into(),
        })),
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
