//! A workspace server on a fresh database of the shared test PostgreSQL,
//! driven in-process through its router.

#![allow(dead_code)] // each test binary uses a different part

pub mod browser;
pub mod federation;
pub mod idp;
pub mod model;

use std::path::{Path, PathBuf};

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
    Router,
};
use entente_crds::config::RuntimeConfig;
use entente_runtime::server;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// Writes secrets and a RuntimeConfig for `database_url` into `dir`, listening on `http_port`.
pub fn write_config(dir: &Path, database_url: &str, http_port: u16) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("database-url"), database_url).unwrap();
    std::fs::write(dir.join("admin-password"), format!("{ADMIN_PASSWORD}\n")).unwrap();
    let s3 = entente_e2e::S3Server::shared();
    std::fs::write(dir.join("s3-key"), s3.access_key_id()).unwrap();
    std::fs::write(dir.join("s3-secret"), s3.secret_access_key()).unwrap();
    // One bucket per workspace, named after its database.
    let bucket = format!(
        "ws-{}",
        database_url.rsplit('/').next().unwrap().replace('_', "-")
    );
    let config = format!(
        r#"
version: 1
workspace: {{id: test, displayName: Test, organisation: Test Org, siteUrl: "http://127.0.0.1:{http_port}"}}
listen: {{http: "127.0.0.1:{http_port}", federation: "127.0.0.1:0", admin: "127.0.0.1:0"}}
database: {{url: {{file: {dir}/database-url}}, poolSize: 10}}
objectStorage:
  endpoint: {endpoint}
  region: us-east-1
  bucket: {bucket}
  forcePathStyle: true
  accessKeyId: {{file: {dir}/s3-key}}
  secretAccessKey: {{file: {dir}/s3-secret}}
identity:
  local: {{enabled: true, adminUsername: admin, adminPassword: {{file: {dir}/admin-password}}, minPasswordLength: 12}}
federation:
  tls: {{certFile: /unused, keyFile: /unused, caFile: /unused}}
limits: {{maxUploadBytes: 1048576, maxRequestBodyBytes: 65536, requestsPerMinute: 100000}}
"#,
        dir = dir.display(),
        endpoint = s3.endpoint(),
    );
    let path = dir.join("runtime.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Creates the bucket a config names (the operator's job on a cluster).
pub async fn create_bucket(config: &Path) {
    let config = RuntimeConfig::load(config).unwrap();
    server::store::ObjectStore::new(&config.object_storage)
        .unwrap()
        .ensure_bucket()
        .await
        .unwrap();
}

/// The same, from a test that is not async.
pub fn create_bucket_blocking(config: &Path) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(create_bucket(config));
}

pub const SFU_KEY: &str = "the-calls-cluster-join-token-key-0123456789";

