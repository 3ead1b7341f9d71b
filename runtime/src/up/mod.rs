//! `entente up PATH…`: the manifests a cluster admin applies, run on this
//! machine — one `entente-server` per Workspace, a PostgreSQL cluster under
//! the data directory (or `DATABASE_URL`), and a local S3 endpoint over it.
//! The RuntimeConfig each server gets comes from the operator's builder;
//! only the [`Placement`] (local ports, secret files under the data
//! directory) differs.
//!
//! Everything that can fail is checked before anything starts: the manifests
//! (schema and CEL), free ports, the PostgreSQL binaries, `entente-server`
//! beside this binary. Ctrl-C stops everything; running again reuses the data.

mod backup;
mod database;
mod files;
mod objects;
mod partners;
pub mod plan;
mod servers;
mod status;

pub use backup::{backup, restore};
pub use status::status;

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    time::Duration,
};

use entente_crds::render::paths;
use entente_crds::validate::Resource;

use self::{
    database::Database,
    plan::Plan,
    servers::{
        server_binary, sfu_binary, start_apertium, start_models, start_servers, start_sfus,
        stop_child, Running,
    },
};

pub use entente_crds::render::Placement;

/// Why `entente up` stopped; the text says what to do.
#[derive(Debug)]
pub struct UpError(pub String);

impl std::fmt::Display for UpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct Options {
    pub paths: Vec<PathBuf>,
    pub data_dir: PathBuf,
    /// The first workspace's HTTP port; see [`plan::plan`] for the rest.
    pub port: u16,
    pub check: bool,
    /// An S3 store to use instead of the local endpoint.
    pub s3_endpoint: Option<String>,
}

pub const USAGE: &str = "usage: entente up [--check] [--data-dir DIR] [--port N] [--s3-endpoint URL] PATH…\n\
  DATABASE_URL: use that PostgreSQL; with --s3-endpoint, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are the credentials";

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            paths: Vec::new(),
            data_dir: default_data_dir(),
            port: 8080,
            check: false,
            s3_endpoint: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--check" => options.check = true,
                "--data-dir" => {
                    options.data_dir = args.next().ok_or("--data-dir needs a directory")?.into()
                }
                "--s3-endpoint" => {
                    options.s3_endpoint =
                        Some(args.next().ok_or("--s3-endpoint needs a URL")?.clone())
                }
                "--port" => {
                    let value = args.next().ok_or("--port needs a number")?;
                    options.port = value
                        .parse()
                        .map_err(|_| format!("--port: {value:?} is not a port number"))?;
                }
                flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
                path => options.paths.push(path.into()),
            }
        }
        if options.paths.is_empty() {
            return Err("give at least one manifest file or directory".into());
        }
        Ok(options)
    }
}

/// `$XDG_DATA_HOME/entente`, else `~/.local/share/entente`; for root,
/// `/var/lib/entente` (root's home is closed to the `postgres` user that
/// PostgreSQL then runs as).
pub fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/entente");
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("entente")
}

