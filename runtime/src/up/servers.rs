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
    beside_this("entente-server", "entente-runtime")
}

/// `entente-sfu`, next to this binary.
pub(crate) fn sfu_binary() -> Result<PathBuf, UpError> {
    beside_this("entente-sfu", "entente-media")
}

fn beside_this(program: &str, package: &str) -> Result<PathBuf, UpError> {
    let exe =
        std::env::current_exe().map_err(|e| UpError(format!("cannot find this program: {e}")))?;
    let path = exe.with_file_name(program);
    if path.is_file() {
        Ok(path)
    } else {
        Err(UpError(format!(
            "{} not found; build it with `cargo build -p {package}`",
            path.display()
        )))
    }
}

/// A process `entente up` started and watches, and how to start it again.
pub(crate) struct Running {
    /// What it is, as messages name it: `the server of Workspace "x"`.
    pub what: String,
    pub log: PathBuf,
    pub child: Child,
    program: PathBuf,
    args: Vec<std::ffi::OsString>,
    /// Where it answers 200 once ready.
    ready_at: (std::net::SocketAddr, &'static str),
}

/// Starts `program args`, its output appended to `log`.
fn launch(
    what: &str,
    program: &Path,
    args: &[std::ffi::OsString],
    log: &Path,
) -> Result<Child, UpError> {
    let file = super::files::open_log(log)?;
    let mut command = Command::new(program);
    command.args(args);
    die_with_parent(&mut command, libc::SIGTERM);
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|e| UpError(e.to_string()))?)
        .stderr(file)
        .spawn()
        .map_err(|e| UpError(format!("cannot start {what}: {e}")))
}

impl Running {
    /// Starts it again (after it exited) and waits until it is ready.
    pub async fn restart(&mut self) -> Result<(), UpError> {
        self.child = launch(&self.what, &self.program, &self.args, &self.log)?;
        wait_ready(self).await
    }
}

/// Starts `program args` (its output appended to `log`) and waits until it
/// answers 200 on the path at the address of `ready_at`.
pub(crate) async fn start(
    what: String,
    program: &Path,
    args: Vec<std::ffi::OsString>,
    log: PathBuf,
    ready_at: (std::net::SocketAddr, &'static str),
    running: &mut Vec<Running>,
) -> Result<(), UpError> {
    let child = launch(&what, program, &args, &log)?;
    running.push(Running {
        what,
        log,
        child,
        program: program.to_path_buf(),
        args,
        ready_at,
    });
    wait_ready(running.last_mut().expect("just pushed")).await
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
    running: &mut Vec<Running>,
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
        // Rendered as the operator renders it: partners' CA bundles read
        // from their files, the SFU nodes `entente up` started.
        let secrets = super::partners::secrets(local, &plan.partners);
        let secret = |name: &str| {
            secrets
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name))
        };
        let calls = spec.features.calls.as_ref().and_then(|feature| {
            plan.calls
                .iter()
                .find(|c| c.name() == feature.calls_cluster_ref)
        });
        let urls = calls.map(|c| c.urls()).unwrap_or_default();
        let apertium_url = plan.apertium.map(|a| format!("http://{a}"));
        let translation_key = match entente_crds::render::translation::key_secret(&local.workspace)
        {
            Some(key) => {
                let file = local.secret_file(&key.name, &key.key);
                Some(std::fs::read(&file).map_err(|e| {
                    UpError(format!(
                        "Workspace {name:?} needs the secret file {} (it holds Secret {:?} key {:?} in a cluster): {e}",
                        file.display(),
                        key.name,
                        key.key
                    ))
                })?)
            }
            None => None,
        };
        let model = spec.features.ai.as_ref().and_then(|feature| {
            plan.models
                .iter()
                .find(|m| m.name() == feature.language_model_ref)
        });
        let model_key = match model.and_then(|m| m.key_file()) {
            Some(file) => Some(std::fs::read(&file).map_err(|e| {
                UpError(format!(
                    "the API key of LanguageModel {:?} ({}): {e}",
                    model.map(|m| m.name()).unwrap_or_default(),
                    file.display()
                ))
            })?),
            None => None,
        };
        let key = match calls {
            Some(calls) => Some(secret_text(&calls.key_file(), 48)?),
            None => None,
        };
        let rendered = render::render(
            &local.workspace,
            &local.placement,
            Attached {
                guest_policies: &plan.guest_policies,
                access_policies: &plan.access_policies,
                partners: &plan.partners,
                secret: &secret,
                calls: calls.map(|c| (&c.cluster, urls.as_slice())),
                calls_key: key.as_deref().map(str::as_bytes),
                language_model: model.map(|m| (&m.model, model_key.as_deref())),
                apertium_url: apertium_url.as_deref(),
                translation_key: translation_key.as_deref(),
            },
        )
        .map_err(|e| UpError(e.to_string()))?;
        for (name, contents) in &rendered.files {
            write_private(&local.placement.config_dir.join(name), contents)?;
        }
        write_private(&local.config_file(), rendered.config.to_yaml().as_bytes())?;

        start(
            format!("the server of Workspace {name:?}"),
            server,
            vec![
                "serve".into(),
                "--config".into(),
                local.config_file().into(),
            ],
            local.dir.join("server.log"),
            (local.placement.listen.http, "/readyz"),
            running,
        )
        .await?;
    }
    Ok(())
}

/// The launcher of llama.cpp's server (xllamacpp): the tests' model peer
/// runs through it too.
const MODEL_SERVER: &str = include_str!("model_server.py");

