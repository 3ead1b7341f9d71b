//! Until calls are built, the media binaries say so instead of pretending.

use std::process::Command;

#[test]
fn the_sfu_and_offloader_say_they_are_not_built_and_fail() {
    for binary in [
        env!("CARGO_BIN_EXE_entente-sfu"),
        env!("CARGO_BIN_EXE_entente-offloader"),
    ] {
        let output = Command::new(binary).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{binary}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("not built yet"),
            "{binary}"
        );
    }
}
