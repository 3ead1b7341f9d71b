//! SFU benchmark: one `entente-sfu` process, audio-only rooms of real
//! WebRTC clients (aiortc, `tests/peer.py`), more rooms at each step.
//!
//! For each step it prints the streams forwarded (each publisher's audio to
//! each other participant), the loss seen by the receivers (frames that did
//! not arrive, against 50 per second per stream) and by the SFU (gaps in
//! publishers' sequence numbers), and the SFU's CPU (cores busy) and RSS;
//! then forwarded streams per core at the largest step under 1% loss.
//! The clients run on the same machine: on a small one they, not the SFU,
//! are the limit, which the figures show.
//!
//!   cargo bench -p entente-media --bench sfu -- [--room 4] [--steps 1,2,4] [--seconds 10]

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use entente_crds::join_token::{sign, Claims};

const KEY: &str = "benchmark-join-token-key-0123456789abcdef";

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// CPU seconds (user + system) and resident kilobytes of `pid`.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15; 11 and 12 after the name.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (cpu, rss)
}

fn metric(port: u16, name: &str) -> f64 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("entente_sfu_{name}_total ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn main() {
    let room: usize = arg("--room", "4").parse().unwrap();
    let steps: Vec<usize> = arg("--steps", "1,2,3")
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let seconds: u64 = arg("--seconds", "10").parse().unwrap();
    let dir = std::env::temp_dir().join(format!("entente-sfu-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("key"), KEY).unwrap();
    let (port, udp) = (entente_e2e::free_port(), entente_e2e::free_port());
    std::fs::write(
        dir.join("media.yaml"),
        format!(
            "version: 1\ncluster: bench\njoinTokenKey: {{file: {}}}\nsfu: {{listen: \"127.0.0.1:{port}\", udp: {{mux: {udp}}}, maxParticipantsPerRoom: 100}}\n",
            dir.join("key").display()
        ),
    )
    .unwrap();
    let mut sfu = Command::new(env!("CARGO_BIN_EXE_entente-sfu"))
        .arg("--config")
        .arg(dir.join("media.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !entente_e2e::port_is_open(port) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer.py");
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 3600;
    println!("SFU benchmark: rooms of {room} audio-only participants, {seconds} s per step");
    println!("rooms  participants  streams  receiver loss  SFU loss  SFU cores  SFU RSS");
    let mut best: Option<(usize, f64)> = None;
    for (step, rooms) in steps.iter().enumerate() {
        let peers: Vec<Child> = (0..*rooms)
            .flat_map(|r| (0..room).map(move |p| (r, p)))
            .map(|(r, p)| {
                let call = format!("bench-{step}-{r}");
                let token = sign(
                    KEY.as_bytes(),
                    &Claims {
                        call: call.clone(),
                        user: format!("u{r}-{p}"),
                        name: format!("u{r}-{p}"),
                        expires,
                    },
                );
                Command::new(entente_e2e::python())
                    .arg(&script)
                    .args(["--url", &format!("ws://127.0.0.1:{port}/calls/{call}/ws")])
                    .args(["--token", &token])
                    .args(["--freq", &(300 + 50 * p).to_string()])
                    .args(["--seconds", &(seconds + 4).to_string()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // Measure the middle of the call: everyone connected, nobody leaving.
        std::thread::sleep(Duration::from_secs(3));
        let (cpu0, _) = usage(sfu.id());
        let (received0, lost0) = (
            metric(port, "packets_received"),
            metric(port, "packets_lost"),
        );
        let started = Instant::now();
        std::thread::sleep(Duration::from_secs(seconds - 1));
        let (cpu1, rss) = usage(sfu.id());
        let (received1, lost1) = (
            metric(port, "packets_received"),
            metric(port, "packets_lost"),
        );
        let wall = started.elapsed().as_secs_f64();
        let mut frames = 0u64;
        let mut expected = 0u64;
        for peer in peers {
            let output = peer.wait_with_output().unwrap();
            let report: serde_json::Value = serde_json::from_slice(
                output
                    .stdout
                    .rsplit(|b| *b == b'\n')
                    .find(|l| !l.is_empty())
                    .unwrap_or(b"{}"),
            )
            .unwrap_or_default();
            let tracks = report["tracks"].as_object().cloned().unwrap_or_default();
            for track in tracks.values() {
                // 20 ms frames: 50 a second from the first to the last (plus that one).
                frames += track["frames"].as_u64().unwrap_or(0);
                expected += (track["span"].as_f64().unwrap_or(0.0) * 50.0).round() as u64 + 1;
            }
            // A participant who heard nothing from someone lost all of it.
            let missing = (room - 1).saturating_sub(tracks.len()) as u64;
            expected += missing * 50 * seconds;
        }
        let receiver_loss = 1.0 - (frames as f64 / expected as f64).min(1.0);
        let sfu_loss = (lost1 - lost0) / ((received1 - received0) + (lost1 - lost0)).max(1.0);
        let cores = (cpu1 - cpu0) / wall;
        let streams = rooms * room * (room - 1);
        println!(
            "{rooms:>5}  {:>12}  {streams:>7}  {:>12.2}%  {:>7.2}%  {cores:>9.3}  {:>5} MiB",
            rooms * room,
            receiver_loss * 100.0,
            sfu_loss * 100.0,
            rss / 1024
        );
        if receiver_loss < 0.01 && cores > 0.0 {
            best = Some((streams, cores));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    match best {
        Some((streams, cores)) => println!(
            "forwarded streams per core under 1% loss: {:.0} ({streams} streams on {cores:.3} cores)",
            streams as f64 / cores
        ),
        None => println!("no step stayed under 1% loss"),
    }
    let _ = sfu.kill();
    let _ = sfu.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
