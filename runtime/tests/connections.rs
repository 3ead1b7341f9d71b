//! What one client can hold of the server: connections that stall, idle,
//! send huge heads or bodies that never finish, too many sockets from one
//! address, WebSockets without credentials, oversized or too many
//! messages, and clients too slow to read.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use common::{connect, next, serve, Workspace};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

/// Short limits, so each is seen in a second or two.
async fn workspace() -> Workspace {
    Workspace::with_config(|yaml| {
        yaml.replace(
            "requestsPerMinute: 100000}",
            "requestsPerMinute: 100000, connections: {headerTimeoutSeconds: 1, bodyTimeoutSeconds: 1, maxHeaderBytes: 8192, perAddress: 4, websocketSendTimeoutSeconds: 1}}",
        )
    })
    .await
}

/// Whether the server closes `stream` within `within` (reads end or fail).
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue, // a response (408, 400) before the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false, // timed out: still open
        }
    }
}

fn status_of(stream: &mut TcpStream) -> u16 {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_idle_and_oversized_requests_are_cut() {
    let ws = workspace().await;
    let port = serve(&ws).await;
    tokio::task::spawn_blocking(move || {
        // Half a request head, then nothing: closed after the header timeout.
        let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
        let started = Instant::now();
        assert!(closed_within(&mut half, Duration::from_secs(5)), "a half-sent head is cut");
        assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());

        // An idle keep-alive connection is closed as well.
        let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(status_of(&mut idle), 200);
        assert!(closed_within(&mut idle, Duration::from_secs(5)), "an idle connection is closed");

        // A 100 KB head: 431.
        let mut huge = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let padding = "a".repeat(100_000);
        let _ = huge.write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {padding}\r\n\r\n").as_bytes());
        assert_eq!(status_of(&mut huge), 431);

        // A body that stops half-way is cut, not waited for.
        let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stalled
            .write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"username\":")
            .unwrap();
        let started = Instant::now();
        assert!(closed_within(&mut stalled, Duration::from_secs(5)), "a stalled body is cut");
        assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_holds_a_bounded_number_of_connections() {
    let ws = workspace().await;
    let port = serve(&ws).await;
    tokio::task::spawn_blocking(move || {
        let open: Vec<TcpStream> = (0..4)
            .map(|_| {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .unwrap(); // held open, half-sent
                s
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let mut fifth = TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert!(
            closed_within(&mut fifth, Duration::from_millis(500)),
            "the fifth connection from one address is closed at once"
        );
        drop(open);
        std::thread::sleep(Duration::from_millis(200));
        let mut again = TcpStream::connect(("127.0.0.1", port)).unwrap();
        again
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(status_of(&mut again), 200, "freed slots are usable again");
    })
    .await
    .unwrap();
    assert!(ws.state.metrics.refused_connections.get() >= 1);
}

#[tokio::test]
async fn websockets_need_credentials_and_bounded_messages() {
    let ws = workspace().await;
    let port = serve(&ws).await;
    let url = format!("ws://127.0.0.1:{port}/api/v1/ws");
    // No credentials: 401 before any upgrade.
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected 401, got {other:?}"),
    }
    // A browser's way: the token as a subprotocol beside `entente`.
    let token = ws.admin().await;
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("entente, bearer.{token}").parse().unwrap(),
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "entente");
    assert_eq!(next(&mut socket).await["type"], "hello");
    // A message over 16 KiB ends the session.
    let _ = socket.send(Message::Text("x".repeat(20_000).into())).await;
    assert!(
        common::closes(&mut socket, Duration::from_secs(5)).await,
        "an oversized message closes the socket"
    );
}

#[tokio::test]
async fn typing_indicators_are_rate_limited_per_user() {
    let ws = workspace().await;
    let port = serve(&ws).await;
    let admin = ws.admin().await;
    let channel = ws.channel(&admin, "typing", "public").await;
    let (_, bob) = ws.user("bob", "member").await;
    ws.post(&format!("/api/v1/channels/{channel}/join"), &bob, json!({}))
        .await;
    let (mut typist, _) = connect(port, &admin, None).await;
    let (mut watcher, _) = connect(port, &bob, None).await;
    for _ in 0..50 {
        typist
            .send(Message::Text(
                json!({"type": "typing", "channelId": channel})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
    }
    let mut seen = 0;
    let quiet = tokio::time::timeout(Duration::from_millis(1500), async {
        loop {
            let event = next(&mut watcher).await;
            if event["type"] == "typing" {
                seen += 1;
            }
        }
    })
    .await;
    assert!(quiet.is_err());
    assert!(
        (1..=5).contains(&seen),
        "50 typing notices in a burst reach others as {seen}"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_and_resumes_exactly() {
    let ws = workspace().await;
    let port = serve(&ws).await;
    let admin = ws.admin().await;
    let channel = ws.channel(&admin, "firehose", "public").await;
    // A reader with a tiny receive buffer that never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let mut request = format!("ws://127.0.0.1:{port}/api/v1/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    let (mut stalled, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    let hello = next(&mut stalled).await;
    let from = hello["seq"].as_i64().unwrap();
    assert_eq!(ws.state.metrics.websockets.get(), 1);
    // Far more than the kernel buffers hold: 16 KB posts, 8 MB in all.
    let big = "y".repeat(16_000);
    for _ in 0..500 {
        ws.say(&admin, &channel, &big).await;
        if ws.state.metrics.websockets.get() == 0 {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while ws.state.metrics.websockets.get() != 0 {
        assert!(
            Instant::now() < deadline,
            "the stalled client is still connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(stalled);
    // It resumes from where it was: the first post it missed comes first.
    let (mut resumed, _) = connect(port, &admin, Some(from)).await;
    let first: Value = next(&mut resumed).await;
    assert_eq!(first["type"], "posted", "{first}");
    assert_eq!(first["seq"].as_i64().unwrap(), from + 1, "{first}");
}