/// The workspaces `entente up` has written a RuntimeConfig for under
/// `data_dir`, by name.
pub(crate) fn site_workspaces(data_dir: &Path) -> Result<Vec<String>, String> {
    let workspaces = data_dir.join("workspaces");
    let mut found: Vec<String> = std::fs::read_dir(&workspaces)
        .map_err(|e| {
            format!(
                "no site in {} ({e}): give the --data-dir `entente up` was given",
                data_dir.display()
            )
        })?
        .flatten()
        .filter(|entry| entry.path().join(paths::CONFIG_FILE).is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    Ok(found)
}

/// The RuntimeConfig `entente up` wrote for a workspace under `data_dir`:
/// the one named, or the only one there.
pub fn site_config(data_dir: &Path, workspace: Option<&str>) -> Result<PathBuf, String> {
    let workspaces = data_dir.join("workspaces");
    let found = site_workspaces(data_dir)?;
    let name = match (workspace, found.as_slice()) {
        (Some(name), _) if found.iter().any(|f| f == name) => name.to_string(),
        (Some(name), _) => {
            return Err(format!(
                "no workspace {name:?} in {} (there: {})",
                workspaces.display(),
                found.join(", ")
            ))
        }
        (None, [only]) => only.clone(),
        (None, []) => {
            return Err(format!(
                "no workspace has run under {} yet: run `entente up` first",
                workspaces.display()
            ))
        }
        (None, several) => {
            return Err(format!(
                "{} holds several workspaces ({}): say which with --workspace NAME",
                workspaces.display(),
                several.join(", ")
            ))
        }
    };
    Ok(workspaces.join(name).join(paths::CONFIG_FILE))
}

/// Validates and plans; `--check` stops here.
pub fn prepare(options: &Options) -> Result<Plan, UpError> {
    let report = crate::check::check_paths(&options.paths);
    print!("{}", report.render());
    if !report.is_ok() {
        return Err(UpError(
            "the manifests above are not valid; nothing was started".into(),
        ));
    }
    let resources: Vec<Resource> = report.accepted.into_iter().map(|(_, r)| r).collect();
    let data_dir = absolute(&options.data_dir)?;
    plan::plan(
        &resources,
        &data_dir,
        options.port,
        options.s3_endpoint.as_deref(),
    )
    .map_err(UpError)
}

pub fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    for local in &plan.workspaces {
        out.push_str(&format!(
            "workspace {:<16} http://{}  (admin gRPC {}, metrics {}, data in {})\n",
            local.name(),
            local.placement.listen.http,
            local.placement.listen.admin,
            local
                .placement
                .listen
                .metrics
                .map_or("off".into(), |m| format!("http://{m}/metrics")),
            local.dir.display()
        ));
        out.push_str(&describe_federation(local, plan));
    }
    if let Some(apertium) = plan.apertium {
        out.push_str(&format!(
            "translate Apertium's service (apertium-apy) on http://{apertium}\n"
        ));
    }
    for model in &plan.models {
        out.push_str(&match (&model.listen, &model.model.spec.self_hosted) {
            (Some(listen), Some(hosted)) => format!(
                "model     {:?}: llama.cpp's server (xllamacpp) serving {} as {:?} on http://{listen}\n",
                model.name(),
                hosted.local_model.as_deref().unwrap_or_default(),
                model.model.spec.chat_model
            ),
            _ => format!(
                "model     {:?}: the external endpoint {}\n",
                model.name(),
                entente_crds::render::ai::endpoint(&model.model).unwrap_or_default()
            ),
        });
    }
    for calls in &plan.calls {
        out.push_str(&format!(
            "calls     {:?}: {} SFU node(s) signalling on {}\n",
            calls.name(),
            calls.nodes.len(),
            calls.urls().join(", ")
        ));
    }
    out.push_str(&match &plan.objects {
        plan::Objects::Local { .. } => {
            format!("objects   local S3 endpoint {}\n", plan.objects.endpoint())
        }
        plan::Objects::Given { endpoint } => format!("objects   S3 at {endpoint}\n"),
    });
    for note in &plan.not_run {
        out.push_str(&format!("not run   {note}\n"));
    }
    out
}

/// What a partner's admin needs to link to `local` (its identity, endpoint
/// and CA bundle), and what became of each of its PartnerConnections.
fn describe_federation(local: &plan::LocalWorkspace, plan: &Plan) -> String {
    let mut out = format!(
        "federation {:?}: identity {}, endpoint https://{}, CA bundle for partners {}\n",
        local.name(),
        entente_crds::render::federation_identity(&local.workspace),
        local.placement.listen.federation,
        local.federation_ca().display()
    );
    let own_id = entente_crds::render::runtime_config::build(&local.workspace, &local.placement)
        .map(|config| config.workspace.id)
        .unwrap_or_default();
    let secrets = partners::secrets(local, &plan.partners);
    for link in partners::links(local, &own_id, &plan.partners, &secrets) {
        out.push_str(&match link.shared {
            Ok(channels) => format!(
                "partner   {:?} -> {} at {}: sharing {}\n",
                local.name(),
                link.partner,
                link.endpoint,
                channels.join(", ")
            ),
            Err(why) => format!(
                "partner   {:?} -> {}: not linked: {why}\n",
                local.name(),
                link.partner
            ),
        });
    }
    out
}

fn absolute(path: &Path) -> Result<PathBuf, UpError> {
    std::fs::create_dir_all(path).map_err(|e| UpError(format!("{}: {e}", path.display())))?;
    path.canonicalize()
        .map_err(|e| UpError(format!("{}: {e}", path.display())))
}

