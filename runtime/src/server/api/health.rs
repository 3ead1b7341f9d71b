//! Health: `/healthz`, `/readyz`; and `/metrics`, which is served on its
//! own listener ([`crate::server::serve_metrics`]), not with the API.

use std::time::Duration;

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};

use crate::server::{db, state::AppState};

/// Alive (the process answers); says nothing of its dependencies.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Whether the database and the object store answer (each `Ok` or what is wrong).
pub async fn readiness(state: &AppState) -> (Result<(), String>, Result<(), String>) {
    let limit = Duration::from_secs(2);
    let (database, objects) = tokio::join!(
        tokio::time::timeout(limit, db::ping(&state.db)),
        tokio::time::timeout(limit, state.store.check()),
    );
    fn outcome<T, E: std::fmt::Display>(
        answer: Result<Result<T, E>, tokio::time::error::Elapsed>,
    ) -> Result<(), String> {
        match answer {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 2s".to_string()),
        }
    }
    let (database, objects) = (outcome(database), outcome(objects));
    (database, objects)
}

/// Ready when the database and the object store both answer.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "ready", body = Object), (status = 503, description = "a dependency does not answer; the body names it", body = Object)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let (database, objects) = readiness(&state).await;
    let status = if database.is_ok() && objects.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let show = |r: Result<(), String>| r.err().unwrap_or_else(|| "ok".into());
    (
        status,
        Json(serde_json::json!({"database": show(database), "objectStorage": show(objects)})),
    )
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    // The durable queues' lengths, as they are now (one query; a database
    // that cannot answer leaves the last figures).
    if let Ok(row) = sqlx::query!(
        "SELECT (SELECT count(*) FROM translation_jobs) AS \"translation!\",
                (SELECT count(*) FROM agent_requests WHERE state IN ('queued', 'answering')) AS \"agent!\""
    )
    .fetch_one(&state.db)
    .await
    {
        for (queue, length) in [("translation", row.translation), ("agent", row.agent)] {
            state
                .metrics
                .queued
                .get_or_create(&crate::server::ops::QueueLabels {
                    queue: queue.into(),
                })
                .set(length);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
