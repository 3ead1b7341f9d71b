//! A throwaway PostgreSQL cluster from the system's binaries.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        Mutex, OnceLock,
    },
    time::{Duration, Instant},
};

use crate::process::{
    fail, find_program, free_port, random_hex, shared, spawn_supervised, stop, wait_for_port,
    HarnessError, ScratchDir, Server,
};

const USER: &str = "entente";

/// A running PostgreSQL server on 127.0.0.1, password-authenticated (SCRAM).
pub struct Postgres {
    child: Mutex<Child>,
    port: u16,
    password: String,
    bin_dir: PathBuf,
    // Dropped after the server is stopped (field order).
    dir: ScratchDir,
}

impl Postgres {
    /// Starts a new cluster, stopped when the value is dropped.
    pub fn start() -> Result<Postgres, HarnessError> {
        let bin_dir = bin_dir()?;
        let dir = ScratchDir::new("pg")?;
        let password = random_hex(16);
        let run_as = unprivileged_user()?;
        let data = dir.path().join("data");
        std::fs::write(dir.path().join("pwfile"), &password)
            .map_err(|e| HarnessError(format!("cannot write the password file: {e}")))?;
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), uid, gid)?;
        }

        let mut initdb = Command::new(bin_dir.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=scram-sha-256", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", dir.path().join("pwfile").display()));
        run_as_user(&mut initdb, run_as);
        let output = initdb.output().map_err(|e| {
            HarnessError(format!(
                "cannot run {}: {e}",
                bin_dir.join("initdb").display()
            ))
        })?;
        if !output.status.success() {
            return fail(format!(
                "initdb failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }

        // A port can be taken between choosing and binding it: try a few.
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port();
            match start_server(&bin_dir, &data, dir.path(), port, run_as) {
                Ok(child) => {
                    let postgres = Postgres {
                        child: Mutex::new(child),
                        port,
                        password: password.clone(),
                        bin_dir: bin_dir.clone(),
                        dir,
                    };
                    postgres.wait_until_ready()?;
                    return Ok(postgres);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one attempt was made"))
    }

    /// One cluster for the whole test binary, started on first use and stopped
    /// when the process exits. Panics with the reason when it cannot start.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        shared(&SHARED)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        USER
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `postgres://` URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// Creates a new, empty database with a name unique to this process
    /// (`<prefix>_<pid>_<n>`) and returns its URL.
    pub fn create_database(&self, prefix: &str) -> Result<String, HarnessError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{}_{}_{}",
            prefix.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(&name))
    }

    /// Runs SQL with psql and returns its unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, HarnessError> {
        let output = Command::new(self.bin_dir.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", USER, "-d", database])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(sql)
            .env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .map_err(|e| HarnessError(format!("cannot run psql: {e}")))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        } else {
            fail(format!(
                "psql failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// Stops the server (fast shutdown). Safe to call more than once.
    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        stop(&mut child, libc::SIGINT, Duration::from_secs(10));
    }

    fn wait_until_ready(&self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.psql("postgres", "SELECT 1") {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    let log = std::fs::read_to_string(self.dir.path().join("postgres.log"))
                        .unwrap_or_default();
                    return fail(format!("PostgreSQL did not become ready: {e}\n{log}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Server for Postgres {
    fn start() -> Result<Self, HarnessError> {
        Postgres::start()
    }

    fn stop(&self) {
        Postgres::stop(self)
    }

    fn scratch_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start_server(
    bin_dir: &Path,
    data: &Path,
    dir: &Path,
    port: u16,
    run_as: Option<(u32, u32)>,
) -> Result<Child, HarnessError> {
    let log = std::fs::File::create(dir.join("postgres.log"))
        .map_err(|e| HarnessError(format!("cannot create the server log: {e}")))?;
    let mut command = Command::new(bin_dir.join("postgres"));
    command
        .arg("-D")
        .arg(data)
        .arg("-p")
        .arg(port.to_string())
        .args(["-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.display()))
        // Test data need not survive a machine crash; it must survive the
        // server processes under test, which these settings do not affect.
        .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
        .args(["-c", "max_connections=300"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| HarnessError(e.to_string()))?)
        .stderr(log);
    run_as_user(&mut command, run_as);
    let mut child = spawn_supervised(command)
        .map_err(|e| HarnessError(format!("cannot start postgres: {e}")))?;
    if let Err(e) = wait_for_port(&mut child, port, Duration::from_secs(30), "postgres") {
        stop(&mut child, libc::SIGINT, Duration::from_secs(5));
        let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
        return fail(format!("{e}\n{log}"));
    }
    Ok(child)
}

/// The directory holding `initdb`, `postgres` and `psql`: `$ENTENTE_PG_BIN`,
/// else the newest `/usr/lib/postgresql/*/bin` (Debian), else `PATH`.
fn bin_dir() -> Result<PathBuf, HarnessError> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("ENTENTE_PG_BIN") {
        candidates.push(PathBuf::from(dir));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    debian.sort();
    candidates.extend(debian.into_iter().rev().map(|(_, dir)| dir));
    let initdb = find_program("initdb", &candidates).ok_or_else(|| {
        HarnessError(
            "PostgreSQL's initdb was not found in $ENTENTE_PG_BIN, /usr/lib/postgresql/*/bin or PATH; \
             install it with `apt-get install postgresql` (scripts/setup does)"
                .into(),
        )
    })?;
    let dir = initdb.parent().expect("a file has a parent").to_path_buf();
    for needed in ["postgres", "psql"] {
        if !dir.join(needed).is_file() && find_program(needed, &[]).is_none() {
            return fail(format!("{needed} is missing beside {}", initdb.display()));
        }
    }
    Ok(dir)
}

/// PostgreSQL refuses to run as root: when we are root, run it as the
/// `postgres` system user (or `nobody`).
fn unprivileged_user() -> Result<Option<(u32, u32)>, HarnessError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for name in ["postgres", "nobody"] {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() > 3 && fields[0] == name {
                if let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse()) {
                    return Ok(Some((uid, gid)));
                }
            }
        }
    }
    fail(
        "running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as",
    )
}

fn run_as_user(command: &mut Command, run_as: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = run_as {
        command.uid(uid).gid(gid);
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), HarnessError> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| HarnessError(format!("{} contains a NUL byte", path.display())))?;
    // SAFETY: c_path is a valid NUL-terminated string for the duration of the call.
    if unsafe { libc::chown(c_path.as_ptr(), uid, gid) } != 0 {
        return fail(format!(
            "cannot chown {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        chown(&entry.path(), uid, gid)?;
    }
    Ok(())
}
