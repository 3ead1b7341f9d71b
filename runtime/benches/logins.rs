//! Sign-in flood benchmark: one `entente-server` process, many concurrent
//! wrong-password sign-ins (unknown users, from 250 loopback addresses so the
//! per-address throttle lets most of them be checked), and one bystander
//! reading `/users/me` meanwhile. Prints the server's memory before, at its
//! peak and after, what the sign-ins were answered, and the bystander's
//! latency. Asserts no timings.
//!
//!   cargo bench -p entente-runtime --bench logins -- [--concurrency N] [--seconds S]

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpSocket,
};

/// Resident memory now and at its peak, in MiB.
fn memory(pid: u32) -> (u64, u64) {
    let (peak, now, _) = common::process_stats(pid);
    (now / 1024, peak / 1024)
}

/// One request on a fresh connection from `from`; the status.
async fn request(from: Ipv4Addr, port: u16, text: String) -> u16 {
    let Ok(socket) = TcpSocket::new_v4() else {
        return 0;
    };
    if socket.bind(SocketAddr::from((from, 0))).is_err() {
        return 0;
    }
    let Ok(mut stream) = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
    else {
        return 0;
    };
    if stream.write_all(text.as_bytes()).await.is_err() {
        return 0;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn main() {
    // Figures as deployed: the harness's PostgreSQL with fsync on.
    std::env::set_var("ENTENTE_PG_DURABLE", "1");
    let concurrency = common::bench_option("--concurrency", 64) as usize;
    let seconds = common::bench_option("--seconds", 10);
    let pg = entente_e2e::Postgres::shared();
    let url = pg.create_database("logins").unwrap();
    let port = entente_e2e::free_port();
    let dir = std::env::temp_dir().join(format!("entente-logins-{}", std::process::id()));
    let config = common::write_config(&dir, &url, port);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("requestsPerMinute: 100000", "requestsPerMinute: 100000000");
    std::fs::write(&config, text).unwrap();
    common::create_bucket_blocking(&config);
    let mut server = common::start_server(&config, port);
    let pid = server.id();
    let bystander = common::admin_token(port);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (before, _) = memory(pid);
    let answers: Arc<Mutex<BTreeMap<u16, u64>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let peak = Arc::new(AtomicU64::new(before));
    runtime.block_on(async {
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for worker in 0..concurrency {
            let answers = answers.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end {
                    n += 1;
                    let address = Ipv4Addr::new(127, 0, 1, 1 + ((worker as u64 + n) % 250) as u8);
                    let body = format!(
                        r#"{{"username":"flood{worker}x{n}","password":"not the password"}}"#
                    );
                    let text = format!(
                        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let status = request(address, port, text).await;
                    *answers.lock().unwrap().entry(status).or_default() += 1;
                }
            }));
        }
        let (latencies2, peak2) = (latencies.clone(), peak.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let started = Instant::now();
                let text = format!(
                    "GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bystander}\r\nConnection: close\r\n\r\n"
                );
                let status = request(Ipv4Addr::LOCALHOST, port, text).await;
                if status == 200 {
                    latencies2
                        .lock()
                        .unwrap()
                        .push(started.elapsed().as_micros() as u64);
                }
                peak2.fetch_max(memory(pid).0, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
        for task in tasks {
            task.await.unwrap();
        }
    });
    let (_, high_water) = memory(pid);
    std::thread::sleep(Duration::from_secs(5));
    let (after, _) = memory(pid);
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort_unstable();
    let at = |p: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * p) as usize)
            .map_or(f64::NAN, |us| *us as f64 / 1000.0)
    };
    let answers = answers.lock().unwrap();
    let total: u64 = answers.values().sum();
    println!(
        "sign-in flood ({concurrency} at once for {seconds} s, wrong passwords, unknown users, 250 addresses; this machine: {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "  sign-ins answered:   {total} ({:.0}/s): {}",
        total as f64 / seconds as f64,
        answers
            .iter()
            .map(|(status, n)| format!("{status}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  server memory:       {before} MiB before, peak {} MiB (high-water mark {high_water} MiB), {after} MiB 5 s after",
        peak.load(Ordering::Relaxed)
    );
    println!(
        "  a bystander's GET /users/me meanwhile: p50 {:.1} ms, p99 {:.1} ms ({} requests)",
        at(0.5),
        at(0.99),
        latencies.len()
    );
    entente_process::stop(&mut server, libc::SIGTERM, Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&dir);
}
