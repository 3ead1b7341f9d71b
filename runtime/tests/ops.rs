//! What operators rely on: request ids, metrics, and the per-user rate limit.

mod common;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use common::Workspace;

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn metrics_are_not_on_the_api_port() {
    let ws = Workspace::new().await;
    let response = ws.request(get("/metrics", None)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(common::scrape(&ws)
        .await
        .contains("entente_websocket_connections"));
}

#[tokio::test]
async fn a_user_over_the_limit_gets_429_with_retry_after_and_others_do_not() {
    let ws = Workspace::with_config(|yaml| {
        yaml.replace("requestsPerMinute: 100000", "requestsPerMinute: 5")
    })
    .await;
    let (_, alice) = ws.user("alice", "member").await;
    let (_, bob) = ws.user("bob", "member").await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(ws.request(get("/api/v1/users/me", Some(&alice))).await);
    }
    let limited = statuses
        .iter()
        .position(|r| r.status() == StatusCode::TOO_MANY_REQUESTS);
    let first = limited.expect("alice is limited after her quota");
    assert!(first >= 4, "the quota allows a burst: {first}");
    let retry: u64 = statuses[first].headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        ws.request(get("/api/v1/users/me", Some(&bob)))
            .await
            .status(),
        StatusCode::OK
    );

    let text = common::scrape(&ws).await;
    assert!(
        text.contains("entente_rate_limited_requests_total"),
        "{text}"
    );
}

#[tokio::test]
async fn every_response_has_a_request_id_and_metrics_count_routes_not_ids() {
    let ws = Workspace::new().await;
    let (_, alice) = ws.user("alice", "member").await;
    let response = ws.request(get("/api/v1/users/me", Some(&alice))).await;
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 26, "a ULID: {id}");
    let echoed = ws
        .request(
            Request::builder()
                .uri("/healthz")
                .header("x-request-id", "trace-me-42")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");

    let channel = ws.channel(&alice, "ops", "public").await;
    ws.request(get(&format!("/api/v1/channels/{channel}"), Some(&alice)))
        .await;
    let text = common::scrape(&ws).await;
    assert!(text.contains(r#"entente_http_requests_total{method="GET",route="/api/v1/channels/{id}",status="200"} 1"#), "{text}");
    assert!(!text.contains(&channel), "object ids never become labels");
    assert!(text.contains("entente_http_request_duration_seconds_bucket"));
    assert!(text.contains("entente_websocket_connections 0"));
}
