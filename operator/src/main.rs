use std::process::ExitCode;

use entente_operator::run;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", run::USAGE);
        return ExitCode::SUCCESS;
    }
    let flags = match run::parse(&args) {
        Ok(flags) => flags,
        Err(message) => {
            eprintln!("entente-operator: {message}\n{}", run::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run::run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("entente-operator: {error}");
            ExitCode::FAILURE
        }
    }
}
