//! A PostgreSQL cluster run from the system's binaries (Debian's
//! `/usr/lib/postgresql/*/bin`, `$ENTENTE_PG_BIN` or `PATH`): found,
//! initialised, and started. `entente up` keeps one under its data directory;
//! the test harness makes throwaway ones. Neither supervises the process here:
//! [`Cluster::server`] returns the command, the caller owns the child.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The cluster's superuser, which owns every Entente database.
pub const USER: &str = "entente";

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, Error> {
    Err(Error(message.into()))
}

/// A cluster's data directory and how to run its server.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub bin_dir: PathBuf,
    /// The data directory (`initdb -D`).
    pub data: PathBuf,
    /// PostgreSQL refuses to run as root: then it runs as this (uid, gid).
    pub run_as: Option<(u32, u32)>,
}

impl Cluster {
    /// A cluster at `data`; nothing is created yet.
    pub fn at(data: PathBuf) -> Result<Cluster, Error> {
        Ok(Cluster {
            bin_dir: bin_dir()?,
            data,
            run_as: unprivileged_user()?,
        })
    }

    pub fn is_initialised(&self) -> bool {
        self.data.join("PG_VERSION").is_file()
    }

    /// `initdb` with password (SCRAM) authentication for [`USER`], whose
    /// password is read from `password_file`. The parent of `data` is handed
    /// to the user the server runs as.
    pub fn init(&self, password_file: &Path) -> Result<(), Error> {
        if let (Some((uid, gid)), Some(parent)) = (self.run_as, self.data.parent()) {
            chown(parent, uid, gid)?;
        }
        let mut initdb = self.command("initdb");
        initdb
            .arg("-D")
            .arg(&self.data)
            .args(["-U", USER, "-E", "UTF8", "--locale=C"])
            .args(["--auth-local=scram-sha-256", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", password_file.display()));
        let output = initdb.output().map_err(|e| {
            Error(format!(
                "cannot run {}: {e}",
                self.bin_dir.join("initdb").display()
            ))
        })?;
        if !output.status.success() {
            return fail(format!(
                "initdb failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(())
    }

    /// The `postgres` command for this cluster, listening on `port` at
    /// 127.0.0.1 (`None`: only on the Unix socket in `socket_dir`).
    /// `durable: false` turns off fsync, for test data only.
    pub fn server(&self, port: u16, tcp: bool, socket_dir: &Path, durable: bool) -> Command {
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-c")
            .arg(format!(
                "listen_addresses={}",
                if tcp { "127.0.0.1" } else { "" }
            ))
            .arg("-c")
            .arg(format!("unix_socket_directories={}", socket_dir.display()))
            .args(["-c", "max_connections=300"])
            // A client that dies while its backend waits (on a lock, in a
            // long statement) is noticed within a second, and what that
            // backend held is let go: a crashed server's restart is not
            // left waiting behind its own ghost.
            .args(["-c", "client_connection_check_interval=1s"]);
        if !durable {
            command.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        }
        command
    }

    /// A command from the cluster's bin directory, run as the right user.
    pub fn command(&self, program: &str) -> Command {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(self.bin_dir.join(program));
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Hands `path` (recursively) to the user the server runs as, if any.
    pub fn hand_over(&self, path: &Path) -> Result<(), Error> {
        match self.run_as {
            Some((uid, gid)) => chown(path, uid, gid),
            None => Ok(()),
        }
    }
}

/// `program` in one of `dirs`, else on `PATH`.
pub fn find_program(program: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    dirs.iter()
        .cloned()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The directory holding `initdb`, `postgres` and `psql`: `$ENTENTE_PG_BIN`
/// (and only there, when it is set), else the newest
/// `/usr/lib/postgresql/*/bin` (Debian), else `PATH`.
pub fn bin_dir() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os("ENTENTE_PG_BIN") {
        let dir = PathBuf::from(dir);
        for needed in ["initdb", "postgres", "psql"] {
            if !dir.join(needed).is_file() {
                return fail(format!(
                    "ENTENTE_PG_BIN is {}, which has no {needed}; point it at PostgreSQL's bin directory",
                    dir.display()
                ));
            }
        }
        return Ok(dir);
    }
    let mut candidates = Vec::new();
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    debian.sort();
    candidates.extend(debian.into_iter().rev().map(|(_, dir)| dir));
    let initdb = find_program("initdb", &candidates).ok_or_else(|| {
        Error(
            "PostgreSQL's initdb was not found in $ENTENTE_PG_BIN, /usr/lib/postgresql/*/bin or PATH; \
             install it with `apt-get install postgresql` (scripts/setup does), or set DATABASE_URL"
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
pub fn unprivileged_user() -> Result<Option<(u32, u32)>, Error> {
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

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), Error> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error(format!("{} contains a NUL byte", path.display())))?;
    // SAFETY: c_path is a valid NUL-terminated string for the duration of the call.
    if unsafe { libc::chown(c_path.as_ptr(), uid, gid) } != 0 {
        return fail(format!(
            "cannot chown {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    if path.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            chown(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}
