//! The operator binary's own failures: bad flags and no cluster to talk to
//! are clear errors, not hangs or panics.

use std::process::Command;

fn operator() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_entente-operator"));
    // No in-cluster service account and no kubeconfig: nothing to reach.
    command
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent");
    command
}

#[test]
fn a_bad_flag_is_named_with_the_usage() {
    let output = operator().arg("--metrics-port=lots").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"lots\" is not a port number"), "{stderr}");
    assert!(stderr.contains("usage: entente-operator"), "{stderr}");
}

#[test]
fn without_a_cluster_it_says_so_and_fails() {
    let output = operator().output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot find Kubernetes credentials"),
        "{stderr}"
    );
}
