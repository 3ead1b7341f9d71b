//! The `entente` command line.

use std::{path::PathBuf, process::ExitCode};

use entente_runtime::{check, not_built};

const USAGE: &str = "\
usage:
  entente validate PATH…      check manifests (files or directories) as the API server would
  entente up [--check] PATH…  run manifests on this machine (not built yet)
  entente admin …             administer a running workspace (not built yet)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("validate") => validate(&args[1..]),
        Some("up") => up(&args[1..]),
        Some("admin") => not_built::report(
            "entente admin",
            "comes with the server and federation issues",
        ),
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

/// `entente up`: the manifests are checked for real; starting them is not built yet.
fn up(args: &[String]) -> ExitCode {
    let paths: Vec<String> = args.iter().filter(|a| *a != "--check").cloned().collect();
    let status = validate(&paths);
    if status != ExitCode::SUCCESS {
        return status;
    }
    not_built::report(
        "entente up",
        "tracked by the `entente up` issue: the manifests above are valid, but nothing runs them on this machine yet",
    )
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
