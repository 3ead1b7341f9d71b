//! Federation end to end: two `entente-server` processes, each in its own
//! network namespace with its own database and object store, joined by a
//! veth pair that the test cuts and heals. Both keep working through the
//! cut; after it heals, and after the receiving server is killed mid-sync
//! and restarted, both hold exactly the same posts in the same threads.
//! The processes are reached from the test through a second veth per
//! namespace; the federation link is the only path between the two.
//!
//! Needs root (`ip netns`), as the README's test command runs.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::federation::{carry_by_hand, event_by, new_post, partner_user, push_as, Identity};
use entente_e2e::{Postgres, S3Server};
use serde_json::{json, Value};

const NS_A: &str = "entente-e2e-a";
const NS_B: &str = "entente-e2e-b";
/// The federation link, A's end and B's end.
const LINK_A: &str = "ent-fed-a";
const LINK_B: &str = "ent-fed-b";
const FED_A: &str = "10.231.0.1";
const FED_B: &str = "10.231.0.2";
/// Where the test (and each workspace's object store) sits, per namespace.
const HOST_A: &str = "10.231.1.1";
const HOST_B: &str = "10.231.2.1";
/// Each server's address on its namespace's management link.
const MGMT_A: &str = "10.231.1.2";
const MGMT_B: &str = "10.231.2.2";
const HTTP_PORT: u16 = 8080;
const FED_PORT: u16 = 7443;

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `ip` (iproute2): {e}");
    });
    assert!(
        output.status.success(),
        "ip {}: {}\n(this test needs root: it creates network namespaces)",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The two namespaces and their links; removed on drop, however the test ends.
struct Network;

impl Network {
    fn create() -> Network {
        Network::remove();
        let network = Network;
        for ns in [NS_A, NS_B] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link", "add", LINK_A, "netns", NS_A, "type", "veth", "peer", "name", LINK_B, "netns",
            NS_B,
        ]);
        for (ns, dev, address) in [(NS_A, LINK_A, FED_A), (NS_B, LINK_B, FED_B)] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{address}/30"),
                "dev",
                dev,
            ]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        for (ns, host_dev, ns_dev, host, mgmt) in [
            (NS_A, "ent-mgmt-a", "ent-mgmt-a0", HOST_A, MGMT_A),
            (NS_B, "ent-mgmt-b", "ent-mgmt-b0", HOST_B, MGMT_B),
        ] {
            ip(&[
                "link", "add", host_dev, "type", "veth", "peer", "name", ns_dev, "netns", ns,
            ]);
            ip(&["addr", "add", &format!("{host}/30"), "dev", host_dev]);
            ip(&["link", "set", host_dev, "up"]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{mgmt}/30"),
                "dev",
                ns_dev,
            ]);
            ip(&["-n", ns, "link", "set", ns_dev, "up"]);
        }
        network
    }

    /// Cuts (or heals) the federation link, as an unplugged cable would.
    fn link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["-n", NS_A, "link", "set", LINK_A, state]);
        ip(&["-n", NS_B, "link", "set", LINK_B, state]);
    }

    fn remove() {
        let quietly = |args: &[&str]| {
            let _ = Command::new("ip").args(args).stderr(Stdio::null()).status();
        };
        for ns in [NS_A, NS_B] {
            quietly(&["netns", "del", ns]);
        }
        // A namespace goes when its last process does; its veths' ends here go now.
        for dev in ["ent-mgmt-a", "ent-mgmt-b"] {
            quietly(&["link", "del", dev]);
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        Network::remove();
    }
}

