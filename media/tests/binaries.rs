//! What the media binaries do when they cannot or may not run.

use std::process::Command;

#[test]
fn the_offloader_says_it_is_not_built_and_fails() {
    let output = Command::new(env!("CARGO_BIN_EXE_entente-offloader"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not built yet"));
}

#[test]
fn the_sfu_names_what_is_wrong_with_its_config() {
    let sfu = env!("CARGO_BIN_EXE_entente-sfu");
    let output = Command::new(sfu).output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: entente-sfu --config FILE"));

    let dir = std::env::temp_dir().join(format!("entente-sfu-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("short"), "too-short").unwrap();
    for (config, expected) in [
        (
            "version: 1\ncluster: c\njoinTokenKey: {file: /nonexistent/key}\n",
            "no sfu section",
        ),
        (
            &format!(
                "version: 1\ncluster: c\njoinTokenKey: {{file: {}}}\nsfu: {{listen: 127.0.0.1:0, udp: {{mux: 0}}, maxParticipantsPerRoom: 5}}\n",
                dir.join("short").display()
            ),
            "at least 32 characters",
        ),
    ] {
        std::fs::write(dir.join("key"), "k".repeat(40)).unwrap();
        std::fs::write(dir.join("media.yaml"), config).unwrap();
        let output = Command::new(sfu)
            .arg("--config")
            .arg(dir.join("media.yaml"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
