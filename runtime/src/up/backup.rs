//! `entente backup` and `entente restore`: a site `entente up` runs, saved
//! to a directory and brought back into a fresh data directory — each
//! workspace's database (`pg_dump`, custom format), and everything else a
//! site keeps that a new one could not make the same: its configs and
//! secrets (the admin password, the federation CA and keys partners trust,
//! the calls key), the object store's credentials and files.
//!
//! A running site is saved as it runs: the databases first, then the
//! files, so every file a saved post names is saved too (files are stored
//! before the rows that name them). A stopped one gets its PostgreSQL
//! started for the dump, and stopped again.

use std::path::{Path, PathBuf};

use entente_postgres::USER;

use super::{database::Database, UpError};

/// What a site keeps besides PostgreSQL's own files.
const KEPT: [&str; 4] = ["workspaces", "calls", "s3", "objects"];

/// The databases of the workspaces under `data_dir`.
fn databases(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join("workspaces"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            format!(
                "entente_{}",
                e.file_name().to_string_lossy().replace('-', "_")
            )
        })
        .collect();
    names.sort();
    names
}

/// The running cluster's socket and password, if it runs.
fn running(data_dir: &Path) -> Option<(PathBuf, String)> {
    let root = data_dir.join("postgres");
    let pid: i32 = std::fs::read_to_string(root.join("data/postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return None;
    }
    let password = std::fs::read_to_string(root.join("password")).ok()?;
    Some((root.join("socket"), password.trim().to_string()))
}

/// Runs `program` (`pg_dump`, `pg_restore`) against the cluster.
fn run(
    program: &str,
    socket: &Path,
    password: &str,
    args: &[&std::ffi::OsStr],
) -> Result<(), UpError> {
    let bin = entente_postgres::bin_dir().map_err(|e| UpError(e.0))?;
    let output = std::process::Command::new(bin.join(program))
        .arg("--host")
        .arg(socket)
        .args(["--port", "5432", "--username", USER])
        .args(args)
        .env("PGPASSWORD", password)
        .output()
        .map_err(|e| UpError(format!("cannot run {program}: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(UpError(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<u64, UpError> {
    let fail = |path: &Path, e: std::io::Error| UpError(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(to).map_err(|e| fail(to, e))?;
    let mut files = 0;
    for entry in std::fs::read_dir(from).map_err(|e| fail(from, e))? {
        let entry = entry.map_err(|e| fail(from, e))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(|e| fail(&source, e))?;
        if kind.is_dir() {
            files += copy_tree(&source, &target)?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target).map_err(|e| fail(&source, e))?;
            files += 1;
        }
    }
    Ok(files)
}

/// Saves the site under `data_dir` to the new directory `out`.
pub async fn backup(data_dir: &Path, out: &Path) -> Result<String, UpError> {
    if std::env::var_os("DATABASE_URL").is_some() {
        return Err(UpError(
            "DATABASE_URL is set: back that PostgreSQL up with its own tools; `entente backup` saves the cluster `entente up` runs under the data directory".into(),
        ));
    }
    if out.exists() {
        return Err(UpError(format!(
            "{} exists; give a new directory",
            out.display()
        )));
    }
    let names = databases(data_dir);
    if names.is_empty() {
        return Err(UpError(format!(
            "no site under {}: give the --data-dir `entente up` was given",
            data_dir.display()
        )));
    }
    let dumps = out.join("databases");
    std::fs::create_dir_all(&dumps).map_err(|e| UpError(format!("{}: {e}", dumps.display())))?;
    let mut started = None;
    let (socket, password) = match running(data_dir) {
        Some(running) => running,
        None => {
            started = Some(Database::start(data_dir).await?);
            running(data_dir).ok_or_else(|| UpError("PostgreSQL did not start".into()))?
        }
    };
    let mut dumped = Ok(());
    for name in &names {
        let file = dumps.join(format!("{name}.dump"));
        dumped = run(
            "pg_dump",
            &socket,
            &password,
            &[
                "--format=custom".as_ref(),
                "--file".as_ref(),
                file.as_os_str(),
                name.as_ref(),
            ],
        );
        if dumped.is_err() {
            break;
        }
    }
    if let Some(mut database) = started {
        database.stop();
    }
    dumped?;
    let mut files = 0;
    for kept in KEPT {
        if data_dir.join(kept).is_dir() {
            files += copy_tree(&data_dir.join(kept), &out.join(kept))?;
        }
    }
    Ok(format!(
        "saved {} database(s) and {files} files from {} to {}",
        names.len(),
        data_dir.display(),
        out.display()
    ))
}

/// Brings the site saved in `from` back into the fresh data directory `data_dir`.
pub async fn restore(from: &Path, data_dir: &Path) -> Result<String, UpError> {
    if !from.join("databases").is_dir() {
        return Err(UpError(format!(
            "{} is not a backup made by `entente backup`",
            from.display()
        )));
    }
    if data_dir.join("postgres").exists() || data_dir.join("workspaces").exists() {
        return Err(UpError(format!(
            "{} already holds a site; restore into a new --data-dir",
            data_dir.display()
        )));
    }
    for kept in KEPT {
        if from.join(kept).is_dir() {
            copy_tree(&from.join(kept), &data_dir.join(kept))?;
        }
    }
    let mut database = Database::start(data_dir).await?;
    let (socket, password) =
        running(data_dir).ok_or_else(|| UpError("PostgreSQL did not start".into()))?;
    let mut restored = Ok(0);
    for name in databases(data_dir) {
        let file = from.join("databases").join(format!("{name}.dump"));
        if !file.is_file() {
            continue;
        }
        restored = match database.database(&name).await {
            Ok(_) => run(
                "pg_restore",
                &socket,
                &password,
                &[
                    "--no-owner".as_ref(),
                    "--dbname".as_ref(),
                    name.as_ref(),
                    file.as_os_str(),
                ],
            )
            .map(|()| restored.unwrap_or(0) + 1),
            Err(e) => Err(e),
        };
        if restored.is_err() {
            break;
        }
    }
    database.stop();
    let restored = restored?;
    Ok(format!(
        "restored {restored} database(s) and the site's files into {}; run `entente up --data-dir {}` with the site's manifests",
        data_dir.display(),
        data_dir.display()
    ))
}
