use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("entente-operator: not built yet (tracked by the \"Operator\" issue). Nothing was started; no CRD or object was touched.");
    ExitCode::from(entente_operator::NOT_BUILT)
}
