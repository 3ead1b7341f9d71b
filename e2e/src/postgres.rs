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

use entente_postgres::{Cluster, USER};

use crate::process::{
    fail, free_port, random_hex, shared, spawn_supervised, stop, wait_for_port, HarnessError,
    ScratchDir, Server,
};

/// A running PostgreSQL server on 127.0.0.1, password-authenticated (SCRAM).
pub struct Postgres {
    child: Mutex<Child>,
    port: u16,
    password: String,
    bin_dir: PathBuf,
    // Dropped after the server is stopped (field order).
    dir: ScratchDir,
}

/// One statement's share of PostgreSQL's time, from `pg_stat_statements`.
#[derive(Debug, Clone)]
pub struct Statement {
    pub calls: u64,
    /// Time spent executing it (not waiting for the client), in ms.
    pub total_ms: f64,
    /// Its text, white space collapsed.
    pub query: String,
}

impl Postgres {
    /// Starts a new cluster, stopped when the value is dropped. Test data
    /// need not survive a machine crash: `fsync` is off — unless
    /// `ENTENTE_PG_DURABLE` is set, as benchmarks set it, whose figures
    /// are measured as deployed.
    pub fn start() -> Result<Postgres, HarnessError> {
        Postgres::start_with(std::env::var_os("ENTENTE_PG_DURABLE").is_some())
    }

    /// Starts a new cluster as deployed: `fsync` and `synchronous_commit`
    /// on, for benchmark figures; `pg_stat_statements` is loaded, for their
    /// profile ([`Postgres::statements`]).
    pub fn start_durable() -> Result<Postgres, HarnessError> {
        Postgres::start_with(true)
    }

    /// The postmaster's process id (its children are the backends).
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).id()
    }

    fn start_with(durable: bool) -> Result<Postgres, HarnessError> {
        let dir = ScratchDir::new("pg")?;
        let cluster = Cluster::at(dir.path().join("data")).map_err(harness)?;
        let password = random_hex(16);
        std::fs::write(dir.path().join("pwfile"), &password)
            .map_err(|e| HarnessError(format!("cannot write the password file: {e}")))?;
        cluster.init(&dir.path().join("pwfile")).map_err(harness)?;
        let bin_dir = cluster.bin_dir.clone();

        // A port can be taken between choosing and binding it: try a few.
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port();
            match start_server(&cluster, dir.path(), port, durable) {
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

    /// `postgres://` URL of `database` over the server's Unix socket: it
    /// reaches the server from any network namespace on this machine.
    pub fn socket_url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{}@localhost:{}/{database}?host={}",
            self.password,
            self.port,
            self.dir.path().display()
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

    /// Forgets the statement statistics gathered so far (a cluster from
    /// [`Postgres::start_durable`] only), to profile what follows.
    pub fn reset_statements(&self) -> Result<(), HarnessError> {
        self.psql(
            "postgres",
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()",
        )
        .map(drop)
    }

    /// The `top` statements by total execution time since
    /// [`Postgres::reset_statements`], across every database: a profile of
    /// where PostgreSQL spent its time.
    pub fn statements(&self, top: usize) -> Result<Vec<Statement>, HarnessError> {
        let rows = self.psql(
            "postgres",
            &format!(
                "SELECT calls, total_exec_time, regexp_replace(query, '\\s+', ' ', 'g')
                 FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'
                 ORDER BY total_exec_time DESC LIMIT {top}"
            ),
        )?;
        Ok(rows
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, '|');
                Some(Statement {
                    calls: fields.next()?.parse().ok()?,
                    total_ms: fields.next()?.parse().ok()?,
                    query: fields.next()?.to_string(),
                })
            })
            .collect())
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
    cluster: &Cluster,
    dir: &Path,
    port: u16,
    durable: bool,
) -> Result<Child, HarnessError> {
    let log = std::fs::File::create(dir.join("postgres.log"))
        .map_err(|e| HarnessError(format!("cannot create the server log: {e}")))?;
    // Test data need not survive a machine crash; it must survive the
    // server processes under test, which durability settings do not affect.
    // Benchmarks run durable, as deployed, and keep statement statistics
    // (`pg_stat_statements`, shipped with Debian's server) for their profile.
    let mut command = cluster.server(port, true, dir, durable);
    if durable {
        command.args([
            "-c",
            "shared_preload_libraries=pg_stat_statements",
            "-c",
            "pg_stat_statements.track=all",
        ]);
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| HarnessError(e.to_string()))?)
        .stderr(log);
    let mut child = spawn_supervised(command)
        .map_err(|e| HarnessError(format!("cannot start postgres: {e}")))?;
    if let Err(e) = wait_for_port(&mut child, port, Duration::from_secs(30), "postgres") {
        stop(&mut child, libc::SIGINT, Duration::from_secs(5));
        let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
        return fail(format!("{e}\n{log}"));
    }
    Ok(child)
}

fn harness(error: entente_postgres::Error) -> HarnessError {
    HarnessError(error.0)
}
