//! Federation benchmark: two workspace servers in one process, each on its
//! own database of the harness's PostgreSQL (run as deployed: `fsync` and
//! `synchronous_commit` on), syncing a shared channel over mutual TLS on
//! loopback. Prints its figures; asserts no timings.
//!
//! - **Live**: posters on A post as fast as the server takes them, with the
//!   link up; events per second until B has applied every one.
//! - **Catch-up**: with the link cut, a backlog is queued on A through the
//!   server's own outbox path; then the link heals, and the time until B
//!   has applied all of it (and A's queue is empty) is measured.
//!
//!   cargo bench -p entente-runtime --bench federation -- [--live N] [--posters P] [--backlog N]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::federation::{join_shared, pair, post, Pair};
use entente_runtime::server::federation::{self, proto};
use serde_json::json;

/// Posts in `channel` on B that came from A.
async fn arrived(pair: &Pair, channel: &str) -> i64 {
    sqlx::query_as::<_, (i64,)>(
        "SELECT count(*) FROM posts WHERE channel_id = $1 AND origin = 'ws-a'",
    )
    .bind(channel)
    .fetch_one(&pair.b.state.db)
    .await
    .unwrap()
    .0
}

/// The last sequence number A has queued for B (0 if none is queued).
async fn queued_up_to(pair: &Pair) -> i64 {
    sqlx::query_as::<_, (Option<i64>,)>(
        "SELECT max(seq) FROM federation_outbox WHERE partner = 'ws-b'",
    )
    .fetch_one(&pair.a.state.db)
    .await
    .unwrap()
    .0
    .unwrap_or(0)
}

/// Waits until B has applied A's events up to `seq`; returns when. Polls
/// B's high-water mark (one row), not the posts, so that watching costs
/// PostgreSQL nothing next to what is measured.
async fn until_applied(pair: &Pair, seq: i64) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let applied = sqlx::query_as::<_, (i64,)>(
            "SELECT applied_seq FROM federation_peers WHERE partner = 'ws-a'",
        )
        .fetch_optional(&pair.b.state.db)
        .await
        .unwrap()
        .map_or(0, |row| row.0);
        if applied >= seq {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "B never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until B holds `count` posts from A in `channel`.
async fn until_arrived(pair: &Pair, channel: &str, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    while arrived(pair, channel).await < count {
        assert!(Instant::now() < deadline, "B never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Queues `count` posts by `user` in `channel` on A, written and published
/// in transactions of 1,000 as the server writes them.
async fn backlog(pair: &Pair, channel: &str, user: &str, count: u64) {
    let config = pair.a.state.config();
    let mut made = 0;
    while made < count {
        let mut tx = pair.a.state.db.begin().await.unwrap();
        for _ in 0..1000.min(count - made) {
            let id = ulid::Ulid::new().to_string();
            let message = format!("backlog {made}");
            let (at,): (chrono::DateTime<chrono::Utc>,) = sqlx::query_as(
                "INSERT INTO posts (id, channel_id, user_id, message) VALUES ($1, $2, $3, $4)
                 RETURNING created_at",
            )
            .bind(&id)
            .bind(channel)
            .bind(user)
            .bind(&message)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            let op = proto::event::Op::PostCreated(proto::PostCreated {
                post_id: id,
                root_id: String::new(),
                message,
                files: Vec::new(),
            });
            federation::publish(&mut tx, &config, channel, user, at, op)
                .await
                .unwrap();
            made += 1;
        }
        tx.commit().await.unwrap();
    }
}

fn main() {
    // Figures as deployed: the harness's PostgreSQL with fsync on.
    std::env::set_var("ENTENTE_PG_DURABLE", "1");
    let live = common::bench_option("--live", 5_000) as i64;
    let posters = common::bench_option("--posters", 8) as i64;
    let queued = common::bench_option("--backlog", 100_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let pair = std::sync::Arc::new(pair("bench").await);
            let (alice_id, alice) = pair.a.user("alice", "member").await;
            let (_, bob) = pair.b.user("bob", "member").await;
            let a_joint = join_shared(&pair.a, &alice, "joint").await;
            let b_joint = join_shared(&pair.b, &bob, "joint-ops").await;
            post(&pair.a, &alice, &a_joint, json!({"message": "warm-up"})).await;
            until_arrived(&pair, &b_joint, 1).await;

            // Live.
            let started = Instant::now();
            let mut tasks = Vec::new();
            for p in 0..posters {
                let (pair, alice, a_joint) = (pair.clone(), alice.clone(), a_joint.clone());
                tasks.push(tokio::spawn(async move {
                    for i in 0..live / posters {
                        let message = json!({"message": format!("live {p} {i}")});
                        post(&pair.a, &alice, &a_joint, message).await;
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let posted = started.elapsed();
            let sent = (live / posters) * posters;
            let done = until_applied(&pair, queued_up_to(&pair).await).await - started;
            assert_eq!(arrived(&pair, &b_joint).await, 1 + sent, "every post arrived once");
            println!(
                "live: {sent} posts on A in {:.1} s ({:.0}/s posted); all applied on B after {:.1} s: {:.0} events/s end to end",
                posted.as_secs_f64(),
                sent as f64 / posted.as_secs_f64(),
                done.as_secs_f64(),
                sent as f64 / done.as_secs_f64()
            );

            // Catch-up after a partition.
            pair.links.0.set(false);
            pair.links.1.set(false);
            let queueing = Instant::now();
            backlog(&pair, &a_joint, &alice_id, queued).await;
            println!(
                "backlog: {queued} events queued on A in {:.1} s while the link was cut",
                queueing.elapsed().as_secs_f64()
            );
            let figures = federation::figures(&pair.a.state).await.unwrap();
            println!(
                "queue before healing: {} events, {} bytes",
                figures[0].queued_events, figures[0].queued_bytes
            );
            let pg = entente_e2e::Postgres::shared();
            pg.reset_statements().unwrap();
            let last = queued_up_to(&pair).await;
            let healed = Instant::now();
            pair.links.0.set(true);
            pair.links.1.set(true);
            let caught_up = until_applied(&pair, last).await - healed;
            assert_eq!(arrived(&pair, &b_joint).await, 1 + sent + queued as i64, "every post arrived once");
            println!(
                "catch-up: {queued} events applied on B {:.1} s after the link healed: {:.0} events/s (includes noticing the cut link and reconnecting)",
                caught_up.as_secs_f64(),
                queued as f64 / caught_up.as_secs_f64()
            );
            let drained = Instant::now() + Duration::from_secs(60);
            while federation::figures(&pair.a.state).await.unwrap()[0].queued_events > 0 {
                assert!(Instant::now() < drained, "A's queue never drained");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            println!(
                "A's queue empty {:.1} s after healing",
                healed.elapsed().as_secs_f64()
            );
            common::print_statements(pg, "event caught up (A and B)", queued);
        });
}
