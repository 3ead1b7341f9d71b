//! Until the controllers are built, the operator says so instead of pretending.

#[test]
fn the_operator_says_it_is_not_built_and_fails() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_entente-operator"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not built yet"));
}
