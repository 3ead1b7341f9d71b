//! The `entente` command line.

use std::{path::PathBuf, process::ExitCode};

use entente_runtime::{check, not_built, up};

const USAGE: &str = "\
usage:
  entente validate PATH…      check manifests (files or directories) as the API server would
  entente up [--check] [--data-dir DIR] [--port N] PATH…
                              run manifests on this machine (DATABASE_URL: use that PostgreSQL)
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
