//! The local PostgreSQL of `entente up`: a cluster under the data directory,
//! initialised on first use and reused after, reached only over its Unix
//! socket; or the server `DATABASE_URL` names.

use std::{
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use entente_postgres::{Cluster, USER};
use sqlx::{postgres::PgConnectOptions, Connection, PgConnection};

use super::{files::secret_text, UpError};

/// The socket's port number names the socket file (`.s.PGSQL.5432`).
const SOCKET_PORT: u16 = 5432;

/// Where `entente up` keeps its cluster under a data directory.
pub(crate) fn root(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("postgres")
}

/// The pid of the cluster's postmaster under `data_dir`, if one runs (its
/// lock file names a live process).
pub(crate) fn postmaster(data_dir: &Path) -> Option<i32> {
    let pid = std::fs::read_to_string(root(data_dir).join("data/postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
}

/// The running cluster's socket directory and password, if it runs.
pub(crate) fn running(data_dir: &Path) -> Option<(std::path::PathBuf, String)> {
    postmaster(data_dir)?;
    let password = std::fs::read_to_string(root(data_dir).join("password")).ok()?;
    Some((root(data_dir).join("socket"), password.trim().to_string()))
}

pub enum Database {
    Local {
        child: Child,
        cluster: Cluster,
        options: PgConnectOptions,
        password: String,
        socket_dir: std::path::PathBuf,
    },
    Given {
        options: PgConnectOptions,
        url: String,
    },
}

impl Database {
    /// Checks that a database can be had, before anything starts.
    pub fn preflight() -> Result<(), UpError> {
        if std::env::var_os("DATABASE_URL").is_some() {
            return Ok(());
        }
        entente_postgres::bin_dir()
            .map(|_| ())
            .map_err(|e| UpError(e.0))
    }

    pub async fn start(data_dir: &Path) -> Result<Database, UpError> {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            let options: PgConnectOptions = url
                .parse()
                .map_err(|e| UpError(format!("DATABASE_URL is not a PostgreSQL URL: {e}")))?;
            return Ok(Database::Given { options, url });
        }
        let root = root(data_dir);
        let socket_dir = root.join("socket");
        std::fs::create_dir_all(&socket_dir).map_err(|e| io(&socket_dir, e))?;
        let cluster = Cluster::at(root.join("data")).map_err(|e| UpError(e.0))?;
        if let Some((uid, _)) = cluster.run_as {
            reachable_by(uid, &root)?;
        }
        let password = secret_text(&root.join("password"), 24)?;
        if !cluster.is_initialised() {
            let pwfile = root.join("pwfile");
            std::fs::write(&pwfile, &password).map_err(|e| io(&pwfile, e))?;
            cluster.hand_over(&root).map_err(|e| UpError(e.0))?;
            let result = cluster.init(&pwfile);
            let _ = std::fs::remove_file(&pwfile);
            result.map_err(|e| UpError(e.0))?;
        }
        cluster.hand_over(&socket_dir).map_err(|e| UpError(e.0))?;
        wait_for_previous_server(data_dir, &cluster.data).await?;
        let log_path = root.join("postgres.log");
        let log = super::files::open_log(&log_path)?;
        let mut command = cluster.server(SOCKET_PORT, false, &socket_dir, true);
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| io(&log_path, e))?)
            .stderr(log);
        super::servers::die_with_parent(&mut command, libc::SIGINT);
        let child = command
            .spawn()
            .map_err(|e| UpError(format!("cannot start postgres: {e}")))?;
        let options = PgConnectOptions::new()
            .socket(&socket_dir)
            .port(SOCKET_PORT)
            .username(USER)
            .password(&password)
            .database("postgres");
        let mut database = Database::Local {
            child,
            cluster,
            options,
            password,
            socket_dir,
        };
        if let Err(e) = database.wait_ready(&log_path).await {
            database.stop();
            return Err(e);
        }
        Ok(database)
    }

    fn options(&self) -> &PgConnectOptions {
        match self {
            Database::Local { options, .. } | Database::Given { options, .. } => options,
        }
    }

    async fn wait_ready(&mut self, log: &Path) -> Result<(), UpError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Database::Local { child, .. } = self {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(log).unwrap_or_default();
                    return Err(UpError(format!("postgres exited ({status}):\n{log}")));
                }
            }
            match PgConnection::connect_with(self.options()).await {
                Ok(connection) => {
                    let _ = connection.close().await;
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(UpError(format!("PostgreSQL did not become ready: {e}")))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Creates `name` if missing; returns the URL a server connects with.
    pub async fn database(&self, name: &str) -> Result<String, UpError> {
        let mut connection = PgConnection::connect_with(self.options())
            .await
            .map_err(|e| UpError(format!("cannot connect to PostgreSQL: {e}")))?;
        let exists = sqlx::query_scalar!(
            r#"SELECT 1 AS "exists!" FROM pg_database WHERE datname = $1"#,
            name
        )
        .fetch_optional(&mut connection)
        .await
        .map_err(|e| UpError(format!("cannot list databases: {e}")))?;
        if exists.is_none() {
            // CREATE DATABASE takes no bind parameters (so no `query!`
            // either: the statement names the database); the name is checked
            // to be [a-z0-9_] only (the plan makes it so), and quoted.
            if !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(UpError(format!("{name:?} is not a usable database name")));
            }
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut connection)
                .await
                .map_err(|e| UpError(format!("cannot create database {name:?}: {e}")))?;
        }
        let _ = connection.close().await;
        Ok(match self {
            Database::Local {
                password,
                socket_dir,
                ..
            } => format!(
                "postgres://{USER}:{password}@localhost:{SOCKET_PORT}/{name}?host={}",
                socket_dir.display()
            ),
            Database::Given { url, .. } => with_database(url, name),
        })
    }

    /// How a local cluster's postmaster ended, if it did (it is reaped: no
    /// zombie keeps its PID in the lock files).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        match self {
            Database::Local { child, .. } => child.try_wait().ok().flatten(),
            Database::Given { .. } => None,
        }
    }

    /// Stops a local cluster (fast shutdown: sessions end, data is kept).
    pub fn stop(&mut self) {
        if let Database::Local { child, .. } = self {
            super::servers::stop_child(child, libc::SIGINT);
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Database::Local { cluster, .. } => {
                format!("PostgreSQL, data in {}", cluster.data.display())
            }
            Database::Given { .. } => "PostgreSQL at DATABASE_URL".into(),
        }
    }
}

