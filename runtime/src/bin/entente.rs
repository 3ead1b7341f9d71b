//! The `entente` command line.

use std::{path::PathBuf, process::ExitCode};

use entente_runtime::{check, server, up};

const USAGE: &str = "\
usage:
  entente validate PATH…      check manifests (files or directories) as the API server would
  entente up [--check] [--data-dir DIR] [--port N] PATH…
                              run manifests on this machine (DATABASE_URL: use that PostgreSQL)
  entente status [--data-dir DIR]
                              what a site `entente up` runs is doing: servers, partner links
                              and queues, SFU nodes, PostgreSQL
  entente backup [--data-dir DIR] --out NEWDIR
                              save a site (running or stopped): databases, configs, secrets, files
  entente restore --in DIR --data-dir NEWDIR
                              bring a saved site back into a fresh data directory
  entente admin federation export [SITE] --partner ID --out FILE
                              a signed bundle of everything the partner has not acknowledged
  entente admin federation import [SITE] --in FILE [--ack-out FILE]
                              apply a partner's bundle (writing the acknowledgement to carry
                              back), or take a partner's acknowledgement
  SITE: --config RUNTIME.yaml (the server's RuntimeConfig), or the site `entente up` runs:
        [--data-dir DIR] [--workspace NAME] (its default data directory and only workspace
        unless given)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("validate") => validate(&args[1..]),
        Some("up") => up(&args[1..]),
        Some("admin") => admin(&args[1..]),
        Some("status") => status(&args[1..]),
        Some("backup") => backup(&args[1..]),
        Some("restore") => backup(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}

/// `entente up`: validate, plan, and (without `--check`) run until Ctrl-C.
fn up(args: &[String]) -> ExitCode {
    let options = match up::Options::parse(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("entente up: {message}\n{}", up::USAGE);
            return ExitCode::FAILURE;
        }
    };
    let plan = match up::prepare(&options) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("entente up: {error}");
            return ExitCode::FAILURE;
        }
    };
    if options.check {
        print!("{}", up::describe(&plan));
        println!("--check: nothing was started");
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(up::run(plan)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("entente up: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `entente status`: the site under the data directory, as it runs now.
fn status(args: &[String]) -> ExitCode {
    let data_dir = flag(args, "--data-dir")
        .map(PathBuf::from)
        .unwrap_or_else(up::default_data_dir);
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(up::status(&data_dir)) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("entente status: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `entente backup` and `entente restore` (which `args` came after).
fn backup(args: &[String]) -> ExitCode {
    let restoring = std::env::args().nth(1).as_deref() == Some("restore");
    let data_dir = flag(args, "--data-dir")
        .map(PathBuf::from)
        .unwrap_or_else(up::default_data_dir);
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let result = if restoring {
        match flag(args, "--in") {
            Some(from) => runtime.block_on(up::restore(std::path::Path::new(from), &data_dir)),
            None => Err(up::UpError("--in DIR (a backup) is required".into())),
        }
    } else {
        match flag(args, "--out") {
            Some(out) => runtime.block_on(up::backup(&data_dir, std::path::Path::new(out))),
            None => Err(up::UpError("--out NEWDIR is required".into())),
        }
    };
    match result {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "entente {}: {error}",
                if restoring { "restore" } else { "backup" }
            );
            ExitCode::FAILURE
        }
    }
}

fn validate(paths: &[String]) -> ExitCode {
    if paths.is_empty() {
        eprintln!("entente validate: give at least one manifest file or directory");
        return ExitCode::FAILURE;
    }
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    let report = check::check_paths(&paths);
    print!("{}", report.render());
    if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The value after `--name` in `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// `entente admin federation export|import`: offline sync bundles, run
/// against the workspace's database with the server's own RuntimeConfig.
fn admin(args: &[String]) -> ExitCode {
    let fail = |message: String| {
        eprintln!("entente admin: {message}\n{USAGE}");
        ExitCode::FAILURE
    };
    let (Some("federation"), Some(verb)) = (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) else {
        return fail("give `federation export` or `federation import`".into());
    };
    let config_path = match flag(args, "--config") {
        Some(path) => PathBuf::from(path),
        None => {
            let data_dir = flag(args, "--data-dir")
                .map(PathBuf::from)
                .unwrap_or_else(up::default_data_dir);
            match up::site_config(&data_dir, flag(args, "--workspace")) {
                Ok(path) => path,
                Err(message) => return fail(message),
            }
        }
    };
    let config = match entente_crds::config::RuntimeConfig::load(&config_path) {
        Ok(config) => config,
        Err(error) => return fail(error.to_string()),
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let result = runtime.block_on(async {
        let state = server::open(config).await.map_err(|e| e.to_string())?;
        match verb {
            "export" => {
                let partner = flag(args, "--partner").ok_or("--partner ID is required")?;
                let out = flag(args, "--out").ok_or("--out FILE is required")?;
                let (bytes, events) = server::federation::bundle::export(&state, partner)
                    .await
                    .map_err(|e| e.to_string())?;
                std::fs::write(out, &bytes).map_err(|e| format!("{out}: {e}"))?;
                Ok(format!(
                    "wrote {events} events for {partner:?} to {out} ({} bytes)",
                    bytes.len()
                ))
            }
            "import" => {
                let input = flag(args, "--in").ok_or("--in FILE is required")?;
                let bytes = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
                let imported = server::federation::bundle::import(&state, &bytes)
                    .await
                    .map_err(|e| e.to_string())?;
                match imported {
                    server::federation::bundle::Imported::Events {
                        partner,
                        events,
                        rejected,
                        applied,
                        acknowledgement,
                    } => {
                        let out = flag(args, "--ack-out").ok_or(
                            "the events are applied, but --ack-out FILE was not given: run again with it to write the acknowledgement to carry back (applying again changes nothing)",
                        )?;
                        std::fs::write(out, &acknowledgement)
                            .map_err(|e| format!("{out}: {e}"))?;
                        Ok(format!(
                            "applied {events} events from {partner:?} ({rejected} refused, see the audit log); applied up to {applied}; acknowledgement written to {out}"
                        ))
                    }
                    server::federation::bundle::Imported::Acknowledgement { partner, applied } => {
                        Ok(format!(
                            "{partner:?} acknowledged everything up to {applied}; the queue for it is emptied that far"
                        ))
                    }
                }
            }
            other => Err(format!("unknown `federation {other}`: use export or import")),
        }
    });
    match result {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("entente admin federation {verb}: {message}");
            ExitCode::FAILURE
        }
    }
}
