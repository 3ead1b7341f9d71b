//! Two federated workspace servers in one process, each on its own
//! database, over mutual TLS on loopback through links that can be cut: the
//! harness of the federation tests and benchmark.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::http::StatusCode;
use entente_crds::render::certs::{ensure, Wanted};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

use entente_runtime::server::federation::proto::{event::Op, Event, PostCreated, Profile};

use super::Workspace;

/// A TCP link between two hosts that can be cut: while it is down, bytes
/// are held (as on an unplugged cable: nothing is closed, nothing arrives).
#[derive(Clone)]
pub struct Link {
    up: Arc<AtomicBool>,
}

impl Link {
    pub async fn start(target: std::net::SocketAddr) -> (Link, u16) {
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

    pub fn set(&self, up: bool) {
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
pub struct Identity {
    pub dir: PathBuf,
}

impl Identity {
    pub fn issue(dir: &Path, name: &str) -> Identity {
        Identity::issue_by(dir, name, None)
    }

    /// A certificate for `name` from the CA of `by` (a new CA if none).
    pub fn issue_by(dir: &Path, name: &str, by: Option<&Identity>) -> Identity {
        std::fs::create_dir_all(dir).unwrap();
        let names = [name.to_string()];
        let ca = by.map(|by| entente_crds::render::certs::Pair {
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

    pub fn file(&self, name: &str) -> String {
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
    /// More `sync` settings, each starting with a comma.
    sync: &'a str,
}

/// Workspace `id`, federated with `partner`; `extra` is appended to its
/// RuntimeConfig.
async fn workspace(id: &str, own: &Identity, partner: PartnerSide<'_>, extra: &str) -> Workspace {
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
{channels}      sync: {{maxQueuedEvents: 100000, maxQueuedBytes: 1000000000, whenQueueFull: KeepAndDegrade, maxFileBytes: 1000000, keepaliveSeconds: 2, maxBackoffSeconds: 2, compression: true{sync}}}
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
        sync = partner.sync,
    );
    let id = id.to_string();
    let extra = extra.to_string();
    Workspace::with_config(move |yaml| {
        let start = yaml.find("\nfederation:").unwrap() + 1;
        let end = yaml.find("\nlimits:").unwrap() + 1;
        format!("{}{}{}\n{extra}", &yaml[..start], federation, &yaml[end..])
            .replace("workspace: {id: test,", &format!("workspace: {{id: {id},"))
    })
    .await
}

pub struct Pair {
    pub a: Workspace,
    pub b: Workspace,
    /// A→B and B→A.
    pub links: (Link, Link),
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub dir: PathBuf,
}

impl Drop for Pair {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub async fn serve_federation(
    ws: &Workspace,
    listener: TcpListener,
) -> tokio::task::JoinHandle<()> {
    let state = ws.state.clone();
    tokio::spawn(async move {
        entente_runtime::server::federation::tls::serve(state, listener, std::future::pending())
            .await
            .unwrap();
    })
}

/// Workspaces `ws-a` and `ws-b`: A's `joint` is B's `joint-ops`, and A
/// shares `briefings` read-only.
pub async fn pair(name: &str) -> Pair {
    pair_with(name, "").await
}

/// As [`pair`], with `a_extra` appended to A's RuntimeConfig.
pub async fn pair_with(name: &str, a_extra: &str) -> Pair {
    pair_tuned(name, a_extra, "").await
}

/// As [`pair_with`], with `a_sync` (`, key: value` pairs) added to A's
/// sync settings towards B.
pub async fn pair_tuned(name: &str, a_extra: &str, a_sync: &str) -> Pair {
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
            sync: a_sync,
        },
        a_extra,
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
            sync: "",
        },
        "",
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
pub async fn history(
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
pub async fn converge(
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
pub async fn join_shared(ws: &Workspace, token: &str, name: &str) -> String {
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

/// Waits until `ws` has had every event it queued acknowledged by its
/// partner (seeing a post arrive is not yet hearing that it did).
pub async fn acknowledged(ws: &Workspace) {
    super::emptied(
        ws,
        "SELECT count(*) FROM federation_outbox",
        Duration::from_secs(20),
        "the partner never acknowledged",
    )
    .await
}

pub async fn post(ws: &Workspace, token: &str, channel: &str, body: Value) -> Value {
    let (status, post) = ws
        .post(&format!("/api/v1/channels/{channel}/posts"), token, body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{post}");
    post
}

/// A user of workspace `origin`, as a partner's events name them.
pub fn partner_user(username: &str, origin: &str) -> Profile {
    Profile {
        id: ulid::Ulid::new().to_string(),
        username: username.into(),
        display_name: username.into(),
        origin: origin.into(),
        guest: false,
    }
}

/// A new event of `origin` in `channel` by `author`, now.
pub fn event_by(origin: &str, channel: &str, author: &Profile, op: Op) -> Event {
    Event {
        id: ulid::Ulid::new().to_string(),
        origin: origin.into(),
        channel: channel.into(),
        at_micros: chrono::Utc::now().timestamp_micros(),
        author: Some(author.clone()),
        op: Some(op),
    }
}

/// A new post (a reply when `root_id` is not empty), as an event's change.
pub fn new_post(post_id: &str, root_id: &str, message: &str) -> Op {
    Op::PostCreated(PostCreated {
        post_id: post_id.into(),
        root_id: root_id.into(),
        message: message.into(),
        files: Vec::new(),
    })
}

/// Pushes `events` to A as whoever `config` makes us; returns the ack.
pub async fn push_as(
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
    let channel = tls::connect(config, to_a)
        .await
        .map_err(|e| e.to_string())?;
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

/// Carries `from`'s queue for `partner` to `to` by hand, as an operator at
/// an air gap would, through the `entente` command: export, import (which
/// writes the acknowledgement), and the acknowledgement's import back.
/// `from` and `to` are RuntimeConfig files; returns the bundle's path.
pub fn carry_by_hand(from: &str, to: &str, partner: &str, dir: &Path) -> String {
    let entente = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_entente"))
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "entente {}: {text}",
            args.join(" ")
        );
        text
    };
    let path = |name: String| dir.join(name).display().to_string();
    let (bundle, ack) = (
        path(format!("to-{partner}")),
        path(format!("ack-from-{partner}")),
    );
    let text = entente(&[
        "admin",
        "federation",
        "export",
        "--config",
        from,
        "--partner",
        partner,
        "--out",
        &bundle,
    ]);
    assert!(text.starts_with("wrote "), "{text}");
    let text = entente(&[
        "admin",
        "federation",
        "import",
        "--config",
        to,
        "--in",
        &bundle,
        "--ack-out",
        &ack,
    ]);
    assert!(text.contains("(0 refused"), "{text}");
    let text = entente(&[
        "admin",
        "federation",
        "import",
        "--config",
        from,
        "--in",
        &ack,
    ]);
    assert!(text.contains("acknowledged everything up to"), "{text}");
    bundle
}
