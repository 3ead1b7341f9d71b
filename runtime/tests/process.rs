//! `entente-server` as a process: migrate, serve, survive being killed, and
//! answer 503 rather than lose a write when the database is gone.

mod common;

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{http, wait_ready, write_config, KillOnDrop, Workspace};
use entente_e2e::{free_port, Postgres};
use serde_json::json;

fn server(command: &str, config: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_entente-server"));
    cmd.args([command, "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn wait_healthy(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = http(port, "GET", "/readyz", None, None) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!("entente-server exited ({status}):\n{stderr}");
        }
        assert!(
            Instant::now() < deadline,
            "entente-server did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_server_loses_no_acknowledged_post() {
    let url = Postgres::shared().create_database("killed").unwrap();
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("entente-process-{}-kill", std::process::id()));
    let config = write_config(&dir, &url, port);
    common::create_bucket_blocking(&config);

    let mut first = server("serve", &config).spawn().unwrap();
    wait_healthy(port, &mut first);
    let token = common::admin_token(port);
    let channel = common::public_channel(port, &token, "ops");
    let mut acknowledged = Vec::new();
    for i in 0..25 {
        let (status, post) = http(
            port,
            "POST",
            &format!("/api/v1/channels/{channel}/posts"),
            Some(&token),
            Some(json!({"message": format!("post {i}")})),
        )
        .unwrap();
        assert_eq!(status, 201);
        acknowledged.push(post["id"].as_str().unwrap().to_string());
    }
    first.kill().unwrap(); // SIGKILL: no graceful anything
    first.wait().unwrap();

    let mut second = server("serve", &config).spawn().unwrap();
    wait_healthy(port, &mut second);
    let (status, page) = http(
        port,
        "GET",
        &format!("/api/v1/channels/{channel}/posts?limit=200"),
        Some(&token),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "the session survives a restart: {page}");
    let mut stored: Vec<String> = page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    stored.reverse();
    assert_eq!(stored, acknowledged);

    // SIGTERM stops it cleanly.
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(second.id() as i32, libc::SIGTERM);
    }
    let status = second.wait().unwrap();
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn migrate_is_idempotent_and_bad_config_is_named() {
    let url = Postgres::shared().create_database("migrate").unwrap();
    let dir = std::env::temp_dir().join(format!("entente-process-{}-migrate", std::process::id()));
    let config = write_config(&dir, &url, free_port());
    common::create_bucket_blocking(&config);
    for _ in 0..2 {
        let output = server("migrate", &config).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tables = Postgres::shared()
        .psql(url.rsplit('/').next().unwrap(), "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('users', 'channels', 'posts')")
        .unwrap();
    assert_eq!(tables, "3");
    // A database a newer Entente migrated: this one refuses it, and says so.
    let database = url.rsplit('/').next().unwrap();
    Postgres::shared()
        .psql(database, "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (29991231000000, 'from the future', true, '\\x00', 0)")
        .unwrap();
    for command in ["migrate", "serve"] {
        let output = server(command, &config).output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("migrated by a newer Entente (migration 29991231000000"),
            "{stderr}"
        );
    }
    Postgres::shared()
        .psql(
            database,
            "DELETE FROM _sqlx_migrations WHERE version = 29991231000000",
        )
        .unwrap();

    std::fs::write(dir.join("broken.yaml"), "version: 1\nworkspace: {}\n").unwrap();
    let output = server("serve", &dir.join("broken.yaml")).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.yaml is not a valid RuntimeConfig"),
        "{stderr}"
    );

    let text = std::fs::read_to_string(&config).unwrap();
    let no_password = format!(
        "adminPassword: {{file: {}/admin-password}}, ",
        dir.display()
    );
    assert!(text.contains(&no_password));
    std::fs::write(dir.join("no-password.yaml"), text.replace(&no_password, "")).unwrap();
    let output = server("serve", &dir.join("no-password.yaml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("identity.local.adminPassword is required"),
        "{stderr}"
    );

    let output = server("serve", &dir.join("missing.yaml")).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.yaml"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A workspace on a PostgreSQL of its own, so stopping it does not
/// disturb the other tests; and its database's URL.
async fn on_own_database(name: &str) -> (std::sync::Arc<Postgres>, Workspace, String) {
    let pg = std::sync::Arc::new(Postgres::start().unwrap());
    let url = pg.create_database(name).unwrap();
    let dir = std::env::temp_dir().join(format!("entente-process-{}-{name}", std::process::id()));
    let config = entente_crds::config::RuntimeConfig::load(&write_config(&dir, &url, 0)).unwrap();
    let state = entente_runtime::server::prepare(config).await.unwrap();
    let ws = Workspace {
        router: entente_runtime::server::router(state.clone()),
        state,
        dir,
    };
    (pg, ws, url)
}

/// A 503 that says nothing was changed.
fn nothing_changed((status, error): (axum::http::StatusCode, serde_json::Value)) {
    assert_eq!(
        status,
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{error}"
    );
}

#[tokio::test]
async fn a_dead_database_is_503_and_nothing_is_half_written() {
    let (pg, ws, _) = on_own_database("dead").await;
    let admin = ws.admin().await;
    let channel = ws.channel(&admin, "ops", "public").await;
    let port = common::serve(&ws).await;
    let (mut socket, _) = common::connect(port, &admin, None).await;

    pg.stop();
    // Open WebSockets are told, so clients stop posting into the void.
    let status = common::next(&mut socket).await;
    assert_eq!(
        status,
        json!({"type": "status", "database": "unavailable"}),
        "{status}"
    );
    nothing_changed(
        ws.post(
            &format!("/api/v1/channels/{channel}/posts"),
            &admin,
            json!({"message": "lost?"}),
        )
        .await,
    );
    let ready = ws
        .call(axum::http::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(ready.0, axum::http::StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn config_changes_apply_live_or_are_named_as_needing_a_restart() {
    let url = Postgres::shared().create_database("reload").unwrap();
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("entente-process-{}-reload", std::process::id()));
    let config = write_config(&dir, &url, port);
    common::create_bucket_blocking(&config);
    let mut child = server("serve", &config).spawn().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let guard = KillOnDrop(child);
    wait_ready(port);
    let token = common::admin_token(port);
    let original = std::fs::read_to_string(&config).unwrap();

    // A live change: the rate limit drops and starts refusing.
    std::fs::write(
        &config,
        original.replace("requestsPerMinute: 100000", "requestsPerMinute: 2"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = http(port, "GET", "/api/v1/users/me", Some(&token), None).unwrap();
        if status == 429 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new rate limit never took effect"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A broken file is refused and the server keeps serving.
    std::fs::write(&config, "version: 1\nthis is: [not a config\n").unwrap();
    wait_for_log(&log, "config change refused");
    assert_eq!(http(port, "GET", "/healthz", None, None).unwrap().0, 200);

    // A change that needs a restart is named, and not applied.
    std::fs::write(
        &config,
        original.replace(
            &format!("http: \"127.0.0.1:{port}\""),
            "http: \"127.0.0.1:1\"",
        ),
    )
    .unwrap();
    wait_for_log(&log, "take effect only after a restart");
    assert!(
        log.lock().unwrap().contains("listen"),
        "{}",
        log.lock().unwrap()
    );
    assert_eq!(http(port, "GET", "/healthz", None, None).unwrap().0, 200);
    drop(guard);
    std::fs::remove_dir_all(dir).unwrap();
}

fn wait_for_log(log: &std::sync::Mutex<String>, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log.lock().unwrap().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no log line with {needle:?}:\n{}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_admin_endpoint_reports_health_and_counts() {
    use entente_runtime::server::admin::proto::{
        admin_client::AdminClient, CountsRequest, HealthRequest,
    };
    let url = Postgres::shared().create_database("admin").unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("entente-process-{}-admin", std::process::id()));
    let config = write_config(&dir, &url, port);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "admin: \"127.0.0.1:0\"",
        &format!("admin: \"127.0.0.1:{admin_port}\""),
    );
    std::fs::write(&config, text).unwrap();
    common::create_bucket_blocking(&config);
    let server = KillOnDrop(server("serve", &config).spawn().unwrap());
    wait_ready(port);
    let token = common::admin_token(port);
    let channel = common::public_channel(port, &token, "ops");
    http(
        port,
        "POST",
        &format!("/api/v1/channels/{channel}/posts"),
        Some(&token),
        Some(json!({"message": "one"})),
    )
    .unwrap();

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut client = AdminClient::connect(format!("http://127.0.0.1:{admin_port}"))
            .await
            .unwrap();
        let health = client.health(HealthRequest {}).await.unwrap().into_inner();
        assert!(health.ready, "{health:?}");
        assert_eq!(
            (health.database.as_str(), health.object_storage.as_str()),
            ("ok", "ok")
        );
        assert_eq!(health.config_version, 1);
        let counts = client.counts(CountsRequest {}).await.unwrap().into_inner();
        assert_eq!(
            (counts.users, counts.guests, counts.channels, counts.posts),
            (1, 0, 1, 1)
        );
        assert!(counts.latest_event_seq >= 2, "{counts:?}");
    });
    drop(server);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A request waiting inside its transaction when PostgreSQL shuts down is
/// told 503 (the transaction was rolled back: nothing was changed), not 500.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_cut_by_a_database_shutdown_is_503() {
    use sqlx::Connection;
    let (pg, ws, url) = on_own_database("cut").await;
    let ws = std::sync::Arc::new(ws);
    let admin = ws.admin().await;
    let channel = ws.channel(&admin, "ops", "public").await;
    // Another session holds the posts table, so the post waits in its transaction.
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let request = {
        let ws = ws.clone();
        tokio::spawn(async move {
            ws.post(
                &format!("/api/v1/channels/{channel}/posts"),
                &admin,
                json!({"message": "cut short"}),
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !request.is_finished(),
        "the post should be waiting for the lock"
    );
    let stopping = pg.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap();
    nothing_changed(request.await.unwrap());
}
