//! The contract between the operator (or `entente up`) and the processes it runs.
//!
//! The operator renders a [`RuntimeConfig`] for each workspace server and a
//! [`MediaConfig`] for each SFU/offloader into a Secret mounted as a file. Both
//! are versioned: a process refuses a file whose `version` it does not know,
//! rather than guessing. Secret values never appear in them, only
//! [`SecretSource`]s that say where the process reads each value.

mod media;
mod runtime;
mod secret;

pub use media::*;
pub use runtime::*;
pub use secret::{SecretError, SecretSource};

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid {kind}: {message}")]
    Parse {
        path: String,
        kind: &'static str,
        message: String,
    },
    #[error("{path} has {kind} version {found}, but this build understands only version {supported}; upgrade the binary or re-render the config")]
    Version {
        path: String,
        kind: &'static str,
        found: u32,
        supported: u32,
    },
}

/// Writes a config as YAML without enum tags (`udp: {mux: 8443}`, not
/// `udp: !mux 8443`), the form [`parse`] and every YAML tool read.
pub(crate) fn to_yaml<T: serde::Serialize>(config: &T) -> String {
    let value = serde_json::to_value(config).expect("configs serialize to JSON");
    serde_yaml::to_string(&value).expect("a JSON value serializes to YAML")
}

/// Reads a versioned config file (YAML or JSON), checking the version before
/// the rest so an old binary names the real problem instead of an unknown field.
pub(crate) fn load<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    kind: &'static str,
    supported: u32,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string(), kind, supported)
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
    kind: &'static str,
    supported: u32,
) -> Result<T, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse {
        path: origin.to_string(),
        kind,
        message,
    };
    // Through a JSON value: serde_yaml wants YAML tags for enums with data,
    // while the operator renders plain JSON maps (`{"mux": 8443}`); going via
    // serde_json accepts the same text in both notations.
    let value: serde_json::Value =
        serde_yaml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    match version {
        None => return Err(parse_error("missing `version`".into())),
        Some(found) if found != u64::from(supported) => {
            return Err(ConfigError::Version {
                path: origin.to_string(),
                kind,
                found: u32::try_from(found).unwrap_or(u32::MAX),
                supported,
            })
        }
        Some(_) => {}
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        parse_error(if path == "." {
            inner.to_string()
        } else {
            format!("at {path}: {inner}")
        })
    })
}
