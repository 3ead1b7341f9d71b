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

use std::path::Path;

use entente_postgres::USER;

use super::{
    database::{running, Database},
    UpError,
};

/// What a site keeps besides PostgreSQL's own files.
const KEPT: [&str; 4] = ["workspaces", "calls", "s3", "objects"];

/// The databases of the workspaces `entente up` ran under `data_dir`.
fn databases(data_dir: &Path) -> Vec<String> {
    super::site_workspaces(data_dir)
        .unwrap_or_default()
        .iter()
        .map(|name| super::plan::database_name(name))
        .collect()
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
    // A stopped site's cluster runs for the dump only.
    let mut started = match running(data_dir) {
        Some(_) => None,
        None => Some(Database::start(data_dir).await?),
    };
    let dumped = dump(data_dir, &names, &dumps);
    if let Some(database) = started.as_mut() {
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

/// `pg_dump`s each of `names` into `dumps`, from the cluster running under `data_dir`.
fn dump(data_dir: &Path, names: &[String], dumps: &Path) -> Result<(), UpError> {
    let (socket, password) =
        running(data_dir).ok_or_else(|| UpError("PostgreSQL is not running".into()))?;
    for name in names {
        let file = dumps.join(format!("{name}.dump"));
        run(
            "pg_dump",
            &socket,
            &password,
            &[
                "--format=custom".as_ref(),
                "--file".as_ref(),
                file.as_os_str(),
                name.as_ref(),
            ],
        )?;
    }
    Ok(())
}

/// Creates each saved database in `database` (running under `data_dir`)
/// and `pg_restore`s its dump from `from`; how many.
async fn restore_databases(
    from: &Path,
    data_dir: &Path,
    database: &Database,
) -> Result<usize, UpError> {
    let (socket, password) =
        running(data_dir).ok_or_else(|| UpError("PostgreSQL is not running".into()))?;
    let mut restored = 0;
    for name in databases(data_dir) {
        let file = from.join("databases").join(format!("{name}.dump"));
        if !file.is_file() {
            continue;
        }
        database.database(&name).await?;
        run(
            "pg_restore",
            &socket,
            &password,
            &[
                "--no-owner".as_ref(),
                "--dbname".as_ref(),
                name.as_ref(),
                file.as_os_str(),
            ],
        )?;
        restored += 1;
    }
    Ok(restored)
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
    let restored = restore_databases(from, data_dir, &database).await;
    database.stop();
    let restored = restored?;
    Ok(format!(
        "restored {restored} database(s) and the site's files into {}; run `entente up --data-dir {}` with the site's manifests",
        data_dir.display(),
        data_dir.display()
    ))
}
