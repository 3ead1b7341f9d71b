//! Starts the harness's servers and then ends in a chosen way, so the harness
//! tests can check from outside that nothing outlives a test binary.
//!
//! `entente-e2e-probe owned-panic|shared-exit|shared-hang` prints one line
//! `pg_port=… pg_dir=… s3_port=… s3_dir=…` once both servers are up.

use std::io::Write;

use entente_e2e::{Postgres, S3Server};

fn announce(pg: &Postgres, s3: &S3Server, s3_dir: String) {
    println!(
        "pg_port={} pg_dir={} s3_port={} s3_dir={}",
        pg.port(),
        pg.data_dir().parent().unwrap().display(),
        s3.port(),
        s3_dir
    );
    std::io::stdout().flush().unwrap();
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "owned-panic" => {
            let pg = Postgres::start().unwrap();
            let s3 = S3Server::start().unwrap();
            announce(&pg, &s3, s3_dir(&s3));
            panic!("a test failed while its servers were running");
        }
        "shared-exit" => {
            announce(
                Postgres::shared(),
                S3Server::shared(),
                s3_dir(S3Server::shared()),
            );
        }
        "shared-hang" => {
            announce(
                Postgres::shared(),
                S3Server::shared(),
                s3_dir(S3Server::shared()),
            );
            loop {
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
        }
        other => {
            eprintln!("unknown mode {other:?}; use owned-panic, shared-exit or shared-hang");
            std::process::exit(2);
        }
    }
}

/// The moto scratch directory, found by its naming scheme (this pid, kind s3).
fn s3_dir(_: &S3Server) -> String {
    let prefix = format!("entente-e2e-s3-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path().display().to_string())
        .unwrap_or_default()
}