/// Every port the plan needs must be free before anything starts.
fn check_ports(plan: &Plan) -> Result<Option<tokio::net::TcpListener>, UpError> {
    for local in &plan.workspaces {
        let listen = &local.placement.listen;
        for (what, address) in [
            ("HTTP", listen.http),
            ("admin", listen.admin),
            ("federation", listen.federation),
        ]
        .into_iter()
        .chain(listen.metrics.map(|m| ("metrics", m)))
        {
            std::net::TcpListener::bind(address).map_err(|e| {
                UpError(format!(
                    "port {} (Workspace {:?} {what}) is not free: {e}; choose other ports with --port",
                    address.port(),
                    local.name()
                ))
            })?;
        }
    }
    for calls in &plan.calls {
        for (i, listen) in calls.nodes.iter().enumerate() {
            std::net::TcpListener::bind(listen).map_err(|e| {
                UpError(format!(
                    "port {} (SFU node {i} of CallsCluster {:?}) is not free: {e}; choose other ports with --port",
                    listen.port(),
                    calls.name()
                ))
            })?;
            let media = calls.media_config(i);
            if let Some(entente_crds::config::SfuConfig {
                udp: entente_crds::config::UdpPorts::Mux(udp),
                ..
            }) = media.sfu
            {
                std::net::UdpSocket::bind(("0.0.0.0", udp)).map_err(|e| {
                    UpError(format!(
                        "UDP port {udp} (media of SFU node {i} of CallsCluster {:?}) is not free: {e}; set spec.sfu.udpPort (node i takes it + i)",
                        calls.name()
                    ))
                })?;
            }
        }
    }
    if let Some(apertium) = plan.apertium {
        std::net::TcpListener::bind(apertium).map_err(|e| {
            UpError(format!(
                "port {} (Apertium's translation service) is not free: {e}; choose other ports with --port",
                apertium.port()
            ))
        })?;
    }
    for model in &plan.models {
        if let Some(listen) = model.listen {
            std::net::TcpListener::bind(listen).map_err(|e| {
                UpError(format!(
                    "port {} (the model server of LanguageModel {:?}) is not free: {e}; choose other ports with --port",
                    listen.port(),
                    model.name()
                ))
            })?;
        }
    }
    let plan::Objects::Local { port } = plan.objects else {
        return Ok(None);
    };
    let s3 = std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        UpError(format!(
            "port {port} (the local object store) is not free: {e}; choose other ports with --port"
        ))
    })?;
    s3.set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(s3))
        .map(Some)
        .map_err(|e| UpError(format!("cannot listen for the object store: {e}")))
}

/// When something `entente up` started exited: restarted 1 s later, then
/// after twice as long each time it fails again, up to a minute; once it
/// has run a minute, a crash starts the count afresh.
#[derive(Default)]
struct Restart {
    /// When it is to be started again, while it is down.
    due: Option<std::time::Instant>,
    failures: u32,
    since: Option<std::time::Instant>,
}

impl Restart {
    const MAX: Duration = Duration::from_secs(60);

    fn delay(&self) -> Duration {
        Duration::from_secs(1 << self.failures.min(6)).min(Self::MAX)
    }

    /// Given whether it has exited: `None` while it runs, else whether a
    /// restart is due now (announcing the exit once).
    fn exited(
        &mut self,
        status: Option<std::process::ExitStatus>,
        what: &str,
        log: &str,
    ) -> Option<bool> {
        let status = status?;
        let due = match self.due {
            Some(due) => due,
            None => {
                if self.since.is_some_and(|since| since.elapsed() > Self::MAX) {
                    self.failures = 0;
                }
                let due = std::time::Instant::now() + self.delay();
                println!(
                    "{what} exited ({status}); starting it again in {} s; see {log}",
                    self.delay().as_secs()
                );
                let _ = std::io::stdout().flush();
                self.due = Some(due);
                due
            }
        };
        Some(std::time::Instant::now() >= due)
    }

    fn running(&mut self, what: &str) {
        println!("{what} is running again");
        let _ = std::io::stdout().flush();
        self.due = None;
        self.failures += 1;
        self.since = Some(std::time::Instant::now());
    }

    fn failed(&mut self, what: &str, error: &UpError) {
        self.failures += 1;
        self.due = Some(std::time::Instant::now() + self.delay());
        println!(
            "{what} did not start again ({}); next try in {} s",
            error.0.lines().next().unwrap_or_default(),
            self.delay().as_secs()
        );
        let _ = std::io::stdout().flush();
    }
}

