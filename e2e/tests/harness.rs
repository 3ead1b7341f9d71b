//! The test infrastructure itself: real servers that check credentials, and
//! that never outlive the test binary that started them.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use entente_e2e::{port_is_open, Postgres, S3Server};

#[test]
fn postgres_gives_each_caller_its_own_database_behind_a_password() {
    let pg = Postgres::shared();
    let a = pg.create_database("harness").unwrap();
    let b = pg.create_database("harness").unwrap();
    assert_ne!(a, b);
    let name = a.rsplit('/').next().unwrap();
    pg.psql(name, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
        .unwrap();
    assert_eq!(pg.psql(name, "SELECT x FROM t").unwrap(), "42");
    let other = b.rsplit('/').next().unwrap();
    assert!(
        pg.psql(other, "SELECT x FROM t").is_err(),
        "databases are isolated"
    );

    let wrong = Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-U",
            pg.user(),
            "-d",
            "postgres",
            "-c",
            "SELECT 1",
        ])
        .arg("-p")
        .arg(pg.port().to_string())
        .env("PGPASSWORD", "not-the-password")
        .output();
    if let Ok(output) = wrong {
        assert!(!output.status.success(), "a wrong password must be refused");
        assert!(String::from_utf8_lossy(&output.stderr).contains("password authentication failed"));
    }
}

#[test]
fn s3_refuses_unsigned_and_wrongly_signed_requests_and_serves_signed_ones() {
    let s3 = S3Server::shared();

    // Unsigned: no Authorization header at all. moto refuses it (with a 500:
    // it fails to route a request without credentials); what matters is that
    // nothing is served.
    let mut stream = TcpStream::connect(("127.0.0.1", s3.port())).unwrap();
    write!(
        stream,
        "GET /harness-check HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        s3.port()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap_or_default();
    assert!(
        !status.starts_with('2'),
        "unsigned request was served: {response}"
    );

    // A real S3 client (boto3) with the harness's key, and with a wrong secret.
    let script = r#"
import sys, boto3, botocore
endpoint, key, secret = sys.argv[1:4]
def client(secret):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=botocore.config.Config(s3={"addressing_style": "path"}))
good = client(secret)
good.create_bucket(Bucket="harness-check")
good.put_object(Bucket="harness-check", Key="hello.txt", Body=b"bonjour")
assert good.get_object(Bucket="harness-check", Key="hello.txt")["Body"].read() == b"bonjour"
try:
    client("wrong-secret").list_buckets()
    print("UNCHECKED")
except botocore.exceptions.ClientError as e:
    print(e.response["Error"]["Code"])
"#;
    let output = Command::new(std::env::var("ENTENTE_PYTHON").unwrap_or("python3".into()))
        .args([
            "-c",
            script,
            &s3.endpoint(),
            s3.access_key_id(),
            s3.secret_access_key(),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "SignatureDoesNotMatch"
    );
}

#[test]
fn owned_servers_stop_when_dropped_during_a_panic() {
    // In this process, so only the handles' own teardown can close the ports
    // (the parent-death signal does not fire while the process lives).
    let mut seen = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let pg = Postgres::start().unwrap();
        let s3 = S3Server::start().unwrap();
        seen = Some((pg.port(), pg.data_dir(), s3.port()));
        panic!("a test failed while its servers were running");
    }));
    assert!(result.is_err());
    let (pg_port, pg_data, s3_port) = seen.unwrap();
    assert!(
        !port_is_open(pg_port),
        "postgres still listening after drop"
    );
    assert!(!port_is_open(s3_port), "moto still listening after drop");
    assert!(!pg_data.exists(), "{} left behind", pg_data.display());
}

struct Probe {
    pg_port: u16,
    pg_dir: String,
    s3_port: u16,
    s3_dir: String,
}

fn run_probe(mode: &str) -> (std::process::Child, Probe) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_entente-e2e-probe"))
        .arg(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("probe printed no {name}: {line:?}"))
            .to_string()
    };
    let probe = Probe {
        pg_port: field("pg_port").parse().unwrap(),
        pg_dir: field("pg_dir"),
        s3_port: field("s3_port").parse().unwrap(),
        s3_dir: field("s3_dir"),
    };
    (child, probe)
}

fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_gone(probe: &Probe, dirs_too: bool) {
    eventually("postgres still listening", || !port_is_open(probe.pg_port));
    eventually("moto still listening", || !port_is_open(probe.s3_port));
    if dirs_too {
        assert!(
            !Path::new(&probe.pg_dir).exists(),
            "{} left behind",
            probe.pg_dir
        );
        assert!(
            !Path::new(&probe.s3_dir).exists(),
            "{} left behind",
            probe.s3_dir
        );
    }
}

#[test]
fn servers_are_torn_down_when_a_test_panics() {
    let (mut child, probe) = run_probe("owned-panic");
    assert!(port_is_open(probe.pg_port) || !child.wait().unwrap().success());
    assert!(!child.wait().unwrap().success(), "the probe panicked");
    assert_gone(&probe, true);
}

#[test]
fn shared_servers_stop_when_the_test_binary_exits() {
    let (mut child, probe) = run_probe("shared-exit");
    assert!(child.wait().unwrap().success());
    assert_gone(&probe, true);
}

#[test]
fn servers_die_with_a_killed_test_binary_and_their_files_are_swept_later() {
    let (mut child, probe) = run_probe("shared-hang");
    assert!(port_is_open(probe.pg_port) && port_is_open(probe.s3_port));
    child.kill().unwrap(); // SIGKILL: no destructor, no atexit
    child.wait().unwrap();
    assert_gone(&probe, false);
    // The next harness server sweeps directories of processes that are gone.
    let _pg = Postgres::start().unwrap();
    assert!(
        !Path::new(&probe.pg_dir).exists(),
        "{} was not swept",
        probe.pg_dir
    );
    assert!(
        !Path::new(&probe.s3_dir).exists(),
        "{} was not swept",
        probe.s3_dir
    );
}