/// PostgreSQL, run as `uid` when we are root, must be able to reach `dir`:
/// every ancestor searchable by it. Otherwise say which one is closed.
fn reachable_by(uid: u32, dir: &Path) -> Result<(), UpError> {
    use std::os::unix::fs::MetadataExt;
    for ancestor in dir.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(ancestor) else {
            continue;
        };
        let searchable =
            meta.mode() & 0o001 != 0 || (meta.uid() == uid && meta.mode() & 0o100 != 0);
        if !searchable {
            return Err(UpError(format!(
                "PostgreSQL runs as an unprivileged user (uid {uid}), which cannot reach {} because \
                 {} is closed to it; choose a --data-dir it can reach, such as /var/lib/entente",
                dir.display(),
                ancestor.display()
            )));
        }
    }
    Ok(())
}

/// A server of this cluster from an earlier run may still be shutting down
/// (its `entente up` was killed, and it got the parent-death signal): wait
/// for it, and name it if it does not go.
async fn wait_for_previous_server(data_dir: &Path, data: &Path) -> Result<(), UpError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(pid) = postmaster(data_dir) {
        if Instant::now() > deadline {
            return Err(UpError(format!(
                "PostgreSQL (pid {pid}) is still running on {}; stop it, or use another --data-dir",
                data.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn io(path: &Path, e: std::io::Error) -> UpError {
    UpError(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@db:5432/app?sslmode=require", "entente_a"),
            "postgres://u:p@db:5432/entente_a?sslmode=require"
        );
        assert_eq!(with_database("postgres://u@db", "x"), "postgres://u@db/x");
    }
}
