//! Translation benchmark: one `entente-server` process translating through
//! Apertium's service (Debian's apertium-apy, English→Spanish). P posters
//! post closed-loop over keep-alive connections into one channel, S
//! seconds with translation off and S with it on, alternating in ABBA
//! order (`--rounds R`: R × off, on, on, off), with one reader of Spanish;
//! then it waits until every post is translated. W seconds of posting
//! first (translation off) are not counted. Prints posting
//! throughput both ways and per segment, translations per second, and the
//! delay from a post's acknowledgement to its `translated` event. Asserts
//! no timings.
//!
//!   cargo bench -p entente-runtime --bench translation -- [--posters P] [--seconds S] [--rounds R] [--warmup W] [--rate N] [--same-language 1] [--control 1]
//!
//! `--rate N` offers N posts per second in all instead of posting
//! closed-loop: below what the provider translates per second, the delay
//! to a translation is the provider's and the worker's, not a queue's.
//!
//! `--control 1` leaves translation off throughout (the two figures then
//! differ only by noise). `--same-language 1` makes the reader read
//! English too: translation is on, every post is checked for readers who
//! want it, none is translated — the cost translation adds to the write
//! itself, apart from the provider working on the same machine.

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[((values.len() - 1) as f64 * p).round() as usize]
}