/// The `entente-sfu` built beside this test (`cargo test --workspace`
/// builds every package's binaries).
pub fn sfu_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().unwrap().parent().unwrap().join("entente-sfu");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p entente-media` (scripts/test builds everything)",
        binary.display()
    );
    binary
}

/// An `entente-sfu` process, killed when dropped.
pub struct Sfu(pub std::process::Child);

impl Drop for Sfu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts an `entente-sfu` on loopback, its join-token key in `dir/join-key`;
/// returns it and its signalling port.
pub fn start_sfu(dir: &std::path::Path) -> (Sfu, u16) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("join-key"), SFU_KEY).unwrap();
    let (port, udp) = (entente_e2e::free_port(), entente_e2e::free_port());
    std::fs::write(
        dir.join("media.yaml"),
        format!(
            "version: 1\ncluster: calls\njoinTokenKey: {{file: {}}}\nsfu: {{listen: \"127.0.0.1:{port}\", udp: {{mux: {udp}}}, maxParticipantsPerRoom: 8}}\n",
            dir.join("join-key").display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(sfu_binary())
        .arg("--config")
        .arg(dir.join("media.yaml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !entente_e2e::port_is_open(port) {
        assert!(
            std::time::Instant::now() < deadline,
            "entente-sfu did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (Sfu(child), port)
}

/// The RuntimeConfig `calls` section for SFU nodes on `ports`, with the
/// key [`start_sfu`] wrote into `dir`.
pub fn calls_section(dir: &Path, ports: &[u16]) -> String {
    let nodes: Vec<String> = ports
        .iter()
        .map(|p| format!("\"http://127.0.0.1:{p}\""))
        .collect();
    format!(
        "calls: {{sfuNodes: [{}], joinTokenKey: {{file: {}}}, joinTokenTtlSeconds: 60, recording: false}}\n",
        nodes.join(", "),
        dir.join("join-key").display()
    )
}

pub struct Workspace {
    pub router: Router,
    pub state: server::AppState,
    pub dir: PathBuf,
}

impl Workspace {
    pub async fn new() -> Workspace {
        Workspace::with_config(|yaml| yaml).await
    }

    /// A workspace whose RuntimeConfig YAML is first passed through `edit`.
    pub async fn with_config(edit: impl FnOnce(String) -> String) -> Workspace {
        let url = entente_e2e::Postgres::shared()
            .create_database("api")
            .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "entente-api-{}-{}",
            std::process::id(),
            url.rsplit('_').next().unwrap()
        ));
        let path = write_config(&dir, &url, 0);
        // The bucket of the unedited config exists, as the operator would have made it.
        create_bucket(&path).await;
        std::fs::write(&path, edit(std::fs::read_to_string(&path).unwrap())).unwrap();
        let config = RuntimeConfig::load(&path).unwrap();
        let state = server::prepare(config).await.unwrap();
        Workspace {
            router: server::router(state.clone()),
            state,
            dir,
        }
    }

    /// The raw response, headers included.
    pub async fn request(&self, request: Request<Body>) -> axum::response::Response {
        self.router.clone().oneshot(request).await.unwrap()
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    pub async fn admin(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Posts `message` to `channel` as `token`; the post must be accepted.
    pub async fn say(&self, token: &str, channel: &str, message: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/api/v1/channels/{channel}/posts"),
                token,
                json!({"message": message}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Uploads `bytes` as file `name` to `channel`, declaring `declared` as its type.
    pub async fn upload(
        &self,
        token: &str,
        channel: &str,
        name: &str,
        bytes: Vec<u8>,
        declared: &str,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("/api/v1/channels/{channel}/files?name={name}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", declared)
            .body(Body::from(bytes))
            .unwrap();
        let response = self.request(request).await;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Creates a user with `role` and returns (id, token).
    pub async fn user(&self, username: &str, role: &str) -> (String, String) {
        let admin = self.admin().await;
        let password = format!("{username}-password-long");
        let (status, body) = self
            .post(
                "/api/v1/users",
                &admin,
                json!({"username": username, "password": password, "role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = self.login(username, &password).await;
        (body["id"].as_str().unwrap().to_string(), token)
    }

    /// Invites `email` under `policy` and redeems it as `username`; returns (id, token).
    pub async fn guest(
        &self,
        admin: &str,
        policy: &str,
        email: &str,
        username: &str,
    ) -> (String, String) {
        let (status, invitation) = self
            .post(
                "/api/v1/guests/invitations",
                admin,
                json!({"policy": policy, "email": email}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{invitation}");
        let (status, login) = self
        .call(
            Method::POST,
            "/api/v1/guests/redeem",
            None,
            Some(json!({"token": invitation["token"], "username": username, "password": "guest-password-long"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{login}");
        assert_eq!(
            login["user"]["guest"], true,
            "payloads mark guests: {login}"
        );
        assert_eq!(login["user"]["role"], "guest");
        (
            login["user"]["id"].as_str().unwrap().to_string(),
            login["token"].as_str().unwrap().to_string(),
        )
    }

    /// Creates a channel as `token` and returns its id.
    pub async fn channel(&self, token: &str, name: &str, kind: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/channels",
                token,
                json!({"name": name, "kind": kind}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTP/1.1 request over a fresh connection (enough for tests that drive a
/// server process from outside). Returns the status and the JSON body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> std::io::Result<(u16, Value)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let payload = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let value = serde_json::from_str(payload).unwrap_or(Value::String(payload.to_string()));
    Ok((status, value))
}

/// Waits until a server on `port` answers `/readyz` with 200.
pub fn wait_ready(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !matches!(http(port, "GET", "/readyz", None, None), Ok((200, _))) {
        assert!(
            std::time::Instant::now() < deadline,
            "the server on {port} did not become ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A server process that cannot outlive a failed test.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Logs in as the bootstrap admin of the server on `port`; returns the token.
pub fn admin_token(port: u16) -> String {
    let (status, login) = http(
        port,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD})),
    )
    .unwrap();
    assert_eq!(status, 200, "{login}");
    login["token"].as_str().unwrap().to_string()
}

/// Creates the member `username` (password `<username>-password-long`)
/// on the server on `port` as `admin`, and logs them in; returns their
/// token.
pub fn member_token(port: u16, admin: &str, username: &str) -> String {
    let password = format!("{username}-password-long");
    let (status, body) = http(
        port,
        "POST",
        "/api/v1/users",
        Some(admin),
        Some(serde_json::json!({"username": username, "password": password, "role": "member"})),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, login) = http(
        port,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(serde_json::json!({"username": username, "password": password})),
    )
    .unwrap();
    assert_eq!(status, 200, "{login}");
    login["token"].as_str().unwrap().to_string()
}

/// Creates a public channel on the server on `port`; returns its id.
pub fn public_channel(port: u16, token: &str, name: &str) -> String {
    let (status, channel) = http(
        port,
        "POST",
        "/api/v1/channels",
        Some(token),
        Some(serde_json::json!({"name": name, "kind": "public"})),
    )
    .unwrap();
    assert_eq!(status, 201, "{channel}");
    channel["id"].as_str().unwrap().to_string()
}

/// A live-event WebSocket client.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Serves `ws` on a free port in this process and returns the port.
/// Waits until a queue of `ws` is empty — until `count` (a `SELECT
/// count(*)` of it) gives 0 —, failing with `why` after `within`.
pub async fn emptied(ws: &Workspace, count: &'static str, within: Duration, why: &str) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (queued,): (i64,) = sqlx::query_as(count).fetch_one(&ws.state.db).await.unwrap();
        if queued == 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{why}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The metrics, as Prometheus scrapes them from their own listener.
pub async fn scrape(ws: &Workspace) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(entente_runtime::server::serve_metrics(
        ws.state.clone(),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    let (status, body) =
        tokio::task::spawn_blocking(move || http(port, "GET", "/metrics", None, None))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(status, 200, "{body}");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    body.as_str().unwrap().to_string()
}

/// A keep-alive HTTP/1.1 connection that posts JSON.
pub struct Poster {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
}

impl Poster {
    pub async fn connect(port: u16) -> Poster {
        Poster {
            stream: tokio::io::BufReader::new(
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap(),
            ),
        }
    }

    /// Posts `body`; the answer's status and body.
    pub async fn post(&mut self, path: &str, token: &str, body: &str) -> (u16, Vec<u8>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
        let mut status_line = String::new();
        self.stream.read_line(&mut status_line).await.unwrap();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).await.unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.unwrap();
        (status, body)
    }
}

pub async fn serve(ws: &Workspace) -> u16 {
    serve_on(ws, 0).await
}

/// Serves `ws` on `port` (0: any free one) in this process; returns the port.
pub async fn serve_on(ws: &Workspace, port: u16) -> u16 {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = ws.state.clone();
    tokio::spawn(entente_runtime::server::serve(
        state,
        listener,
        std::future::pending(),
    ));
    port
}

pub async fn connect(port: u16, token: &str, since: Option<i64>) -> (Socket, i64) {
    let query = since.map(|s| format!("?since={s}")).unwrap_or_default();
    let mut request = format!("ws://127.0.0.1:{port}/api/v1/ws{query}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let hello = next(&mut socket).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    (socket, hello["seq"].as_i64().unwrap())
}

/// Whether the server closes `socket` within `within` (a close frame, the
/// end of the stream, or an error), skipping what comes before.
pub async fn closes(socket: &mut Socket, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .is_ok()
}

/// The next event, skipping pings; panics after 10 s of silence.
pub async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an event within 10s")
            .expect("the socket is open")
            .unwrap();
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// An operator context whose admin API calls go to `admin_url`.
pub fn operator_context(
    client: &kube::Client,
    admin_url: &str,
) -> std::sync::Arc<entente_operator::reconcile::Context> {
    use entente_operator::{
        admin::Addresses,
        reconcile::{metrics::Metrics, Context},
    };
    let mut registry = prometheus_client::registry::Registry::default();
    std::sync::Arc::new(
        Context::new(
            client.clone(),
            Metrics::new(&mut registry),
            "entente-system".into(),
            "test".into(),
        )
        .with_admin(Addresses::Fixed(admin_url.into())),
    )
}

/// Serves `ws`'s admin gRPC API on loopback; returns its URL and the task.
pub async fn serve_admin(ws: &Workspace) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = ws.state.clone();
    let task = tokio::spawn(async move {
        server::admin::serve(state, listener, std::future::pending())
            .await
            .unwrap();
    });
    (url, task)
}

/// A call participant (`media/tests/peer.py`, a real WebRTC stack) joining
/// with the server's `ticket` and sending a `freq` Hz tone for `seconds`.
pub fn call_peer(ticket: &Value, freq: u32, seconds: &str) -> std::process::Child {
    let script =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../media/tests/peer.py");
    std::process::Command::new(entente_e2e::python())
        .arg(script)
        .args(["--url", ticket["url"].as_str().unwrap()])
        .args(["--token", ticket["token"].as_str().unwrap()])
        .args(["--freq", &freq.to_string(), "--seconds", seconds])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// What a [`call_peer`] heard: its JSON report, once it has finished.
pub fn peer_report(child: std::process::Child) -> Value {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "peer: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

/// A benchmark's `--name N` option, or `default`.
pub fn bench_option(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

/// Prints where PostgreSQL spent its time since `reset_statements`: the
/// statements costing most, each with its calls and time per `unit` (a post,
/// an event) of the `units` measured.
pub fn print_statements(pg: &entente_e2e::Postgres, unit: &str, units: u64) {
    let statements = match pg.statements(12) {
        Ok(statements) => statements,
        Err(error) => return println!("  (no statement profile: {error})"),
    };
    let total: f64 = statements.iter().map(|s| s.total_ms).sum();
    println!(
        "  PostgreSQL's time, by statement (calls and µs per {unit}, share of the listed total):"
    );
    for statement in statements {
        let text: String = statement.query.chars().take(110).collect();
        println!(
            "    {:>7.3} calls {:>6.1} µs {:>4.1}%  {text}",
            statement.calls as f64 / units.max(1) as f64,
            statement.total_ms * 1000.0 / units.max(1) as f64,
            statement.total_ms * 100.0 / total.max(f64::MIN_POSITIVE)
        );
    }
}

/// An `entente-server` process serving `config` on `port`, once it is ready.
pub fn start_server(config: &Path, port: u16) -> std::process::Child {
    let server = std::process::Command::new(env!("CARGO_BIN_EXE_entente-server"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !matches!(http(port, "GET", "/readyz", None, None), Ok((200, _))) {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// CPU ticks of `pid` and every process below it (a PostgreSQL server and
/// its backends).
pub fn tree_cpu_ticks(pid: u32) -> u64 {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let parent = stat
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        parents.push((child, parent));
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    tree.into_iter().map(|p| process_stats(p).2).sum()
}

/// Peak and current resident memory (kB) and CPU ticks of a process.
pub fn process_stats(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = fields
        .get(11)
        .and_then(|u| u.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
    (kb("VmHWM:"), kb("VmRSS:"), ticks)
}
