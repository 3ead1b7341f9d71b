//! Files through a real S3 server (moto, checking signatures): streamed in,
//! typed by content, attached to posts, readable only with the post.

mod common;

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
};
use common::Workspace;
use serde_json::json;

const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R', 1, 2, 3,
];

async fn download(ws: &Workspace, token: &str, id: &str) -> (StatusCode, Vec<u8>, Option<String>) {
    let request = Request::builder()
        .uri(format!("/api/v1/files/{id}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = ws.request(request).await;
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap()
        .to_vec();
    (status, body, kind)
}

#[tokio::test]
async fn files_are_stored_typed_attached_and_only_readable_with_their_post() {
    let ws = Workspace::new().await;
    let (_, alice) = ws.user("alice", "member").await;
    let (bob_id, bob) = ws.user("bob", "member").await;
    let (_, carol) = ws.user("carol", "member").await;
    let intel = ws.channel(&alice, "intel", "private").await;
    ws.post(
        &format!("/api/v1/channels/{intel}/members"),
        &alice,
        json!({"userId": bob_id}),
    )
    .await;

    // A PNG claimed to be HTML is stored as what it is.
    let (status, file) = ws
        .upload(&alice, &intel, "map.png", PNG.to_vec(), "text/html")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(file["contentType"], "image/png");
    assert_eq!(file["size"], PNG.len());
    let id = file["id"].as_str().unwrap().to_string();

    // Before it is attached, only the uploader can fetch it.
    assert_eq!(download(&ws, &alice, &id).await.0, StatusCode::OK);
    assert_eq!(download(&ws, &bob, &id).await.0, StatusCode::NOT_FOUND);

    // Bob cannot attach Alice's upload; Alice can.
    let (status, error) = ws
        .post(
            &format!("/api/v1/channels/{intel}/posts"),
            &bob,
            json!({"message": "mine", "fileIds": [id]}),
        )
        .await;
    assert_eq!(
        (status, error["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("fileIds"))
    );
    let (status, post) = ws
        .post(
            &format!("/api/v1/channels/{intel}/posts"),
            &alice,
            json!({"message": "the map", "fileIds": [id]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{post}");
    assert_eq!(post["files"][0]["id"], id.as_str());
    assert_eq!(post["files"][0]["name"], "map.png");

    let (status, bytes, kind) = download(&ws, &bob, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, PNG);
    assert_eq!(kind.as_deref(), Some("image/png"));
    // Carol is not in the channel: the file does not exist for her.
    assert_eq!(download(&ws, &carol, &id).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        ws.upload(&carol, &intel, "x.txt", b"x".to_vec(), "text/plain")
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // Deleting the post takes the file with it.
    let post_id = post["id"].as_str().unwrap();
    ws.call(
        Method::DELETE,
        &format!("/api/v1/posts/{post_id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(download(&ws, &alice, &id).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_and_store_nothing() {
    let ws = Workspace::new().await;
    let (_, alice) = ws.user("alice", "member").await;
    let ops = ws.channel(&alice, "ops", "public").await;
    let too_big = vec![b'a'; 1_048_577]; // the test config allows 1 MiB
    let (status, error) = ws
        .upload(&alice, &ops, "big.txt", too_big, "text/plain")
        .await;
    assert_eq!(
        (status, error["code"].clone()),
        (StatusCode::PAYLOAD_TOO_LARGE, json!("too_large"))
    );
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM files")
        .fetch_one(&ws.state.db)
        .await
        .unwrap();
    assert_eq!(count, 0);
    let (status, error) = ws
        .upload(&alice, &ops, "..%2Fescape", b"x".to_vec(), "text/plain")
        .await;
    assert_eq!(
        (status, error["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("name"))
    );
    let (status, file) = ws
        .upload(
            &alice,
            &ops,
            "notes.txt",
            b"plain words".to_vec(),
            "text/plain; charset=utf-8",
        )
        .await;
    assert_eq!(
        (status, file["contentType"].clone()),
        (StatusCode::CREATED, json!("text/plain"))
    );
}

#[tokio::test]
async fn readiness_covers_the_object_store() {
    let ws = Workspace::new().await;
    let (status, body) = ws.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"database": "ok", "objectStorage": "ok"}));
    let broken = Workspace::with_config(|yaml| {
        let bucket = yaml
            .lines()
            .find_map(|l| l.trim().strip_prefix("bucket: "))
            .unwrap()
            .to_string();
        yaml.replace(&format!("bucket: {bucket}"), "bucket: no-such-bucket-here")
    })
    .await;
    let (status, body) = broken.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["database"], "ok");
}
