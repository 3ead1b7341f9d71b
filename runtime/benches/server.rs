//! Load benchmark of one `entente-server` process on a PostgreSQL of its own
//! run as deployed (`fsync` and `synchronous_commit` on): P senders posting
//! closed-loop over keep-alive HTTP into one channel, N receivers on the
//! WebSocket. Prints posts per second, send and delivery p50/p99, CPU per
//! post of the server and of PostgreSQL, the server's peak RSS, and whether
//! every receiver got every post once and in order. Asserts no timings.
//!
//!   cargo bench -p entente-runtime --bench server -- [--clients N] [--seconds S] [--posters P] [--rate R]
//!
//! Closed loop by default: each poster posts again as soon as its post is
//! acknowledged, which measures the most the server takes (and latencies
//! at saturation). `--rate R` offers R posts per second instead, spread
//! over the posters on a fixed schedule; latencies are then counted from
//! when each post was due, so a server that falls behind is not excused
//! by posting later.
//!
//! The workload: `--clients 20 --posters 20`; many receivers:
//! `--clients 1000 --posters 20`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

struct Options {
    clients: usize,
    seconds: u64,
    posters: usize,
    /// Posts per second offered by all posters together (0: each posts
    /// again as soon as its last post is acknowledged).
    rate: u64,
}