/// Posts over `posters` keep-alive connections for `seconds`, closed-loop
/// or, with `rate` > 0, that many posts per second in all; each post's id
/// and when it was acknowledged.
async fn post_for(
    port: u16,
    token: &str,
    channel: &str,
    posters: usize,
    seconds: f64,
    rate: u64,
) -> Vec<(String, Instant)> {
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let every = (rate > 0).then(|| Duration::from_secs_f64(posters as f64 / rate as f64));
    let tasks: Vec<_> = (0..posters)
        .map(|p| {
            let (token, channel) = (token.to_string(), channel.to_string());
            tokio::spawn(async move {
                let mut connection = common::Poster::connect(port).await;
                let path = format!("/api/v1/channels/{channel}/posts");
                let mut acked = Vec::new();
                let mut n = 0;
                let mut next = Instant::now();
                while Instant::now() < end {
                    if let Some(every) = every {
                        tokio::time::sleep_until(next.into()).await;
                        next += every;
                    }
                    n += 1;
                    let body = json!({"message": format!("The convoy {p}-{n} leaves at dawn from the north gate.")}).to_string();
                    let (status, post) = connection.post(&path, &token, &body).await;
                    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&post));
                    let post: Value = serde_json::from_slice(&post).unwrap();
                    acked.push((post["id"].as_str().unwrap().to_string(), Instant::now()));
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    acked
}

fn main() {
    std::env::set_var("ENTENTE_PG_DURABLE", "1");
    let posters = common::bench_option("--posters", 8) as usize;
    let seconds = common::bench_option("--seconds", 10);
    let reads = if common::bench_option("--same-language", 0) == 1 {
        "en"
    } else {
        "es"
    };
    let apertium = entente_e2e::ApertiumServer::shared();
    let pg = entente_e2e::Postgres::shared();
    let url = pg.create_database("translation").unwrap();
    let port = entente_e2e::free_port();
    let dir = std::env::temp_dir().join(format!("entente-translation-{}", std::process::id()));
    let config = common::write_config(&dir, &url, port);
    let text = std::fs::read_to_string(&config).unwrap().replace("requestsPerMinute: 100000", "requestsPerMinute: 100000000")
        + &format!(
            "\ntranslation:\n  provider: {{apertium: {{url: \"{}\"}}}}\n  languages: [en, es]\n  defaultLanguage: en\n  concurrency: 4\n",
            apertium.endpoint()
        );
    std::fs::write(&config, text).unwrap();
    common::create_bucket_blocking(&config);
    let mut server = common::start_server(&config, port);
    let admin = common::admin_token(port);
    let bob = common::member_token(port, &admin, "bob");
    common::http(
        port,
        "PUT",
        "/api/v1/users/me/language",
        Some(&bob),
        Some(json!({"language": reads})),
    )
    .unwrap();
    let channel = common::public_channel(port, &admin, "ops");
    common::http(
        port,
        "POST",
        &format!("/api/v1/channels/{channel}/join"),
        Some(&bob),
        Some(json!({})),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // Bob's socket notes when each translation arrives.
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let (mut socket, _) = runtime.block_on(common::connect(port, &bob, None));
    let noted = arrived.clone();
    runtime.spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let event: Value = serde_json::from_str(&text).unwrap();
            if event["type"] == "translated" && event["data"]["language"] == "es" {
                noted.lock().unwrap().insert(
                    event["data"]["postId"].as_str().unwrap().to_string(),
                    Instant::now(),
                );
            }
        }
    });
    // Off and on alternate in ABBA order (off, on, on, off, …), `rounds`
    // times, each a quarter of the time: drift over the run — a growing
    // table, checkpoints — falls equally on both.
    let control = common::bench_option("--control", 0) == 1;
    let rounds = common::bench_option("--rounds", 2);
    let rate = common::bench_option("--rate", 0);
    let set = |enabled: bool| {
        let (status, _) = common::http(
            port,
            "PUT",
            &format!("/api/v1/channels/{channel}/translation"),
            Some(&admin),
            Some(json!({"enabled": enabled && !control})),
        )
        .unwrap();
        assert_eq!(status, 204);
    };
    let segment = seconds as f64 / (2 * rounds) as f64;
    // Posting is fastest into an empty table: a warm-up, not counted,
    // takes the steepest of the drift out of the comparison.
    let warmup = common::bench_option("--warmup", 10) as f64;
    set(false);
    runtime.block_on(post_for(port, &admin, &channel, posters, warmup, 0));
    let started = Instant::now();
    let mut off = Vec::new();
    let mut on = Vec::new();
    let mut rates: Vec<(bool, f64)> = Vec::new();
    for enabled in (0..rounds).flat_map(|_| [false, true, true, false]) {
        set(enabled);
        let posted = runtime.block_on(post_for(port, &admin, &channel, posters, segment, rate));
        rates.push((enabled, posted.len() as f64 / segment));
        if enabled {
            on.extend(posted);
        } else {
            off.extend(posted);
        }
    }
    // Nothing will come when translation stayed off or the reader reads
    // English.
    let expected = reads == "es" && !control;
    let deadline = Instant::now() + Duration::from_secs(if expected { 600 } else { 0 });
    while arrived.lock().unwrap().len() < on.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let arrived = arrived.lock().unwrap().clone();
    let first = arrived.values().min().copied().unwrap_or(started);
    let last = arrived.values().max().copied().unwrap_or(started);
    let mut delays: Vec<f64> = on
        .iter()
        .filter_map(|(id, acked)| {
            arrived
                .get(id)
                .map(|at| at.duration_since(*acked).as_secs_f64() * 1000.0)
        })
        .collect();
    let rate = |posts: usize| posts as f64 / seconds as f64;
    println!(
        "posting, {posters} keep-alive posters, {seconds} s each way in {} segments: translation off {:.0} posts/s, on {:.0} posts/s ({:+.1}%)",
        rates.len(),
        rate(off.len()),
        rate(on.len()),
        (rate(on.len()) / rate(off.len()) - 1.0) * 100.0
    );
    println!(
        "  segments (posts/s): {}",
        rates
            .iter()
            .map(|(on, rate)| format!("{}{rate:.0}", if *on { "on " } else { "off " }))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "apertium (eng→spa): {} of {} posts translated, {:.1} translations/s",
        arrived.len(),
        on.len(),
        arrived.len() as f64 / last.duration_since(first).as_secs_f64().max(1e-3)
    );
    let mean = delays.iter().sum::<f64>() / delays.len().max(1) as f64;
    println!(
        "delay from a post's acknowledgement to its translation: p50 {:.0} ms, p95 {:.0} ms, mean {:.0} ms",
        percentile(&mut delays, 0.5),
        percentile(&mut delays, 0.95),
        mean
    );
    let _ = server.kill();
    let _ = server.wait();
}