/// Runs the plan until Ctrl-C (or SIGTERM).
pub async fn run(plan: Plan) -> Result<(), UpError> {
    // Watch for Ctrl-C and SIGTERM before starting anything, so one that
    // arrives during start-up stops what was started instead of killing
    // this process and orphaning it.
    use tokio::signal::unix::{signal, SignalKind};
    let watch = |kind| signal(kind).map_err(|e| UpError(format!("cannot watch for signals: {e}")));
    let (mut interrupt, mut term) = (
        watch(SignalKind::interrupt())?,
        watch(SignalKind::terminate())?,
    );
    // Preflight: nothing starts unless everything can.
    let s3_listener = check_ports(&plan)?;
    let server = server_binary()?;
    let sfu = if plan.calls.is_empty() {
        None
    } else {
        Some(sfu_binary()?)
    };
    Database::preflight()?;
    servers::check_models(&plan)?;
    let data_dir = plan.data_dir.clone();
    for local in &plan.workspaces {
        for mount in &local.provided {
            let path = local.placement.secret(mount.place);
            if !path.is_file() {
                return Err(UpError(format!(
                    "Workspace {:?} needs the secret file {} (it holds Secret {:?} key {:?} in a cluster); create it and run again",
                    local.name(),
                    path.display(),
                    mount.secret,
                    mount.key
                )));
            }
        }
    }

    for model in plan.models.iter().filter(|m| m.listen.is_none()) {
        if let Some(file) = model.key_file().filter(|f| !f.is_file()) {
            let key = entente_crds::render::ai::api_key_secret(&model.model, &model.name())
                .expect("a key file comes from a Secret reference");
            return Err(UpError(format!(
                "LanguageModel {:?} needs the secret file {} (it holds Secret {:?} key {:?} in a cluster); create it and run again",
                model.name(),
                file.display(),
                key.name,
                key.key
            )));
        }
    }

    let credentials = match s3_listener {
        Some(listener) => objects::start(&data_dir, listener)?,
        None => objects::from_environment()?,
    };
    let mut database = Database::start(&data_dir).await?;
    // The SFUs first: the servers' configs point at them.
    let mut running: Vec<Running> = Vec::new();
    let started = match &sfu {
        Some(sfu) => start_sfus(&plan, sfu, &mut running).await,
        None => Ok(()),
    };
    // The model servers and Apertium too: the servers' configs point at them.
    let started = match started {
        Ok(()) => start_models(&plan, &mut running).await,
        Err(e) => Err(e),
    };
    let started = match started {
        Ok(()) => start_apertium(&plan, &mut running).await,
        Err(e) => Err(e),
    };
    let started = match started {
        Ok(()) => start_servers(&plan, &server, &database, &credentials, &mut running).await,
        Err(e) => Err(e),
    };
    if let Err(e) = started {
        for process in running.iter_mut().rev() {
            stop_child(&mut process.child, libc::SIGTERM);
        }
        database.stop();
        return Err(e);
    }
    println!("{}", describe(&plan));
    println!("database  {}", database.describe());
    for local in &plan.workspaces {
        if local.workspace.spec.identity.local.enabled {
            println!(
                "open      http://{}/ in a browser: {:?}'s web client; sign in as {:?} with the password in {}",
                local.placement.listen.http,
                local.name(),
                local.workspace.spec.identity.local.admin.username,
                local.placement.secret(paths::ADMIN_PASSWORD).display()
            );
        }
    }
    println!("running; Ctrl-C stops everything, and running again keeps the data");
    let _ = std::io::stdout().flush();

    // What crashed is started again, with backoff, until Ctrl-C.
    let mut restarts: Vec<Restart> = running.iter().map(|_| Restart::default()).collect();
    let mut database_restart = Restart::default();
    'watch: loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = term.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if let Some(due) =
            database_restart.exited(database.exited(), "PostgreSQL", "its postgres.log")
        {
            if due {
                tokio::select! {
                    _ = interrupt.recv() => break 'watch,
                    _ = term.recv() => break 'watch,
                    started = Database::start(&data_dir) => match started {
                        Ok(again) => {
                            database = again;
                            database_restart.running("PostgreSQL");
                        }
                        Err(e) => database_restart.failed("PostgreSQL", &e),
                    },
                }
            }
            continue;
        }
        for (process, restart) in running.iter_mut().zip(restarts.iter_mut()) {
            let status = process.child.try_wait().ok().flatten();
            let log = process.log.display().to_string();
            if restart.exited(status, &process.what, &log) != Some(true) {
                continue;
            }
            tokio::select! {
                _ = interrupt.recv() => break 'watch,
                _ = term.recv() => break 'watch,
                started = process.restart() => match started {
                    Ok(()) => restart.running(&process.what),
                    Err(e) => restart.failed(&process.what, &e),
                },
            }
        }
    }
    println!("stopping");
    // The servers before the SFUs they point at.
    for process in running.iter_mut().rev() {
        stop_child(&mut process.child, libc::SIGTERM);
    }
    database.stop();
    Ok(())
}