fn options() -> Options {
    Options {
        clients: common::bench_option("--clients", 1000) as usize,
        seconds: common::bench_option("--seconds", 15),
        posters: common::bench_option("--posters", 8) as usize,
        rate: common::bench_option("--rate", 0),
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn main() {
    let options = options();
    let pg = entente_e2e::Postgres::start_durable().unwrap();
    let url = pg.create_database("bench").unwrap();
    let port = entente_e2e::free_port();
    let dir = std::env::temp_dir().join(format!("entente-bench-{}", std::process::id()));
    let config = common::write_config(&dir, &url, port);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "requestsPerMinute: 100000}",
            "requestsPerMinute: 100000000, connections: {perAddress: 100000}}",
        )
        .replace("poolSize: 10", "poolSize: 30");
    std::fs::write(&config, text).unwrap();
    common::create_bucket_blocking(&config);
    let mut server = common::start_server(&config, port);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Users, tokens and memberships straight into the database: the
        // benchmark measures posting and delivery, not password hashing.
        let db = sqlx::PgPool::connect(&url).await.unwrap();
        let admin = common::admin_token(port);
        let channel = common::public_channel(port, &admin, "bench");
        let users = options.clients + options.posters;
        let mut tokens = Vec::with_capacity(users);
        for i in 0..users {
            let id = ulid::Ulid::new().to_string();
            let token = format!("bench-token-{i}-{id}");
            sqlx::query("INSERT INTO users (id, username, role) VALUES ($1, $2, 'member')").bind(&id).bind(format!("bench{i}")).execute(&db).await.unwrap();
            sqlx::query("INSERT INTO tokens (id, token_hash, user_id, kind) VALUES ($1, $2, $3, 'personal')")
                .bind(ulid::Ulid::new().to_string())
                .bind(Sha256::digest(token.as_bytes()).to_vec())
                .bind(&id)
                .execute(&db)
                .await
                .unwrap();
            sqlx::query("INSERT INTO channel_members (channel_id, user_id) VALUES ($1, $2)").bind(&channel).bind(&id).execute(&db).await.unwrap();
            tokens.push(token);
        }

        // Connect the clients.
        let epoch = Instant::now();
        let latencies: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
        let delivered = Arc::new(AtomicU64::new(0));
        let out_of_order = Arc::new(AtomicU64::new(0));
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let mut readers = Vec::new();
        for token in tokens.iter().take(options.clients) {
            let mut request = format!("ws://127.0.0.1:{port}/api/v1/ws").into_client_request().unwrap();
            request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
            let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("a client connects");
            // The stream starts at `hello`: what was posted before it is not sent.
            let hello = common::next(&mut socket).await;
            assert_eq!(hello["type"], "hello", "{hello}");
            let (latencies, delivered, out_of_order, mut stop) = (latencies.clone(), delivered.clone(), out_of_order.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut last_seq = 0i64;
                loop {
                    tokio::select! {
                        message = socket.next() => match message {
                            Some(Ok(Message::Text(text))) => {
                                if let Some(sent) = text.split("bench@").nth(1).and_then(|r| r.split('"').next()).and_then(|n| n.parse::<u64>().ok()) {
                                    mine.push(epoch.elapsed().as_micros() as u64 - sent);
                                    delivered.fetch_add(1, Ordering::Relaxed);
                                    // Each event once, in the stream's order.
                                    let seq = text.split("\"seq\":").nth(1).and_then(|r| r.split([',', '}']).next()).and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
                                    if seq <= last_seq {
                                        out_of_order.fetch_add(1, Ordering::Relaxed);
                                    }
                                    last_seq = seq;
                                }
                            }
                            Some(Ok(_)) => {}
                            _ => break,
                        },
                        _ = stop.changed() => break,
                    }
                }
                latencies.lock().unwrap().extend(mine);
            }));
        }
        let (rss_before, _, cpu_before) = common::process_stats(server.id());
        let pg_cpu_before = common::tree_cpu_ticks(pg.pid());
        pg.reset_statements().unwrap();

        // Post for the configured time.
        let posted = Arc::new(AtomicU64::new(0));
        let ack_latencies: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let run_for = Duration::from_secs(options.seconds);
        let mut posters = Vec::new();
        for token in tokens.into_iter().skip(options.clients) {
            let (channel, posted, acks) = (channel.clone(), posted.clone(), ack_latencies.clone());
            let interval = (options.rate > 0).then(|| Duration::from_secs_f64(options.posters as f64 / options.rate as f64));
            let offset = interval.map(|i| i.mul_f64(posters.len() as f64 / options.posters as f64)).unwrap_or_default();
            posters.push(tokio::spawn(async move {
                let mut connection = common::Poster::connect(port).await;
                let mut mine = Vec::new();
                let mut due = started + offset;
                while started.elapsed() < run_for {
                    let sent = match interval {
                        Some(interval) => {
                            tokio::time::sleep_until(due.into()).await;
                            let at = (due - epoch).as_micros() as u64;
                            due += interval;
                            at
                        }
                        None => epoch.elapsed().as_micros() as u64,
                    };
                    let body = format!("{{\"message\":\"bench@{sent}\"}}");
                    let (status, _) = connection.post(&format!("/api/v1/channels/{channel}/posts"), &token, &body).await;
                    assert_eq!(status, 201, "a post was refused");
                    mine.push(epoch.elapsed().as_micros() as u64 - sent);
                    posted.fetch_add(1, Ordering::Relaxed);
                }
                acks.lock().unwrap().extend(mine);
            }));
        }
        for poster in posters {
            poster.await.unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let posts = posted.load(Ordering::Relaxed);
        // Let the last deliveries arrive.
        let expected = posts * options.clients as u64;
        let drain = Instant::now();
        while delivered.load(Ordering::Relaxed) < expected && drain.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let drained = drain.elapsed();
        let (peak_kb, rss_kb, cpu_after) = common::process_stats(server.id());
        let pg_cpu_after = common::tree_cpu_ticks(pg.pid());
        let _ = stop_tx.send(true);
        for reader in readers {
            let _ = reader.await;
        }
        let mut latencies = latencies.lock().unwrap().clone();
        latencies.sort_unstable();
        let mut acks = ack_latencies.lock().unwrap().clone();
        acks.sort_unstable();
        let ticks_per_second = 100.0; // USER_HZ on Linux
        let server_cpu = (cpu_after - cpu_before) as f64 / ticks_per_second / elapsed;
        let per_post = |ticks: u64| ticks as f64 / ticks_per_second * 1000.0 / posts.max(1) as f64;

        let offered = if options.rate > 0 { format!("{} posts/s offered", options.rate) } else { "closed loop".to_string() };
        println!("entente-server benchmark ({} clients, {} posters, {offered}, {:.1}s, this machine: {} cores)", options.clients, options.posters, elapsed, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
        println!("  posts accepted:           {posts} ({:.0} posts/s sustained)", posts as f64 / elapsed);
        println!("  post acknowledged in:     p50 {:.1} ms, p99 {:.1} ms", percentile(&acks, 0.50), percentile(&acks, 0.99));
        println!("  deliveries:               {} of {} expected ({:.0}/s; the last {:.1} s after the last post)", latencies.len(), expected, latencies.len() as f64 / elapsed, drained.as_secs_f64());
        println!("  post → WebSocket latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", percentile(&latencies, 0.50), percentile(&latencies, 0.99), percentile(&latencies, 1.0));
        println!("  in order, once each:      {} deliveries out of order or repeated", out_of_order.load(Ordering::Relaxed));
        println!("  server CPU:               {:.2} cores on average, {:.2} ms per post", server_cpu, per_post(cpu_after - cpu_before));
        println!("  PostgreSQL CPU:           {:.2} ms per post (fsync and synchronous_commit on)", per_post(pg_cpu_after - pg_cpu_before));
        println!("  server memory:            peak RSS {} MiB (before posting {} MiB, now {} MiB)", peak_kb / 1024, rss_before / 1024, rss_kb / 1024);
        common::print_statements(&pg, "post", posts);
    });
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(dir);
}