/// One HTTP/1.1 request to `host:port`: status and body bytes.
fn http(
    host: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect((host, HTTP_PORT))
        .unwrap_or_else(|e| panic!("{method} {path} on {host}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (kind, body) = body.unwrap_or(("application/json", Vec::new()));
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{auth}Content-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response[split + 4..].to_vec())
}

fn call(
    host: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
    let (status, bytes) = http(host, method, path, token, body);
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A workspace server process in its namespace.
struct Server {
    ns: &'static str,
    host: &'static str,
    config: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(&mut self) {
        let child = Command::new("ip")
            .args(["netns", "exec", self.ns])
            .arg(env!("CARGO_BIN_EXE_entente-server"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.config.with_extension("log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = std::net::TcpStream::connect_timeout(
                &format!("{}:{HTTP_PORT}", self.host).parse().unwrap(),
                Duration::from_millis(200),
            )
            .is_ok()
                && call(self.host, "GET", "/readyz", None, None).0 == 200;
            if ready {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "entente-server in {} exited ({status}):\n{}",
                    self.ns,
                    std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the server in {} is not ready",
                self.ns
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: nothing graceful.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Side {
    id: &'static str,
    organisation: &'static str,
    ns: &'static str,
    mgmt: &'static str,
    fed: &'static str,
    store: &'static str,
    identity: &'static str,
}

/// Writes the RuntimeConfig of `own`, federated with `partner`.
#[allow(clippy::too_many_arguments)]
fn write_config(
    dir: &Path,
    own: &Side,
    partner: &Side,
    database_url: &str,
    s3: &S3Server,
    me: &Identity,
    them: &Identity,
    shares: &str,
    sync: &str,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("database-url"), database_url).unwrap();
    std::fs::write(dir.join("admin-password"), common::ADMIN_PASSWORD).unwrap();
    std::fs::write(dir.join("s3-key"), s3.access_key_id()).unwrap();
    std::fs::write(dir.join("s3-secret"), s3.secret_access_key()).unwrap();
    let config = format!(
        r#"version: 1
workspace: {{id: {id}, displayName: {org}, organisation: {org}, siteUrl: "http://{mgmt}:{HTTP_PORT}"}}
listen: {{http: "0.0.0.0:{HTTP_PORT}", federation: "0.0.0.0:{FED_PORT}", admin: "127.0.0.1:9090"}}
database: {{url: {{file: {dir}/database-url}}, poolSize: 10}}
objectStorage:
  endpoint: {endpoint}
  region: us-east-1
  bucket: ws-{id}
  forcePathStyle: true
  accessKeyId: {{file: {dir}/s3-key}}
  secretAccessKey: {{file: {dir}/s3-secret}}
identity:
  local: {{enabled: true, adminUsername: admin, adminPassword: {{file: {dir}/admin-password}}, minPasswordLength: 12}}
federation:
  tls: {{certFile: {cert}, keyFile: {key}, caFile: {ca}}}
  partners:
    - workspaceId: {pid}
      organisation: {porg}
      endpoint: "https://{pfed}:{FED_PORT}"
      caFile: {pca}
      identity: {pidentity}
      channels:
{shares}
      sync: {{maxQueuedEvents: 100000, maxQueuedBytes: 1000000000, whenQueueFull: KeepAndDegrade, maxFileBytes: 1000000, keepaliveSeconds: 2, maxBackoffSeconds: 2, compression: true{sync}}}
      allowRelay: false
      suspended: false
limits: {{maxUploadBytes: 1048576, maxRequestBodyBytes: 65536, requestsPerMinute: 1000000}}
"#,
        id = own.id,
        org = own.organisation,
        mgmt = own.mgmt,
        dir = dir.display(),
        endpoint = s3.endpoint(),
        cert = me.file("tls.crt"),
        key = me.file("tls.key"),
        ca = me.file("ca.pem"),
        pid = partner.id,
        porg = partner.organisation,
        pfed = partner.fed,
        pca = them.file("ca.pem"),
        pidentity = partner.identity,
    );
    let path = dir.join("runtime.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

/// A logged-in user of the server at `host`: (id, token).
fn user(host: &str, admin: &str, name: &str) -> (String, String) {
    let password = format!("{name}-password-long");
    let (status, body) = call(
        host,
        "POST",
        "/api/v1/users",
        Some(admin),
        Some(json!({"username": name, "password": password, "role": "member"})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, login) = call(
        host,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"username": name, "password": password})),
    );
    assert_eq!(status, 200, "{login}");
    (
        body["id"].as_str().unwrap().to_string(),
        login["token"].as_str().unwrap().to_string(),
    )
}

fn admin(host: &str) -> String {
    let (status, login) = call(
        host,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"username": "admin", "password": common::ADMIN_PASSWORD})),
    );
    assert_eq!(status, 200, "{login}");
    login["token"].as_str().unwrap().to_string()
}

/// Joins the channel the share names (the server made it); returns its id.
fn join(host: &str, token: &str, name: &str) -> String {
    let (status, channels) = call(host, "GET", "/api/v1/channels", Some(token), None);
    assert_eq!(status, 200, "{channels}");
    let id = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no channel {name}: {channels}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = call(
        host,
        "POST",
        &format!("/api/v1/channels/{id}/join"),
        Some(token),
        Some(json!({})),
    );
    assert_eq!(status, 200, "{body}");
    id
}

fn say(host: &str, token: &str, channel: &str, body: Value) -> String {
    let (status, post) = call(
        host,
        "POST",
        &format!("/api/v1/channels/{channel}/posts"),
        Some(token),
        Some(body),
    );
    assert_eq!(status, 201, "{post}");
    post["id"].as_str().unwrap().to_string()
}

/// A channel's posts as comparable facts: (id, root, message, deleted,
/// reactions, files as name:sha-256), every page.
fn history(host: &str, token: &str, channel: &str) -> Vec<String> {
    let mut facts = Vec::new();
    let mut before = String::new();
    loop {
        let (status, page) = call(
            host,
            "GET",
            &format!("/api/v1/channels/{channel}/posts?limit=200{before}"),
            Some(token),
            None,
        );
        assert_eq!(status, 200, "{page}");
        for post in page["posts"].as_array().unwrap() {
            let mut reactions: Vec<String> = post["reactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| format!("{}:{}", r[0], r[1]))
                .collect();
            reactions.sort();
            let files: Vec<String> = post["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| format!("{}:{}:{}", f["id"], f["name"], f["state"]))
                .collect();
            facts.push(format!(
                "{} root={} {:?} deleted={} {reactions:?} {files:?}",
                post["id"],
                post["rootId"],
                post["message"],
                !post["deletedAt"].is_null()
            ));
        }
        match page["next"].as_i64() {
            Some(next) => before = format!("&before={next}"),
            None => break,
        }
    }
    facts.sort();
    facts
}

/// Waits until both sides show the same `count` posts; returns them.
fn converge(
    a: (&str, &str, &str),
    b: (&str, &str, &str),
    count: usize,
    within: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let (left, right) = (history(a.0, a.1, a.2), history(b.0, b.1, b.2));
        if left == right && left.len() == count {
            return left;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence within {within:?}: A has {}, B has {}\nonly on A: {:?}\nonly on B: {:?}",
            left.len(),
            right.len(),
            left.iter().filter(|p| !right.contains(p)).take(5).collect::<Vec<_>>(),
            right.iter().filter(|p| !left.contains(p)).take(5).collect::<Vec<_>>(),
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn count_posts(database: &str) -> i64 {
    Postgres::shared()
        .psql(
            database,
            "SELECT count(*) FROM posts WHERE origin IS NOT NULL",
        )
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_converge_across_a_cut_veth_and_a_killed_receiver() {
    let network = Network::create();
    let dir = std::env::temp_dir().join(format!("entente-netns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let postgres = Postgres::shared();
    let (db_a, db_b) = (
        postgres.create_database("netns_a").unwrap(),
        postgres.create_database("netns_b").unwrap(),
    );
    let name = |url: &str| url.rsplit('/').next().unwrap().to_string();
    let (name_a, name_b) = (name(&db_a), name(&db_b));
    // Each organisation's own object store, reachable only from its namespace (and the test).
    let (s3_a, s3_b) = (
        S3Server::start_on(HOST_A).unwrap(),
        S3Server::start_on(HOST_B).unwrap(),
    );
    let (id_a, id_b) = (
        Identity::issue(&dir.join("pki-a"), "a.fed.test"),
        Identity::issue(&dir.join("pki-b"), "b.fed.test"),
    );
    let a = Side {
        id: "ws-a",
        organisation: "Alpha Org",
        ns: NS_A,
        mgmt: MGMT_A,
        fed: FED_A,
        store: HOST_A,
        identity: "a.fed.test",
    };
    let b = Side {
        id: "ws-b",
        organisation: "Bravo Org",
        ns: NS_B,
        mgmt: MGMT_B,
        fed: FED_B,
        store: HOST_B,
        identity: "b.fed.test",
    };
    assert_ne!(a.store, b.store);
    let share = |local: &str, remote: &str| {
        format!("        - {{name: {local}, remoteName: {remote}, mode: ReadWrite, post: true, react: true, uploadFiles: true}}")
    };
    // A's sends are paced, so a sync of its backlog takes a few seconds.
    let config_a = write_config(
        &dir.join("a"),
        &a,
        &b,
        &postgres.socket_url(&name_a),
        &s3_a,
        &id_a,
        &id_b,
        &share("joint", "joint-ops"),
        ", bandwidthBytesPerSecond: 150000",
    );
    let config_b = write_config(
        &dir.join("b"),
        &b,
        &a,
        &postgres.socket_url(&name_b),
        &s3_b,
        &id_b,
        &id_a,
        &share("joint-ops", "joint"),
        "",
    );
    common::create_bucket(&config_a).await;
    common::create_bucket(&config_b).await;
    let mut server_a = Server {
        ns: a.ns,
        host: a.mgmt,
        config: config_a.clone(),
        child: None,
    };
    let mut server_b = Server {
        ns: b.ns,
        host: b.mgmt,
        config: config_b.clone(),
        child: None,
    };
    server_a.start();
    server_b.start();
    let (admin_a, admin_b) = (admin(MGMT_A), admin(MGMT_B));
    let (_, alice) = user(MGMT_A, &admin_a, "alice");
    let (_, bob) = user(MGMT_B, &admin_b, "bob");
    let joint_a = join(MGMT_A, &alice, "joint");
    let joint_b = join(MGMT_B, &bob, "joint-ops");
    let on_a = (MGMT_A, alice.as_str(), joint_a.as_str());
    let on_b = (MGMT_B, bob.as_str(), joint_b.as_str());

    // 1. Posts, replies, edits, reactions and files flow both ways.
    let first = say(
        MGMT_A,
        &alice,
        &joint_a,
        json!({"message": "hello from alpha"}),
    );
    converge(on_a, on_b, 1, Duration::from_secs(60));
    say(
        MGMT_B,
        &bob,
        &joint_b,
        json!({"message": "bravo replies", "rootId": first}),
    );
    let (status, body) = call(
        MGMT_B,
        "PUT",
        &format!("/api/v1/posts/{first}/reactions/thumbsup"),
        Some(&bob),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        MGMT_A,
        "PATCH",
        &format!("/api/v1/posts/{first}"),
        Some(&alice),
        Some(json!({"message": "hello from alpha (edited)"})),
    );
    assert_eq!(status, 200, "{body}");
    let mut files = Vec::new();
    for (host, token, channel, name, bytes) in [
        (
            MGMT_A,
            &alice,
            &joint_a,
            "plan-a.bin",
            vec![0xa5u8; 200_000],
        ),
        (
            MGMT_B,
            &bob,
            &joint_b,
            "plan-b.txt",
            b"bravo's plan\n".repeat(1000),
        ),
    ] {
        let (status, file) = http(
            host,
            "POST",
            &format!("/api/v1/channels/{channel}/files?name={name}"),
            Some(token),
            Some(("application/octet-stream", bytes.clone())),
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&file));
        let file: Value = serde_json::from_slice(&file).unwrap();
        let id = file["id"].as_str().unwrap().to_string();
        say(
            host,
            token,
            channel,
            json!({"message": format!("attached {name}"), "fileIds": [id]}),
        );
        files.push((id, bytes));
    }
    let converged = converge(on_a, on_b, 4, Duration::from_secs(60));
    assert!(
        converged
            .iter()
            .any(|p| p.contains("(edited)") && p.contains("thumbsup")),
        "{converged:?}"
    );
    assert!(
        converged
            .iter()
            .any(|p| p.contains(&format!("root=\"{first}\""))),
        "{converged:?}"
    );
    // Each side can download the other's file, byte for byte.
    for ((id, bytes), (host, token)) in files.iter().zip([(MGMT_B, &bob), (MGMT_A, &alice)]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = http(
                host,
                "GET",
                &format!("/api/v1/files/{id}"),
                Some(token),
                None,
            );
            if status == 200 {
                assert!(body == *bytes, "file {id} arrived unchanged on {host}");
                break;
            }
            assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
            assert!(
                Instant::now() < deadline,
                "file {id} never arrived on {host}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    // 2. The link is cut; both sides keep posting, replying, editing.
    network.link(false);
    let mut expected = 4;
    for i in 0..20 {
        let root = say(
            MGMT_A,
            &alice,
            &joint_a,
            json!({"message": format!("alpha during the cut {i}")}),
        );
        say(
            MGMT_B,
            &bob,
            &joint_b,
            json!({"message": format!("bravo during the cut {i}")}),
        );
        say(
            MGMT_A,
            &alice,
            &joint_a,
            json!({"message": format!("alpha replies {i}"), "rootId": root}),
        );
        expected += 3;
    }
    let (status, _) = call(
        MGMT_B,
        "PATCH",
        &format!("/api/v1/posts/{first}"),
        Some(&bob),
        Some(json!({"message": "not bob's to edit"})),
    );
    assert_eq!(status, 403, "only the author edits");
    std::thread::sleep(Duration::from_secs(3));
    // Each side has only its own new posts: nothing crossed the cut link.
    assert_eq!(history(MGMT_A, &alice, &joint_a).len(), 4 + 40);
    assert_eq!(history(MGMT_B, &bob, &joint_b).len(), 4 + 20);
    network.link(true);
    let healed = converge(on_a, on_b, expected, Duration::from_secs(120));
    let ids: std::collections::BTreeSet<&str> = healed
        .iter()
        .map(|p| p.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids.len(), expected, "no duplicates");

    // 3. A backlog builds behind a cut; B is killed while applying it, and restarted.
    network.link(false);
    let backlog = 1200;
    for i in 0..backlog {
        say(
            MGMT_A,
            &alice,
            &joint_a,
            json!({"message": format!("backlog {i}")}),
        );
    }
    let before = count_posts(&name_b);
    network.link(true);
    let deadline = Instant::now() + Duration::from_secs(120);
    let at_kill = loop {
        let now = count_posts(&name_b);
        if now > before {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the backlog did not start to flow"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    server_b.kill();
    assert!(
        at_kill < before + backlog,
        "B was killed mid-sync: {} of {backlog} applied",
        at_kill - before
    );
    server_b.start();
    expected += backlog as usize;
    let after = converge(on_a, on_b, expected, Duration::from_secs(240));
    let ids: std::collections::BTreeSet<&str> = after
        .iter()
        .map(|p| p.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids.len(), expected, "no duplicates after the restart");

    // 4. No link at all: signed bundles carried by hand converge the two,
    //    through the `entente` command run against each server's database.
    network.link(false);
    say(
        MGMT_A,
        &alice,
        &joint_a,
        json!({"message": "alpha, by courier"}),
    );
    say(
        MGMT_B,
        &bob,
        &joint_b,
        json!({"message": "bravo, by courier"}),
    );
    expected += 2;
    let (config_a, config_b) = (
        config_a.display().to_string(),
        config_b.display().to_string(),
    );
    carry_by_hand(&config_a, &config_b, "ws-b", &dir);
    carry_by_hand(&config_b, &config_a, "ws-a", &dir);
    let carried = converge(on_a, on_b, expected, Duration::from_secs(60));
    assert!(carried.iter().any(|p| p.contains("bravo, by courier")));

    // 5. Through a real process (last: pushing as B moves what A
    //    has applied of B's stream past B's real outbox)'s listener: a foreign CA is refused before
    //    any gRPC, and a valid partner forging an origin or writing into an
    //    unshared channel is refused and audited.
    let mut b_config = entente_crds::config::RuntimeConfig::load(Path::new(&config_b)).unwrap();
    let mut to_a = b_config.federation.partners[0].clone();
    to_a.endpoint = format!("https://{MGMT_A}:{FED_PORT}");
    let bob_profile = partner_user("bob", "ws-b");
    let event = |channel: &str, origin: &str, message: &str| {
        let mut author = bob_profile.clone();
        author.origin = origin.into();
        let post_id = ulid::Ulid::new().to_string();
        event_by(origin, channel, &author, new_post(&post_id, "", message))
    };
    let ack = push_as(
        &b_config,
        &to_a,
        vec![
            event("joint-ops", "ws-c", "forged origin"),
            event("town", "ws-b", "unshared channel"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(ack.rejected, 2, "{ack:?}");
    let (status, audit) = call(
        MGMT_A,
        "GET",
        "/api/v1/admin/audit?kind=federation.rejected",
        Some(&admin_a),
        None,
    );
    assert_eq!(status, 200, "{audit}");
    let reasons: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("claims origin \"ws-c\"")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("\"town\" is not shared")),
        "{reasons:?}"
    );
    let foreign = Identity::issue(&dir.join("pki-foreign"), "b.fed.test");
    b_config.federation.tls.cert_file = foreign.dir.join("tls.crt");
    b_config.federation.tls.key_file = foreign.dir.join("tls.key");
    let refused = push_as(
        &b_config,
        &to_a,
        vec![event("joint-ops", "ws-b", "foreign CA")],
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        history(MGMT_A, &alice, &joint_a).len(),
        expected,
        "nothing got in"
    );

    server_a.kill();
    server_b.kill();
    drop(network);
    let _ = std::fs::remove_dir_all(&dir);
}
