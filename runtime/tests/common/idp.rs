//! A real OpenID Connect provider for tests: npm's `oidc-provider`
//! (`e2e/node/oidc.mjs`), started on 127.0.0.1 and stopped by its PID when
//! dropped, and a browser-like sign-in through it (`oidc_login.py`).

use std::{
    io::BufRead,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/node")
}

pub const CLIENT_ID: &str = "entente-workspace";
pub const CLIENT_SECRET: &str = "the-client-secret-the-provider-issued";

/// A new RSA signing key, as a JWK with its private parts.
pub fn key(kid: &str) -> Value {
    let out = Command::new("node")
        .arg(node_dir().join("key.mjs"))
        .arg(kid)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub struct Idp {
    child: Option<Child>,
    pub port: u16,
    config: PathBuf,
    settings: Value,
}

impl Idp {
    /// A provider whose client is this workspace (`redirect` its callback),
    /// signing with the first of `keys`, knowing `users` (login → claims).
    pub fn start(dir: &Path, redirect: &str, users: Value, keys: Vec<Value>) -> Idp {
        std::fs::create_dir_all(dir).unwrap();
        let port = entente_e2e::free_port();
        let mut idp = Idp {
            child: None,
            port,
            config: dir.join("idp.json"),
            settings: json!({
                "port": port,
                "clientId": CLIENT_ID,
                "clientSecret": CLIENT_SECRET,
                "redirectUris": [redirect],
                "postLogoutRedirectUris": [format!("{}/", redirect.split("/api/").next().unwrap())],
                "keys": keys,
                "users": users,
            }),
        };
        idp.spawn();
        idp
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An ID token for `login` with `nonce`, fetched as the workspace
    /// would (the redirect not followed; the code exchanged by the test).
    pub fn id_token(&self, login: &str, redirect: &str, nonce: &str) -> String {
        let out = Command::new("python3")
            .arg(node_dir().join("oidc_token.py"))
            .args([
                &self.issuer(),
                login,
                CLIENT_ID,
                CLIENT_SECRET,
                redirect,
                nonce,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Sets one of the provider's settings for its next start.
    pub fn set(&mut self, name: &str, value: Value) {
        self.settings[name] = value;
    }

    /// Stops it and starts it again on the same port with other keys or
    /// users (what it signed before is forgotten, as after a rotation).
    pub fn restart(&mut self, users: Option<Value>, keys: Option<Vec<Value>>) {
        self.stop();
        if let Some(users) = users {
            self.settings["users"] = users;
        }
        if let Some(keys) = keys {
            self.settings["keys"] = json!(keys);
        }
        self.spawn();
    }

    fn spawn(&mut self) {
        std::fs::write(&self.config, self.settings.to_string()).unwrap();
        let mut child = Command::new("node")
            .arg(node_dir().join("oidc.mjs"))
            .arg(&self.config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (scripts/setup installs e2e/node's packages)");
        let stdout = child.stdout.take().unwrap();
        let (ready, said) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.trim() == "ready" {
                    let _ = ready.send(());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        said.recv_timeout(deadline - Instant::now())
            .expect("the identity provider started");
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Signs in as `login` from `start` (a URL that leads to the provider) as a
/// browser would; with `stop`, returns the callback URL unvisited.
pub fn browser_sign_in(start: &str, login: &str, callback: &str, stop: bool) -> Value {
    let mut command = Command::new("python3");
    command
        .arg(node_dir().join("oidc_login.py"))
        .args([start, login, callback]);
    if stop {
        command.arg("--stop");
    }
    let out = command.output().unwrap();
    let value: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(value.get("error").is_none(), "{value}");
    value
}
