//! Agent benchmark: one `entente-server` process whose model is llama.cpp's
//! server (PyPI xllamacpp) serving SmolLM2-135M, reached through a timing
//! proxy. C people each mention the agent in a channel of their own, R
//! rounds, all at once; each waits on its WebSocket for the answer's first
//! streamed piece and for the answer itself. Prints, per request, the
//! latency a person sees (to the first piece, to the whole answer), the
//! model's own time (at the proxy), the server's overhead (the rest), and
//! the server's CPU per request. Asserts no timings.
//!
//!   cargo bench -p entente-runtime --bench agents -- [--concurrency C] [--rounds R] [--slots S]
//!
//! `--slots` is the server's `maxConcurrentRequests` (4 unless given): the
//! model server itself answers two at a time.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// One HTTP request, off the async threads.
async fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (method, path, token) = (
        method.to_string(),
        path.to_string(),
        token.map(String::from),
    );
    tokio::task::spawn_blocking(move || {
        common::http(port, &method, &path, token.as_deref(), body).unwrap()
    })
    .await
    .unwrap()
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn line(name: &str, mut values: Vec<f64>) {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    println!(
        "{name:<34} p50 {:>8.1} ms   p95 {:>8.1} ms   mean {:>8.1} ms",
        percentile(&mut values, 0.5),
        percentile(&mut values, 0.95),
        mean
    );
}

/// (to the first streamed piece, to the answer) for one question, in ms.
async fn ask(port: u16, token: &str, channel: &str, agent: &str, round: u64) -> (f64, f64) {
    let (mut socket, _) = common::connect(port, token, None).await;
    let sent = Instant::now();
    let (status, _) = http(
        port,
        "POST",
        &format!("/api/v1/channels/{channel}/posts"),
        Some(token),
        Some(json!({"message": format!("@assistant round {round}: summarise what the team said about fuel.")})),
    )
    .await;
    assert_eq!(status, 201);
    let mut first = None;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(300), socket.next())
            .await
            .expect("an answer within 300 s")
            .unwrap()
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).unwrap();
        if event["data"]["userId"] != agent {
            continue;
        }
        let at = sent.elapsed().as_secs_f64() * 1000.0;
        match event["type"].as_str() {
            Some("streaming") => {
                first.get_or_insert(at);
            }
            Some("posted") => return (first.unwrap_or(at), at),
            _ => {}
        }
    }
}

fn main() {
    std::env::set_var("ENTENTE_PG_DURABLE", "1");
    let concurrency = common::bench_option("--concurrency", 4) as usize;
    let rounds = common::bench_option("--rounds", 5);
    let slots = common::bench_option("--slots", 4);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let proxy = runtime.block_on(common::model::Proxy::start());
    let pg = entente_e2e::Postgres::shared();
    let url = pg.create_database("agents").unwrap();
    let port = entente_e2e::free_port();
    let dir = std::env::temp_dir().join(format!("entente-agents-{}", std::process::id()));
    let config = common::write_config(&dir, &url, port);
    let section = common::model::ai_section(&proxy, &dir).replace(
        "maxConcurrentRequests: 2",
        &format!("maxConcurrentRequests: {slots}"),
    );
    let text = std::fs::read_to_string(&config).unwrap() + &section;
    std::fs::write(&config, text).unwrap();
    common::create_bucket_blocking(&config);
    let mut server = common::start_server(&config, port);
    let pid = server.id();
    let admin = common::admin_token(port);
    let (people, agent) = runtime.block_on(async {
        let mut people = Vec::new();
        for i in 0..concurrency {
            let name = format!("person{i}");
            let password = format!("{name}-password-long");
            let (status, body) = http(
                port,
                "POST",
                "/api/v1/users",
                Some(&admin),
                Some(json!({"username": name, "password": password, "role": "member"})),
            )
            .await;
            assert_eq!(status, 201, "{body}");
            let (_, login) = http(
                port,
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"username": name, "password": password})),
            )
            .await;
            let token = login["token"].as_str().unwrap().to_string();
            let (status, channel) = http(
                port,
                "POST",
                "/api/v1/channels",
                Some(&token),
                Some(json!({"name": format!("ops-{i}"), "kind": "public"})),
            )
            .await;
            assert_eq!(status, 201, "{channel}");
            let channel = channel["id"].as_str().unwrap().to_string();
            for line in [
                "Depot 3 is short of diesel until Thursday.",
                "The convoy can refuel at the forward base instead.",
                "Logistics will confirm the tanker by noon.",
            ] {
                http(
                    port,
                    "POST",
                    &format!("/api/v1/channels/{channel}/posts"),
                    Some(&token),
                    Some(json!({"message": line})),
                )
                .await;
            }
            people.push((token, channel));
        }
        let (_, agents) = http(port, "GET", "/api/v1/ai/agents", Some(&people[0].0), None).await;
        let agent = agents[0]["userId"].as_str().unwrap().to_string();
        (people, agent)
    });
    let cpu_before = common::tree_cpu_ticks(pid);
    let started = Instant::now();
    let results: Vec<(f64, f64)> = runtime.block_on(async {
        let mut all = Vec::new();
        for round in 0..rounds {
            let tasks: Vec<_> = people
                .iter()
                .map(|(token, channel)| {
                    let (token, channel, agent) = (token.clone(), channel.clone(), agent.clone());
                    tokio::spawn(async move { ask(port, &token, &channel, &agent, round).await })
                })
                .collect();
            for task in tasks {
                all.push(task.await.unwrap());
            }
        }
        all
    });
    let wall = started.elapsed();
    let cpu_ticks = common::tree_cpu_ticks(pid) - cpu_before;
    let requests = results.len();
    let seen: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/chat/completions"))
        .collect();
    let model_ms: Vec<f64> = seen
        .iter()
        .filter_map(|s| s.finished.map(|d| d.as_secs_f64() * 1000.0))
        .collect();
    let model_first: Vec<f64> = seen
        .iter()
        .filter_map(|s| s.first_byte.map(|d| d.as_secs_f64() * 1000.0))
        .collect();
    let mean_model = model_ms.iter().sum::<f64>() / model_ms.len().max(1) as f64;
    println!(
        "{requests} questions ({concurrency} at once, {rounds} rounds, {slots} slots) in {:.1} s: {:.2} answers/s; the model was asked {} times",
        wall.as_secs_f64(),
        requests as f64 / wall.as_secs_f64(),
        seen.len()
    );
    line(
        "asker: to the first streamed piece",
        results.iter().map(|r| r.0).collect(),
    );
    line(
        "asker: to the whole answer",
        results.iter().map(|r| r.1).collect(),
    );
    line("model: to its first bytes", model_first);
    line("model: to its last bytes", model_ms.clone());
    let mean_answer = results.iter().map(|r| r.1).sum::<f64>() / requests.max(1) as f64;
    println!(
        "server overhead per request (mean answer - mean model time): {:.1} ms; server CPU per request: {:.1} ms",
        mean_answer - mean_model,
        cpu_ticks as f64 * 10.0 / requests.max(1) as f64
    );
    let _ = server.kill();
    let _ = server.wait();
}
