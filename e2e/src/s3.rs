//! A real S3-compatible server: moto, with request signatures checked.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::Duration,
};

use crate::process::{
    fail, free_port, shared, spawn_supervised, stop, wait_for_address, HarnessError, ScratchDir,
    Server,
};

/// Requests moto serves without checking signatures: exactly the bootstrap's IAM calls.
const BOOTSTRAP_REQUESTS: &str = "3";

/// A running moto S3 server (on 127.0.0.1 unless told) that accepts only requests signed with
/// [`access_key_id`](Self::access_key_id)/[`secret_access_key`](Self::secret_access_key).
pub struct S3Server {
    child: Mutex<Child>,
    host: std::net::Ipv4Addr,
    port: u16,
    tls: bool,
    access_key_id: String,
    secret_access_key: String,
    dir: ScratchDir,
}

impl S3Server {
    /// Starts a new server, stopped when the value is dropped.
    pub fn start() -> Result<S3Server, HarnessError> {
        S3Server::start_with("127.0.0.1", None)
    }

    /// A server listening on `host`, an address of this machine (one the
    /// test gave a veth it created, say).
    pub fn start_on(host: &str) -> Result<S3Server, HarnessError> {
        S3Server::start_with(host, None)
    }

    /// Starts a server that speaks HTTPS with `cert_pem`/`key_pem` (PEM
    /// files); `ca_pem` is what a client must trust to reach it.
    pub fn start_tls(
        cert_pem: &Path,
        key_pem: &Path,
        ca_pem: &Path,
    ) -> Result<S3Server, HarnessError> {
        S3Server::start_with("127.0.0.1", Some((cert_pem, key_pem, ca_pem)))
    }

    fn start_with(
        host: &str,
        tls: Option<(&Path, &Path, &Path)>,
    ) -> Result<S3Server, HarnessError> {
        let python = python();
        let host: std::net::Ipv4Addr = host
            .parse()
            .map_err(|e| HarnessError(format!("{host:?} is not an IPv4 address: {e}")))?;
        let host_arg = host.to_string();
        let dir = ScratchDir::new("s3")?;
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("moto.log"))
                .map_err(|e| HarnessError(format!("cannot create the moto log: {e}")))?;
            let mut command = Command::new(&python);
            command
                .args(["-m", "moto.server", "-H", &host_arg, "-p"])
                .arg(port.to_string())
                .env("INITIAL_NO_AUTH_ACTION_COUNT", BOOTSTRAP_REQUESTS)
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| HarnessError(e.to_string()))?)
                .stderr(log);
            if let Some((cert, key, _)) = tls {
                command.arg("-c").arg(cert).arg("-k").arg(key);
            }
            let mut child = spawn_supervised(command).map_err(|e| {
                HarnessError(format!(
                    "cannot run {} -m moto.server: {e}",
                    python.display()
                ))
            })?;
            if let Err(e) = wait_for_address(
                &mut child,
                host,
                port,
                Duration::from_secs(60),
                "moto_server",
            ) {
                stop(&mut child, libc::SIGTERM, Duration::from_secs(5));
                let log = std::fs::read_to_string(dir.path().join("moto.log")).unwrap_or_default();
                let hint = if log.contains("No module named moto") {
                    "\nmoto is not installed: `pip install 'moto[server]'` (scripts/setup does)"
                } else {
                    ""
                };
                last_error = Some(HarnessError(format!("{e}\n{log}{hint}")));
                continue;
            }
            let scheme = if tls.is_some() { "https" } else { "http" };
            let endpoint = format!("{scheme}://{host}:{port}");
            let (access_key_id, secret_access_key) =
                match bootstrap(&python, &endpoint, tls.map(|t| t.2)) {
                    Ok(keys) => keys,
                    Err(e) => {
                        stop(&mut child, libc::SIGTERM, Duration::from_secs(5));
                        return Err(e);
                    }
                };
            return Ok(S3Server {
                child: Mutex::new(child),
                host,
                port,
                tls: tls.is_some(),
                access_key_id,
                secret_access_key,
                dir,
            });
        }
        Err(last_error.expect("at least one attempt was made"))
    }

    /// One server for the whole test binary, started on first use and stopped
    /// when the process exits. Panics with the reason when it cannot start.
    pub fn shared() -> &'static S3Server {
        static SHARED: OnceLock<S3Server> = OnceLock::new();
        shared(&SHARED)
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn region(&self) -> &str {
        "us-east-1"
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        stop(&mut child, libc::SIGTERM, Duration::from_secs(5));
    }
}

impl Server for S3Server {
    fn start() -> Result<Self, HarnessError> {
        S3Server::start()
    }

    fn stop(&self) {
        S3Server::stop(self)
    }

    fn scratch_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `$ENTENTE_PYTHON` or `python3`: the interpreter moto is installed for.
pub fn python() -> PathBuf {
    std::env::var_os("ENTENTE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// The bootstrap script: creates the IAM user whose key signs every request.
fn bootstrap(
    python: &PathBuf,
    endpoint: &str,
    ca: Option<&Path>,
) -> Result<(String, String), HarnessError> {
    // Embedded rather than found by path: a build reused from another
    // checkout (a shared target directory) must not point at its files.
    const SCRIPT: &str = include_str!("../scripts/moto_bootstrap.py");
    let mut command = Command::new(python);
    command.arg("-c").arg(SCRIPT).arg(endpoint);
    if let Some(ca) = ca {
        command.arg(ca);
    }
    let output = command
        .output()
        .map_err(|e| HarnessError(format!("cannot run {}: {e}", python.display())))?;
    if !output.status.success() {
        return fail(format!(
            "creating the S3 test identity failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let keys: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| HarnessError(format!("the bootstrap printed no JSON: {e}")))?;
    let field = |name: &str| {
        keys[name]
            .as_str()
            .map(String::from)
            .ok_or_else(|| HarnessError(format!("the bootstrap printed no {name}")))
    };
    Ok((field("accessKeyId")?, field("secretAccessKey")?))
}
