//! `entente-sfu` with real WebRTC peers (aiortc, `tests/peer.py`): three
//! participants join one call; each hears the other two, checked by
//! decoding their tones; one shares a screen, which the others receive;
//! when it leaves, its tracks end for the others. No token, an expired
//! token, another call's token and a full room are refused; SIGTERM drains.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use entente_crds::join_token::{sign, Claims};
use entente_e2e::{free_port, python};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

const KEY: &str = "a-join-token-key-of-at-least-32-characters";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(call: &str, user: &str, expires: i64) -> String {
    sign(
        KEY.as_bytes(),
        &Claims {
            call: call.into(),
            user: user.into(),
            name: format!("User {user}"),
            expires,
        },
    )
}

struct Sfu {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Sfu {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("SFU log:\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_sfu(name: &str, max_participants: u32) -> Sfu {
    start_sfu_with(name, max_participants, "")
}

/// An SFU whose config ends with `extra` (more `sfu:` settings).
fn start_sfu_with(name: &str, max_participants: u32, extra: &str) -> Sfu {
    let dir = std::env::temp_dir().join(format!("entente-sfu-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("key"), KEY).unwrap();
    let (port, udp) = (free_port(), free_port());
    let config = format!(
        "version: 1
cluster: test
joinTokenKey: {{file: {key}}}
sfu:
  listen: 127.0.0.1:{port}
  udp: {{mux: {udp}}}
  maxParticipantsPerRoom: {max_participants}
{extra}",
        key = dir.join("key").display()
    );
    std::fs::write(dir.join("media.yaml"), config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_entente-sfu"))
        .env("RUST_LOG", "info,entente_media=debug,webrtc=warn")
        .arg("--config")
        .arg(dir.join("media.yaml"))
        .stdout(std::fs::File::create(dir.join("sfu.log")).unwrap())
        .stderr(std::fs::File::create(dir.join("sfu.err")).unwrap())
        .spawn()
        .unwrap();
    let mut sfu = Sfu { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(port, "/healthz").is_none() {
        if let Some(status) = sfu.child.try_wait().unwrap() {
            panic!("entente-sfu exited ({status}): {}", sfu.log());
        }
        assert!(Instant::now() < deadline, "entente-sfu did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    sfu
}

impl Sfu {
    fn log(&self) -> String {
        let read = |file: &str| std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        format!("{}{}", read("sfu.err"), read("sfu.log"))
    }

    fn url(&self, call: &str) -> String {
        format!("ws://127.0.0.1:{}/calls/{call}/ws", self.port)
    }

    fn status(&self) -> Value {
        serde_json::from_str(&get(self.port, "/status").expect("status")).unwrap()
    }
}

/// The body of `GET path`, if the server answers.
fn get(port: u16, path: &str) -> Option<String> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// A participant: the aiortc peer process.
fn peer(sfu: &Sfu, call: &str, user: &str, freq: u32, extra: &[&str]) -> Child {
    let script = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("tests/peer.py");
    Command::new(python())
        .arg(script)
        .args(["--url", &sfu.url(call)])
        .args(["--token", &token(call, user, now() + 60)])
        .args(["--freq", &freq.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn report(child: Child) -> Value {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "peer failed ({}):\n{stdout}\n{}\n(aiortc, numpy and websockets come from scripts/setup)",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Joins with `token` and a placeholder offer; the SFU's first answer.
async fn try_join(url: &str, token: &str) -> Value {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let join = json!({"type": "join", "token": token, "offer": "v=0\r\n"});
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            join.to_string().into(),
        ))
        .await
        .unwrap();
    loop {
        match socket.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                return serde_json::from_str(&text).unwrap()
            }
            Some(Ok(_)) => continue,
            other => panic!("no answer to join: {other:?}"),
        }
    }
}

/// The received tracks of `report` by publisher: (kind, frames, frequency, frames after leaving).
fn tracks_of(report: &Value, user: &str) -> Vec<(String, u64, Option<f64>, u64)> {
    report["tracks"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(id, _)| id.starts_with(&format!("{user}-")))
        .map(|(_, t)| {
            (
                t["kind"].as_str().unwrap().to_string(),
                t["frames"].as_u64().unwrap(),
                t["freq"].as_f64(),
                t["afterLeft"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn hears(report: &Value, user: &str, freq: f64) {
    let audio: Vec<_> = tracks_of(report, user)
        .into_iter()
        .filter(|t| t.0 == "audio")
        .collect();
    assert_eq!(audio.len(), 1, "one audio track from {user}: {report}");
    let (_, frames, found, _) = &audio[0];
    assert!(*frames > 50, "{user}'s audio arrived: {report}");
    let found = found.unwrap_or_else(|| panic!("no tone from {user}: {report}"));
    assert!(
        (found - freq).abs() < 15.0,
        "{user}'s tone is {freq} Hz, decoded {found} Hz: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_hear_each_other_see_a_screen_share_and_the_sfu_drains() {
    entente_media::install_crypto();
    let mut sfu = start_sfu("call", 3);
    let call = "call-1";
    // Carol shares her screen and leaves first.
    let alice = peer(&sfu, call, "alice", 440, &["--seconds", "16"]);
    let bob = peer(&sfu, call, "bob", 660, &["--seconds", "16"]);
    let carol = peer(
        &sfu,
        call,
        "carol",
        990,
        &["--screen", "--leave-after", "9"],
    );

    // While all three are in: the room is full, and tokens are checked.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sfu.status()["participants"] != 3 {
        assert!(Instant::now() < deadline, "{}\n{}", sfu.status(), sfu.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = try_join(&sfu.url(call), &token(call, "dave", now() + 60)).await;
    assert_eq!(refused["code"], "full", "{refused}");
    for (why, token) in [
        ("no token", String::new()),
        ("expired", token(call, "dave", now() - 1)),
        ("another call's", token("call-2", "dave", now() + 60)),
        ("forged", token(call, "dave", now() + 60).replace('.', ".x")),
        ("the server's own", token(call, "@server", now() + 60)),
    ] {
        let refused = try_join(&sfu.url(call), &token).await;
        assert_eq!(refused["type"], "error", "{why}: {refused}");
        assert_eq!(refused["code"], "unauthorized", "{why}: {refused}");
    }

    let carol = tokio::task::spawn_blocking(move || report(carol))
        .await
        .unwrap();
    let metrics = get(sfu.port, "/metrics").unwrap();
    let forwarded: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("entente_sfu_packets_forwarded_total "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(
        forwarded > 1000.0,
        "{metrics}\ncarol: {carol}\nSFU log:\n{}",
        sfu.log()
    );
    // Draining once Carol has left: no new call starts; this one goes on.
    sfu.child.terminate();
    let status = sfu.status();
    assert_eq!(status["draining"], true, "{status}");
    let refused = try_join(&sfu.url("call-2"), &token("call-2", "erin", now() + 60)).await;
    assert_eq!(refused["code"], "draining", "{refused}");
    let (alice, bob) = (
        tokio::task::spawn_blocking(move || report(alice)),
        tokio::task::spawn_blocking(move || report(bob)),
    );
    let (alice, bob) = (alice.await.unwrap(), bob.await.unwrap());

    // Everyone heard the other two, by their tones.
    for (report, others) in [
        (&alice, [("bob", 660.0), ("carol", 990.0)]),
        (&bob, [("alice", 440.0), ("carol", 990.0)]),
        (&carol, [("alice", 440.0), ("bob", 660.0)]),
    ] {
        assert!(report["joined"].as_bool().unwrap(), "{report}");
        for (user, freq) in others {
            hears(report, user, freq);
        }
    }
    // Carol's screen reached the others, and her tracks ended when she left.
    for report in [&alice, &bob] {
        let video: Vec<_> = tracks_of(report, "carol")
            .into_iter()
            .filter(|t| t.0 == "video")
            .collect();
        assert_eq!(video.len(), 1, "{report}");
        assert!(video[0].1 > 20, "screen frames decoded: {report}");
        let ended = report["left"]["carol"].as_array().unwrap();
        assert_eq!(ended.len(), 2, "both of carol's tracks ended: {report}");
        for track in tracks_of(report, "carol") {
            assert_eq!(track.3, 0, "nothing of carol's after she left: {report}");
        }
    }

    // The last call over, the drained SFU exits by itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(status) = sfu.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the SFU did not exit after draining"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "{exit}: {}", sfu.log());
    let log = sfu.log();
    assert!(!log.contains(KEY), "the key is never logged");
}

trait Terminate {
    fn terminate(&mut self);
}

impl Terminate for Child {
    /// Sends SIGTERM (the start of a drain, as Kubernetes would).
    fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A client whose UDP is blocked joins through the node's TURN over TCP
/// (relay candidates only, the TURN leg on TCP), and still hears and is
/// heard; without a join token there are no TURN credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_udp_joins_over_the_tcp_fallback() {
    entente_media::install_crypto();
    let tcp = free_port();
    let sfu = start_sfu_with("tcp", 4, &format!("  tcpPort: {tcp}\n"));
    let call = "call-tcp";
    let (status, body) = {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", sfu.port)).unwrap();
        write!(
            stream,
            "GET /calls/{call}/ice HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (
            head.split_whitespace().nth(1).unwrap().to_string(),
            body.to_string(),
        )
    };
    assert_eq!(status, "401", "no token, no TURN credentials: {body}");
    // An offer that is not SDP: refused, and the seat it held is given back.
    let refused = try_join(&sfu.url(call), &token(call, "erin", now() + 60)).await;
    assert_eq!(refused["code"], "bad_offer", "{refused}");
    assert_eq!(sfu.status()["rooms"], 0, "{}", sfu.status());

    let walled = peer(
        &sfu,
        call,
        "walled",
        550,
        &["--relay-tcp", "--seconds", "10"],
    );
    let open = peer(&sfu, call, "open", 770, &["--seconds", "10"]);
    let (walled, open) = (
        tokio::task::spawn_blocking(move || report(walled)),
        tokio::task::spawn_blocking(move || report(open)),
    );
    let (walled, open) = (walled.await.unwrap(), open.await.unwrap());
    assert_eq!(
        walled["iceServers"],
        json!([format!("turn:127.0.0.1:{tcp}?transport=tcp")]),
        "{walled}"
    );
    hears(&walled, "open", 770.0);
    hears(&open, "walled", 550.0);
}
