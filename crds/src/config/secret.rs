//! Where a process reads a secret value from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A reference to a secret value: a file (a mounted Secret key) or an
/// environment variable. The value itself is never part of a config.
///
/// Serialized as `{file: /path}` or `{env: NAME}`, in YAML as in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Reference", into = "Reference")]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// The wire form: a mapping with exactly one key, so YAML shows no tags.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<String>,
}

impl TryFrom<Reference> for SecretSource {
    type Error = &'static str;

    fn try_from(reference: Reference) -> Result<Self, Self::Error> {
        match reference {
            Reference { file: Some(path), env: None } => Ok(SecretSource::File(path)),
            Reference { file: None, env: Some(name) } => Ok(SecretSource::Env(name)),
            _ => Err("a secret reference needs exactly one of `file` (a path) or `env` (a variable name)"),
        }
    }
}

impl From<SecretSource> for Reference {
    fn from(source: SecretSource) -> Self {
        match source {
            SecretSource::File(path) => Reference {
                file: Some(path),
                env: None,
            },
            SecretSource::Env(name) => Reference {
                file: None,
                env: Some(name),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("environment variable {0} is not set (it should hold a secret)")]
    MissingEnv(String),
    #[error("secret {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Reads the value, without a trailing newline (files written by editors and
    /// `kubectl create secret --from-file` often end with one).
    pub fn read(&self) -> Result<String, SecretError> {
        let value = match self {
            SecretSource::File(path) => {
                std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?
            }
            SecretSource::Env(name) => {
                std::env::var(name).map_err(|_| SecretError::MissingEnv(name.clone()))?
            }
        };
        let value = value.trim_end_matches(['\n', '\r']).to_string();
        if value.is_empty() {
            return Err(SecretError::Empty(self.to_string()));
        }
        Ok(value)
    }
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Env(name) => write!(f, "${name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_without_its_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("entente-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("password");
        std::fs::write(&path, "hunter2\n").unwrap();
        assert_eq!(SecretSource::File(path).read().unwrap(), "hunter2");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_source_names_itself() {
        let err = SecretSource::Env("ENTENTE_TEST_SURELY_UNSET".into())
            .read()
            .unwrap_err();
        assert!(
            err.to_string().contains("ENTENTE_TEST_SURELY_UNSET"),
            "{err}"
        );
        let err = SecretSource::File("/nonexistent/entente/key".into())
            .read()
            .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/entente/key"),
            "{err}"
        );
    }

    #[test]
    fn serializes_as_a_tagged_reference() {
        let yaml = serde_yaml::to_string(&SecretSource::File("/etc/entente/db".into())).unwrap();
        assert_eq!(yaml.trim(), "file: /etc/entente/db");
        let parsed: SecretSource = serde_yaml::from_str("env: DB_PASSWORD").unwrap();
        assert_eq!(parsed, SecretSource::Env("DB_PASSWORD".into()));
        assert!(serde_yaml::from_str::<SecretSource>("value: hunter2").is_err());
        let both = serde_yaml::from_str::<SecretSource>("{file: /a, env: B}").unwrap_err();
        assert!(both.to_string().contains("exactly one of `file`"), "{both}");
    }
}
