//! The `entente` command line and the server binary, as a user meets them.

use std::process::Command;

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("..")
    .join(path)
}

#[test]
fn the_server_explains_its_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_entente-server"))
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("usage: entente-server serve|migrate --config FILE"));
}

#[test]
fn validate_accepts_the_examples_and_refuses_a_broken_manifest() {
    let ok = Command::new(env!("CARGO_BIN_EXE_entente"))
        .arg("validate")
        .arg(repo("examples"))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok    Workspace \"nation-a\""));

    let broken = Command::new(env!("CARGO_BIN_EXE_entente"))
        .arg("validate")
        .arg(repo("crds/tests/invalid/partner-endpoint-http.yaml"))
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert!(
        stdout.contains("partner.endpoint must be an https URL"),
        "{stdout}"
    );
}

#[test]
fn the_example_runtime_config_parses() {
    let config =
        entente_crds::config::RuntimeConfig::load(&repo("runtime/runtime.example.yaml")).unwrap();
    assert_eq!(config.listen.http.port(), 8080);
}
