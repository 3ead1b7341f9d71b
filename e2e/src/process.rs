//! Child processes that cannot outlive the test binary, scratch directories,
//! ports.

use std::{
    net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::{mpsc, Mutex, OnceLock},
    time::{Duration, Instant},
};

/// Why a test server could not be provided. The message says what to install or fix.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

pub(crate) fn fail<T>(message: impl Into<String>) -> Result<T, HarnessError> {
    Err(HarnessError(message.into()))
}

/// A free TCP port on 127.0.0.1 (free when asked; servers that lose the race
/// fail to bind and the caller retries).
pub fn free_port() -> u16 {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the loopback interface accepts a listener")
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`, or the
/// child exits, or `timeout` passes.
pub(crate) fn wait_for_port(
    child: &mut Child,
    port: u16,
    timeout: Duration,
    what: &str,
) -> Result<(), HarnessError> {
    wait_for_address(child, Ipv4Addr::LOCALHOST, port, timeout, what)
}

/// [`wait_for_port`] on another address of this machine.
pub(crate) fn wait_for_address(
    child: &mut Child,
    host: Ipv4Addr,
    port: u16,
    timeout: Duration,
    what: &str,
) -> Result<(), HarnessError> {
    let deadline = Instant::now() + timeout;
    let address = SocketAddrV4::new(host, port).into();
    loop {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return fail(format!(
                "{what} exited ({status}) before listening on port {port}"
            ));
        }
        if Instant::now() > deadline {
            return fail(format!(
                "{what} did not listen on port {port} within {timeout:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Is anything listening on 127.0.0.1:`port`?
pub fn port_is_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Spawns `command` so that it is killed when the test process ends, however it ends.
///
/// The kernel sends the parent-death signal when the *thread* that forked the
/// child exits, and the test harness runs each test on a short-lived thread; so
/// every child is forked from one thread that lives as long as the process.
pub(crate) fn spawn_supervised(mut command: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("entente-e2e-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("a thread can be started");
        Mutex::new(tx)
    });
    entente_process::die_with_parent(&mut command, libc::SIGKILL);
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply_tx))
        .expect("the spawner thread lives as long as the process");
    reply_rx.recv().expect("the spawner always replies")
}

pub(crate) use entente_process::stop;

/// A test server the harness can share across a test binary.
pub(crate) trait Server: Send + Sync + 'static {
    fn start() -> Result<Self, HarnessError>
    where
        Self: Sized;
    fn stop(&self);
    fn scratch_dir(&self) -> &Path;
}

/// The one instance of `S` in `cell`, started on first use and stopped (and its
/// directory removed) when the process exits. Panics with the reason when it
/// cannot start, failing the test that asked.
pub(crate) fn shared<S: Server>(cell: &'static OnceLock<S>) -> &'static S {
    cell.get_or_init(|| {
        let server = S::start().unwrap_or_else(|e| panic!("{e}"));
        at_exit(Box::new(move || {
            if let Some(server) = cell.get() {
                server.stop();
                let _ = std::fs::remove_dir_all(server.scratch_dir());
            }
        }));
        server
    })
}

/// Cleanup to run when the process exits normally, for the shared servers that
/// live in statics (whose destructors Rust never runs).
fn at_exit(cleanup: Box<dyn FnOnce() + Send>) {
    static CLEANUPS: Mutex<Vec<Box<dyn FnOnce() + Send>>> = Mutex::new(Vec::new());
    static REGISTERED: OnceLock<()> = OnceLock::new();
    extern "C" fn run_cleanups() {
        let cleanups = std::mem::take(&mut *CLEANUPS.lock().unwrap_or_else(|e| e.into_inner()));
        for cleanup in cleanups.into_iter().rev() {
            cleanup();
        }
    }
    REGISTERED.get_or_init(|| {
        // SAFETY: registering a plain extern "C" function with no arguments.
        unsafe {
            libc::atexit(run_cleanups);
        }
    });
    CLEANUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(cleanup);
}

/// A scratch directory `entente-e2e-<what>-<pid>-<n>` in the temp dir, removed
/// on drop. Directories left by processes that no longer exist (killed test
/// binaries) are removed when the next one is made.
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(crate) fn new(what: &str) -> Result<Self, HarnessError> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let base = std::env::temp_dir();
        remove_stale(&base);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = base.join(format!("entente-e2e-{what}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| HarnessError(format!("cannot create {}: {e}", path.display())))?;
        Ok(ScratchDir(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("entente-e2e-")) else {
            continue;
        };
        let pid = rest
            .split('-')
            .rev()
            .nth(1)
            .and_then(|p| p.parse::<i32>().ok());
        // SAFETY: kill with signal 0 only checks whether the process exists.
        if let Some(pid) = pid {
            let alive = unsafe { libc::kill(pid, 0) } == 0
                || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A random hex string from the kernel's generator (passwords for test servers).
pub(crate) fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("/dev/urandom is readable");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_scratch_dirs_of_dead_processes_are_swept_and_live_ones_kept() {
        let base = std::env::temp_dir().join(format!("entente-sweep-test-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let mut dead = Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        let stale = base.join(format!("entente-e2e-pg-{dead_pid}-0"));
        let live = base.join(format!("entente-e2e-pg-{}-0", std::process::id()));
        let unrelated = base.join("something-else-1-0");
        for dir in [&stale, &live, &unrelated] {
            std::fs::create_dir_all(dir).unwrap();
        }
        remove_stale(&base);
        assert!(!stale.exists(), "a dead process's directory is swept");
        assert!(live.exists(), "a live process's directory is kept");
        assert!(unrelated.exists(), "other directories are never touched");
        std::fs::remove_dir_all(base).unwrap();
    }
}
