//! A real rule-based translation service: Apertium's HTTP service (APY,
//! Debian's `apertium-apy`) with the English–Spanish pair
//! (`apertium-eng-spa`), on 127.0.0.1 through the launcher `entente up`
//! uses (APY alone binds every interface).

use std::{
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::Duration,
};

use crate::process::{
    free_port, shared, spawn_supervised, stop, wait_for_port, HarnessError, ScratchDir, Server,
};

/// The launcher, embedded so a build reused from another checkout does
/// not point at its files.
pub const LAUNCHER: &str = include_str!("../../runtime/src/up/apertium_server.py");

pub struct ApertiumServer {
    child: Mutex<Child>,
    port: u16,
    dir: ScratchDir,
}

impl ApertiumServer {
    pub fn start() -> Result<ApertiumServer, HarnessError> {
        let dir = ScratchDir::new("apertium")?;
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("apy.log"))
            .map_err(|e| HarnessError(format!("cannot create Apertium's log: {e}")))?;
        // Debian's Python, where apertium-apy is installed, scheduled only
        // when the machine is otherwise idle, as `entente up` runs it:
        // posting goes first on a shared machine, and translations catch
        // up when it eases.
        let mut command = Command::new("/usr/bin/chrt");
        command
            .args(["--idle", "0", "/usr/bin/python3"])
            .arg("-c")
            .arg(LAUNCHER)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| HarnessError(e.to_string()))?)
            .stderr(log);
        let mut child = spawn_supervised(command)
            .map_err(|e| HarnessError(format!("cannot run Apertium's service: {e}")))?;
        if let Err(e) = wait_for_port(&mut child, port, Duration::from_secs(60), "apertium-apy") {
            stop(&mut child, libc::SIGTERM, Duration::from_secs(5));
            let log = std::fs::read_to_string(dir.path().join("apy.log")).unwrap_or_default();
            return Err(HarnessError(format!(
                "{e}\n{log}\n(scripts/setup installs apertium-apy and apertium-eng-spa)"
            )));
        }
        Ok(ApertiumServer {
            child: Mutex::new(child),
            port,
            dir,
        })
    }

    /// One server for the whole test binary.
    pub fn shared() -> &'static ApertiumServer {
        static SHARED: OnceLock<ApertiumServer> = OnceLock::new();
        shared(&SHARED)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        stop(&mut child, libc::SIGTERM, Duration::from_secs(5));
    }
}

impl Server for ApertiumServer {
    fn start() -> Result<Self, HarnessError> {
        ApertiumServer::start()
    }

    fn stop(&self) {
        ApertiumServer::stop(self)
    }

    fn scratch_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for ApertiumServer {
    fn drop(&mut self) {
        self.stop();
    }
}
