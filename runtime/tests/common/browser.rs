//! Browser scenarios: `web/tests/*.mjs`, run by Node.js with playwright-core
//! driving Debian's Chromium.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// The web client's directory (its scenarios are in `tests/`).
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web")
}

fn artefacts(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("web-artefacts")
        .join(scenario.trim_end_matches(".mjs"))
}

/// Runs `web/tests/<script>` with `env` from async code; fails with what it
/// printed unless it passes within three minutes.
pub async fn scenario(script: &str, env: Vec<(&'static str, String)>) {
    let script = script.to_string();
    tokio::task::spawn_blocking(move || scenario_blocking(&script, env))
        .await
        .unwrap();
}

/// The same, from a test that is not async.
pub fn scenario_blocking(script: &str, env: Vec<(&'static str, String)>) {
    let mut child = Command::new(std::env::var("ENTENTE_NODE").unwrap_or("node".into()))
        .arg(web_dir().join("tests").join(script))
        .env("ENTENTE_ARTEFACTS", artefacts(script))
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (scripts/setup installs it)");
    // Drained as it comes, so a talkative scenario cannot fill a pipe and stall.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    println!("{stdout}");
    eprintln!("{stderr}");
    match status {
        Some(status) => assert!(status.success(), "the browser scenario failed: {stderr}"),
        None => panic!("the browser scenario did not finish in 3 minutes:\n{stdout}\n{stderr}"),
    }
}