/// Whether every model server `up` would run can run here: its Python
/// has xllamacpp, and its model file is there. Checked before anything starts.
pub(crate) fn check_models(plan: &Plan) -> Result<(), UpError> {
    let python = std::env::var_os("ENTENTE_PYTHON").unwrap_or_else(|| "python3".into());
    for model in &plan.models {
        let Some(hosted) = model
            .model
            .spec
            .self_hosted
            .as_ref()
            .filter(|_| model.listen.is_some())
        else {
            continue;
        };
        let output = Command::new(&python)
            .args(["-c", MODEL_SERVER, "--check", "--port", "0", "--model"])
            .arg(hosted.local_model.clone().unwrap_or_default())
            .output()
            .map_err(|e| UpError(format!("cannot run {}: {e}", Path::new(&python).display())))?;
        if !output.status.success() {
            return Err(UpError(format!(
                "LanguageModel {:?} cannot be served here: {}",
                model.name(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// Starts a model server for every LanguageModel `up` runs (its key made
/// once and kept), each as the operator's Deployment would serve it: the
/// spec's chat model name, its key required.
pub(crate) async fn start_models(plan: &Plan, running: &mut Vec<Running>) -> Result<(), UpError> {
    let python = std::env::var_os("ENTENTE_PYTHON").unwrap_or_else(|| "python3".into());
    for model in &plan.models {
        let (Some(listen), Some(hosted)) = (model.listen, &model.model.spec.self_hosted) else {
            continue;
        };
        let key = model.key_file().expect("a model server always has a key");
        secret_text(&key, 48)?;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
        start(
            format!("the model server of LanguageModel {:?}", model.name()),
            Path::new(&python),
            vec![
                "-c".into(),
                MODEL_SERVER.into(),
                "--model".into(),
                hosted.local_model.clone().unwrap_or_default().into(),
                "--port".into(),
                listen.port().to_string().into(),
                "--alias".into(),
                model.model.spec.chat_model.clone().into(),
                "--api-key-file".into(),
                key.into(),
                "--threads".into(),
                threads.to_string().into(),
            ],
            model.dir.join("model-server.log"),
            (listen, "/health"),
            running,
        )
        .await?;
    }
    Ok(())
}

/// The launcher of Apertium's service (Debian's apertium-apy) on one address.
const APERTIUM_SERVER: &str = include_str!("apertium_server.py");

/// Starts Apertium's service when a Workspace's translation asks for one
/// without naming it.
pub(crate) async fn start_apertium(plan: &Plan, running: &mut Vec<Running>) -> Result<(), UpError> {
    let Some(listen) = plan.apertium else {
        return Ok(());
    };
    let dir = plan.data_dir.join("apertium");
    std::fs::create_dir_all(&dir).map_err(|e| UpError(format!("{}: {e}", dir.display())))?;
    // Scheduled only when the machine is otherwise idle (SCHED_IDLE): on
    // one machine posting goes first, and translations (never on
    // posting's path) catch up when it eases.
    start(
        "Apertium's translation service".into(),
        Path::new("/usr/bin/chrt"),
        vec![
            "--idle".into(),
            "0".into(),
            "/usr/bin/python3".into(),
            "-c".into(),
            APERTIUM_SERVER.into(),
            listen.ip().to_string().into(),
            listen.port().to_string().into(),
        ],
        dir.join("apertium.log"),
        (listen, "/listPairs"),
        running,
    )
    .await
}

/// Starts every SFU node of the plan, each with the MediaConfig the
/// operator would give its pod (the join-token key made once and kept).
pub(crate) async fn start_sfus(
    plan: &Plan,
    sfu: &Path,
    running: &mut Vec<Running>,
) -> Result<(), UpError> {
    for calls in &plan.calls {
        secret_text(&calls.key_file(), 48)?;
        for (i, listen) in calls.nodes.iter().enumerate() {
            let dir = calls.node_dir(i);
            let media = calls.media_config(i);
            write_private(&dir.join("media.yaml"), media.to_yaml().as_bytes())?;
            start(
                format!("SFU node {i} of CallsCluster {:?}", calls.name()),
                sfu,
                vec!["--config".into(), dir.join("media.yaml").into()],
                dir.join("sfu.log"),
                (*listen, "/healthz"),
                running,
            )
            .await?;
        }
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

async fn wait_ready(process: &mut Running) -> Result<(), UpError> {
    let (address, path) = process.ready_at;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = process.child.try_wait() {
            // What this run wrote: the log keeps earlier runs too.
            let log = std::fs::read_to_string(&process.log).unwrap_or_default();
            let this_run = log
                .rsplit("--- entente up started")
                .next()
                .unwrap_or_default();
            return Err(UpError(format!(
                "{} exited ({status}); from {}:\n--- entente up started{this_run}",
                process.what,
                process.log.display()
            )));
        }
        if ready(address, path).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(UpError(format!(
                "{} did not become ready within 60 s; see {}",
                process.what,
                process.log.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET path` answers 200.
async fn ready(address: std::net::SocketAddr, path: &str) -> bool {
    // A server that accepts but does not answer yet is not ready; it is
    // asked again (and its deadline checked) rather than waited on.
    tokio::time::timeout(Duration::from_secs(2), get_ok(address, path))
        .await
        .ok()
        .flatten()
        .is_some()
}

/// The body of `GET path` at `address`, if it answers 200.
pub(crate) async fn get_ok(address: std::net::SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    if !response.starts_with("HTTP/1.1 200") {
        return None;
    }
    Some(response.split_once("\r\n\r\n")?.1.to_string())
}
