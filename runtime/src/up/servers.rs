//! The `entente-server` processes of `entente up`: found, configured,
//! started, waited for, and stopped with `entente up` whatever happens to it.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use entente_crds::render::{self, certs, paths, Attached};

use super::{
    database::Database,
    files::{secret_text, write_private},
    objects,
    plan::{self, Plan},
    UpError,
};

/// `entente-server`, next to this binary.
pub(crate) fn server_binary() -> Result<PathBuf, UpError> {
    let exe =
        std::env::current_exe().map_err(|e| UpError(format!("cannot find this program: {e}")))?;
    let server = exe.with_file_name("entente-server");
    if server.is_file() {
        Ok(server)
    } else {
        Err(UpError(format!(
            "{} not found; build it with `cargo build -p entente-runtime`",
            server.display()
        )))
    }
}

/// Has `command`'s process receive `signal` if `entente up` dies without
/// stopping it (SIGKILL, a crash), so nothing outlives it.
pub(crate) use entente_process::die_with_parent;

/// Stops a child `entente up` started: `signal`, then SIGKILL after 15 s.
pub(crate) fn stop_child(child: &mut Child, signal: i32) {
    entente_process::stop(child, signal, Duration::from_secs(15));
}

pub(crate) async fn start_servers(
    plan: &Plan,
    server: &Path,
    database: &Database,
    credentials: &objects::Credentials,
    servers: &mut Vec<(String, Child)>,
) -> Result<(), UpError> {
    for local in &plan.workspaces {
        let name = local.name();
        let spec = &local.workspace.spec;
        let store = entente_s3::Connection {
            endpoint: plan.objects.endpoint(),
            region: spec.object_storage.region.clone(),
            force_path_style: spec.object_storage.force_path_style,
            access_key_id: credentials.access_key_id.clone(),
            secret_access_key: credentials.secret_access_key.clone(),
            ca_pem: None,
        }
        .client()
        .map_err(|e| UpError(e.to_string()))?;
        let at = |place| local.placement.secret(place);
        write_private(
            &at(paths::DATABASE_URL),
            database.database(&local.database()).await?.as_bytes(),
        )?;
        write_private(
            &at(paths::S3_ACCESS_KEY),
            credentials.access_key_id.as_bytes(),
        )?;
        write_private(
            &at(paths::S3_SECRET_KEY),
            credentials.secret_access_key.as_bytes(),
        )?;
        if spec.identity.local.enabled {
            secret_text(&at(paths::ADMIN_PASSWORD), 24)?;
        }
        federation_certificates(local)?;
        entente_s3::ensure_bucket(
            &store,
            &spec.object_storage.region,
            &spec.object_storage.bucket,
            entente_s3::BucketOptions {
                object_lock: spec.object_storage.object_lock,
            },
        )
        .await
        .map_err(|e| {
            UpError(format!(
                "Workspace {name:?}: bucket {:?}: {e}",
                spec.object_storage.bucket
            ))
        })?;
        // Rendered as the operator renders it, partners' CA bundles read
        // from their files. Calls are not run by `entente up` yet (the plan
        // says so), so none are attached.
        let secrets = super::partners::secrets(local, &plan.partners);
        let secret = |name: &str| {
            secrets
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name))
        };
        let rendered = render::render(
            &local.workspace,
            &local.placement,
            Attached {
                guest_policies: &plan.guest_policies,
                access_policies: &plan.access_policies,
                partners: &plan.partners,
                secret: &secret,
                ..Attached::none()
            },
        )
        .map_err(|e| UpError(e.to_string()))?;
        for (name, contents) in &rendered.files {
            write_private(&local.placement.config_dir.join(name), contents)?;
        }
        write_private(&local.config_file(), rendered.config.to_yaml().as_bytes())?;

        let log_path = local.dir.join("server.log");
        let log = super::files::open_log(&log_path)?;
        let mut command = Command::new(server);
        die_with_parent(&mut command, libc::SIGTERM);
        let child = command
            .arg("serve")
            .arg("--config")
            .arg(local.config_file())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| UpError(e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| UpError(format!("cannot start {}: {e}", server.display())))?;
        servers.push((name.clone(), child));
        wait_ready(
            &name,
            local.placement.listen.http,
            &log_path,
            &mut servers.last_mut().expect("just pushed").1,
        )
        .await?;
    }
    Ok(())
}

/// The federation CA and certificate, issued and renewed exactly as the
/// operator does, kept under the workspace's secrets.
fn federation_certificates(local: &plan::LocalWorkspace) -> Result<(), UpError> {
    let at = |place| local.placement.secret(place);
    let read = |cert: PathBuf, key: PathBuf| {
        Some(certs::Pair {
            cert: std::fs::read_to_string(cert).ok()?,
            key: std::fs::read_to_string(key).ok()?,
        })
    };
    let ca_dir = local.dir.join("federation-ca");
    let federation = &local.workspace.spec.federation;
    let seconds = |text: &str| certs::duration_seconds(text).map_err(UpError);
    let names = [render::federation_identity(&local.workspace)];
    let issued = certs::ensure(
        read(ca_dir.join("ca.crt"), ca_dir.join("ca.key")),
        read(at(paths::FEDERATION_CERT), at(paths::FEDERATION_KEY)),
        &certs::Wanted {
            names: &names,
            organisation: &local.workspace.spec.organisation,
            lifetime_seconds: seconds(&federation.certificate_duration)?,
            renew_before_seconds: seconds(&federation.renew_before)?,
        },
        k8s_openapi::jiff::Timestamp::now().as_second(),
    )
    .map_err(UpError)?;
    write_private(&ca_dir.join("ca.crt"), issued.ca.cert.as_bytes())?;
    write_private(&ca_dir.join("ca.key"), issued.ca.key.as_bytes())?;
    write_private(&at(paths::FEDERATION_CA), issued.ca.cert.as_bytes())?;
    write_private(&at(paths::FEDERATION_CERT), issued.server.cert.as_bytes())?;
    write_private(&at(paths::FEDERATION_KEY), issued.server.key.as_bytes())
}

async fn wait_ready(
    name: &str,
    address: std::net::SocketAddr,
    log: &Path,
    child: &mut Child,
) -> Result<(), UpError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(UpError(format!(
                "the server of Workspace {name:?} exited ({status}):\n{log}"
            )));
        }
        if ready(address).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(UpError(format!(
                "the server of Workspace {name:?} did not become ready within 60 s; see {}",
                log.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET /readyz` answers 200.
async fn ready(address: std::net::SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
        return false;
    };
    let request = "GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    response.starts_with(b"HTTP/1.1 200")
}
