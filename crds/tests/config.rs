//! The RuntimeConfig/MediaConfig contract: versioned, secrets only by reference.

use entente_crds::config::{ConfigError, MediaConfig, RuntimeConfig, SecretSource, UdpPorts};

const RUNTIME: &str = r#"
version: 1
workspace:
  id: nation-a
  displayName: Nation A
  organisation: Nation A Army
  siteUrl: https://chat.nation-a.example
listen:
  http: 0.0.0.0:8080
  federation: 0.0.0.0:8443
  admin: 0.0.0.0:9090
database:
  url: {file: /etc/entente/secrets/database/uri}
  poolSize: 20
objectStorage:
  endpoint: http://minio.storage:9000
  region: us-east-1
  bucket: nation-a-files
  forcePathStyle: true
  accessKeyId: {env: AWS_ACCESS_KEY_ID}
  secretAccessKey: {env: AWS_SECRET_ACCESS_KEY}
identity:
  local:
    enabled: true
    adminUsername: admin
    adminPassword: {file: /etc/entente/secrets/admin/password}
    minPasswordLength: 12
  rankedAttributes:
    clearance: [UNCLASSIFIED, SECRET]
federation:
  tls:
    certFile: /etc/entente/federation/tls.crt
    keyFile: /etc/entente/federation/tls.key
    caFile: /etc/entente/federation/ca.crt
  partners:
    - workspaceId: nation-b
      organisation: Nation B Army
      endpoint: https://fed.nation-b.example:8443
      caFile: /etc/entente/partners/nation-b/ca.crt
      identity: nation-b.mission.entente.local
      channels:
        - {name: joint-ops, remoteName: joint-ops, mode: ReadWrite, post: true, react: true, uploadFiles: true}
      sync:
        maxQueuedEvents: 1000000
        maxQueuedBytes: 1073741824
        whenQueueFull: KeepAndDegrade
        maxFileBytes: 104857600
        keepaliveSeconds: 30
        maxBackoffSeconds: 300
        compression: true
      allowRelay: false
      suspended: false
push: {mode: IdOnly, proxyUrl: "https://push.example"}
limits: {maxUploadBytes: 104857600, maxRequestBodyBytes: 1048576, requestsPerMinute: 600}
"#;

#[test]
fn a_runtime_config_round_trips() {
    let config = RuntimeConfig::parse(RUNTIME, "inline").unwrap();
    assert_eq!(config.workspace.id, "nation-a");
    assert_eq!(
        config.database.url,
        SecretSource::File("/etc/entente/secrets/database/uri".into())
    );
    assert_eq!(config.federation.partners[0].channels[0].name, "joint-ops");
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(RuntimeConfig::parse(&json, "json").unwrap(), config);
    assert_eq!(
        RuntimeConfig::parse(&config.to_yaml(), "yaml").unwrap(),
        config
    );
}

#[test]
fn a_newer_version_is_refused_by_name() {
    let newer = RUNTIME.replace("version: 1", "version: 2");
    let err = RuntimeConfig::parse(&newer, "/etc/entente/runtime.yaml").unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Version {
            found: 2,
            supported: 1,
            ..
        }
    ));
    assert!(
        err.to_string()
            .contains("/etc/entente/runtime.yaml has RuntimeConfig version 2"),
        "{err}"
    );
}

#[test]
fn secret_values_cannot_be_inlined() {
    // A value where a reference belongs is refused, not silently accepted.
    let inline = RUNTIME.replace(
        "url: {file: /etc/entente/secrets/database/uri}",
        "url: postgres://app:hunter2@db/app",
    );
    let err = RuntimeConfig::parse(&inline, "inline").unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    // Nor can a stray field smuggle one in.
    let extra = RUNTIME.replace("  poolSize: 20", "  poolSize: 20\n  password: hunter2");
    let err = RuntimeConfig::parse(&extra, "inline").unwrap_err();
    assert!(
        err.to_string().contains("unknown field `password`"),
        "{err}"
    );
}

#[test]
fn restart_needing_changes_are_named_and_live_ones_are_not() {
    let old = RuntimeConfig::parse(RUNTIME, "old").unwrap();
    let mut new = old.clone();
    new.federation.partners[0].suspended = true;
    new.limits.requests_per_minute = 100;
    assert!(old.sections_needing_restart(&new).is_empty());
    new.listen.http = "0.0.0.0:8081".parse().unwrap();
    new.database.pool_size = 50;
    assert_eq!(
        old.sections_needing_restart(&new),
        vec!["listen", "database"]
    );
}

#[test]
fn a_media_config_round_trips() {
    let text = r#"
version: 1
cluster: calls
joinTokenKey: {file: /etc/entente/calls/token-key}
sfu:
  listen: 0.0.0.0:8081
  udp: {mux: 8443}
  tcpPort: 8443
  advertisedAddresses: [198.51.100.20]
  maxParticipantsPerRoom: 50
"#;
    let config = MediaConfig::parse(text, "inline").unwrap();
    assert_eq!(config.sfu.as_ref().unwrap().udp, UdpPorts::Mux(8443));
    assert!(config.offloader.is_none());
    let yaml = config.to_yaml();
    assert!(yaml.contains("mux: 8443"), "{yaml}");
    assert_eq!(MediaConfig::parse(&yaml, "yaml").unwrap(), config);
    let err = MediaConfig::parse(&text.replace("version: 1", "version: 7"), "m").unwrap_err();
    assert!(err.to_string().contains("MediaConfig version 7"), "{err}");
}
