//! Checks a manifest the way the API server would, without one.
//!
//! The generated CRD schema is the single source of truth: an object is
//! defaulted from it, checked against its OpenAPI constraints (types, required
//! fields, enums, patterns, bounds, unknown fields as `kubectl --validate=strict`
//! reports them), and then against its CEL `x-kubernetes-validations` with the
//! kube-cel interpreter. Only then is it decoded into the typed resource.
//!
//! Used by tests (every example and every deliberately broken manifest),
//! `entente up --check`, and anything else that must not trust its input.

use std::{collections::BTreeSet, fmt, sync::OnceLock};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::*;

/// One problem with one field, with the path an admin recognises (`spec.database`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a manifest was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{origin}: not valid YAML: {message}")]
    Yaml { origin: String, message: String },
    #[error("{origin}: a manifest must be a mapping with apiVersion and kind")]
    NotAnObject { origin: String },
    #[error("{origin}: {kind} in {api_version} is not an Entente kind (expected apiVersion entente.dev/v1alpha1 and one of {known})", known = KINDS.join(", "))]
    UnknownKind {
        origin: String,
        api_version: String,
        kind: String,
    },
    #[error("{kind} \"{name}\" is invalid:\n{}", errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        kind: String,
        name: String,
        errors: Vec<FieldError>,
    },
}

impl ManifestError {
    /// The field errors of an invalid object; empty for other failures.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            ManifestError::Invalid { errors, .. } => errors,
            _ => &[],
        }
    }
}

pub use crate::KINDS;

/// A validated Entente object of any kind (boxed: a Workspace is large).
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    Workspace(Box<Workspace>),
    PartnerConnection(Box<PartnerConnection>),
    GuestPolicy(Box<GuestPolicy>),
    AccessPolicy(Box<AccessPolicy>),
    CallsCluster(Box<CallsCluster>),
    LanguageModel(Box<LanguageModel>),
    Bridge(Box<Bridge>),
    LegalHold(Box<LegalHold>),
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Workspace(_) => "Workspace",
            Resource::PartnerConnection(_) => "PartnerConnection",
            Resource::GuestPolicy(_) => "GuestPolicy",
            Resource::AccessPolicy(_) => "AccessPolicy",
            Resource::CallsCluster(_) => "CallsCluster",
            Resource::LanguageModel(_) => "LanguageModel",
            Resource::Bridge(_) => "Bridge",
            Resource::LegalHold(_) => "LegalHold",
        }
    }

    pub fn name(&self) -> &str {
        let meta = match self {
            Resource::Workspace(o) => &o.metadata,
            Resource::PartnerConnection(o) => &o.metadata,
            Resource::GuestPolicy(o) => &o.metadata,
            Resource::AccessPolicy(o) => &o.metadata,
            Resource::CallsCluster(o) => &o.metadata,
            Resource::LanguageModel(o) => &o.metadata,
            Resource::Bridge(o) => &o.metadata,
            Resource::LegalHold(o) => &o.metadata,
        };
        meta.name.as_deref().unwrap_or_default()
    }
}

/// Parses every document of a YAML stream (`---`-separated) and validates each.
/// `origin` names the source in errors (usually a file path).
pub fn parse_manifests(text: &str, origin: &str) -> Vec<Result<Resource, ManifestError>> {
    let mut results = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let doc_origin = format!("{origin} (document {})", index + 1);
        let parsed = <serde_yaml::Value as serde::Deserialize>::deserialize(document)
            .map_err(|e| e.to_string())
            .and_then(|yaml| serde_json::to_value(yaml).map_err(|e| e.to_string()));
        let value = match parsed {
            Ok(Value::Null) => continue, // an empty document between separators
            Ok(value) => value,
            Err(message) => {
                // The rest of the stream cannot be trusted after a syntax error
                // (and serde_yaml would keep yielding the same error forever).
                results.push(Err(ManifestError::Yaml {
                    origin: doc_origin,
                    message,
                }));
                break;
            }
        };
        results.push(validate_object(&value, None, &doc_origin));
    }
    results
}

/// Validates one object (as JSON) the way the API server admits it. `old` is the
/// stored object on an update, so transition rules (`oldSelf`) are checked too.
pub fn validate_object(
    value: &Value,
    old: Option<&Value>,
    origin: &str,
) -> Result<Resource, ManifestError> {
    let Some(object) = value.as_object() else {
        return Err(ManifestError::NotAnObject {
            origin: origin.into(),
        });
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let Some(schema) = schema_for(api_version, kind) else {
        return Err(ManifestError::UnknownKind {
            origin: origin.into(),
            api_version: api_version.into(),
            kind: kind.into(),
        });
    };
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let invalid = |errors| ManifestError::Invalid {
        kind: kind.into(),
        name: name.clone(),
        errors,
    };

    let defaulted = kube_cel::apply_defaults(schema, &without_nulls(value));
    let mut errors = check_metadata(value);
    check_schema(schema, &defaulted, "", &mut errors);
    if !errors.is_empty() {
        // CEL rules assume a well-typed object; the apiserver stops here too.
        return Err(invalid(errors));
    }
    if let Err(cel_errors) = kube_cel::Validator::new().validate(schema, &defaulted, old) {
        errors.extend(cel_errors.iter().map(|e| FieldError {
            path: e.field_path.clone(),
            message: e.message.clone(),
        }));
        return Err(invalid(errors));
    }
    decode(kind, defaulted).map_err(|message| {
        invalid(vec![FieldError {
            path: String::new(),
            message,
        }])
    })
}

fn decode(kind: &str, value: Value) -> Result<Resource, String> {
    fn typed<T: DeserializeOwned>(value: Value) -> Result<T, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
    Ok(match kind {
        "Workspace" => Resource::Workspace(Box::new(typed(value)?)),
        "PartnerConnection" => Resource::PartnerConnection(Box::new(typed(value)?)),
        "GuestPolicy" => Resource::GuestPolicy(Box::new(typed(value)?)),
        "AccessPolicy" => Resource::AccessPolicy(Box::new(typed(value)?)),
        "CallsCluster" => Resource::CallsCluster(Box::new(typed(value)?)),
        "LanguageModel" => Resource::LanguageModel(Box::new(typed(value)?)),
        "Bridge" => Resource::Bridge(Box::new(typed(value)?)),
        "LegalHold" => Resource::LegalHold(Box::new(typed(value)?)),
        other => return Err(format!("no decoder for kind {other}")),
    })
}

/// The openAPIV3Schema of a kind, from the generated CRDs.
fn schema_for(api_version: &str, kind: &str) -> Option<&'static Value> {
    static SCHEMAS: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    let schemas = SCHEMAS.get_or_init(|| {
        crd::all()
            .into_iter()
            .map(|crd| {
                let version = &crd.spec.versions[0];
                let schema = version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .expect("every Entente CRD has a schema");
                (
                    crd.spec.names.kind.clone(),
                    serde_json::to_value(schema).expect("a schema serializes"),
                )
            })
            .collect()
    });
    if api_version != format!("{GROUP}/{VERSION}") {
        return None;
    }
    schemas.iter().find(|(k, _)| k == kind).map(|(_, s)| s)
}

/// The API server prunes `null` from fields whose schema is not `nullable`
/// (none of Entente's are) before defaulting, so `field: null` means "absent".
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// What the API server checks of `metadata` before anything else.
fn check_metadata(value: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match value.pointer("/metadata/name").and_then(Value::as_str) {
        None => errors.push(FieldError {
            path: "metadata.name".into(),
            message: "Required value: name is required".into(),
        }),
        Some(name) if !is_dns_subdomain(name) => errors.push(FieldError {
            path: "metadata.name".into(),
            message: format!("Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
        }),
        Some(_) => {}
    }
    errors
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// Checks `value` against the OpenAPI constraints of `schema` alone (no
/// defaulting, no CEL): what the API server checks of an object, and of every
/// `default` in a CRD when the CRD is created.
pub fn schema_errors(schema: &Value, value: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_schema(schema, value, "", &mut errors);
    errors
}

/// The OpenAPI (structural schema) checks of the API server, with its wording
/// where it has one.
fn check_schema(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let mut error = |message: String| {
        errors.push(FieldError {
            path: path.to_string(),
            message,
        })
    };
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            error("Invalid value: null: must not be null".into());
        }
        return;
    }
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let ty = schema.get("type").and_then(Value::as_str);
    let type_ok = match (ty, value) {
        _ if int_or_string => value.is_string() || value.is_i64() || value.is_u64(),
        (None, _) => true,
        (Some("object"), Value::Object(_)) => true,
        (Some("array"), Value::Array(_)) => true,
        (Some("string"), Value::String(_)) => true,
        (Some("boolean"), Value::Bool(_)) => true,
        (Some("integer"), Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Some("number"), Value::Number(_)) => true,
        _ => false,
    };
    if !type_ok {
        error(format!(
            "Invalid value: {}: must be of type {}",
            short(value),
            ty.unwrap_or("int-or-string")
        ));
        return;
    }

    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let list = allowed.iter().map(short).collect::<Vec<_>>().join(", ");
            error(format!(
                "Unsupported value: {}: supported values: {list}",
                short(value)
            ));
        }
    }

    match value {
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                if len < min {
                    error(format!(
                        "Invalid value: {}: should be at least {min} chars long",
                        short(value)
                    ));
                }
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if len > max {
                    error(format!("Too long: may not be more than {max} bytes"));
                }
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                match regex::Regex::new(pattern) {
                    Ok(re) if !re.is_match(s) => error(format!(
                        "Invalid value: {}: should match '{pattern}'",
                        short(value)
                    )),
                    Ok(_) => {}
                    Err(e) => error(format!("schema pattern {pattern:?} does not compile: {e}")),
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                if x < min {
                    error(format!(
                        "Invalid value: {n}: should be greater than or equal to {min}"
                    ));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                if x > max {
                    error(format!(
                        "Invalid value: {n}: should be less than or equal to {max}"
                    ));
                }
            }
        }
        Value::Array(items) => {
            let len = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if len < min {
                    error(format!(
                        "Invalid value: {len}: should have at least {min} items"
                    ));
                }
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if len > max {
                    error(format!("Too many: {len}: must have at most {max} items"));
                }
            }
            check_list_uniqueness(schema, items, &mut error);
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_schema(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(fields) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for field in required.iter().filter_map(Value::as_str) {
                    if !fields.contains_key(field) {
                        errors.push(FieldError {
                            path: join(path, field),
                            message: "Required value".into(),
                        });
                    }
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let preserve =
                schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            for (field, field_value) in fields {
                let field_path = join(path, field);
                if path.is_empty() && matches!(field.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue; // checked by the API machinery, not the CRD schema
                }
                if let Some(field_schema) = properties.and_then(|p| p.get(field)) {
                    check_schema(field_schema, field_value, &field_path, errors);
                } else if let Some(additional @ Value::Object(_)) = additional {
                    check_schema(additional, field_value, &field_path, errors);
                } else if !preserve && additional != Some(&Value::Bool(true)) {
                    errors.push(FieldError {
                        path: field_path,
                        message: format!("unknown field \"{field}\""),
                    });
                }
            }
        }
        _ => {}
    }
}

/// `x-kubernetes-list-type: set | map` forbid duplicates (of values, or of keys).
fn check_list_uniqueness(schema: &Value, items: &[Value], error: &mut impl FnMut(String)) {
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            let mut seen = BTreeSet::new();
            for item in items {
                if !seen.insert(item.to_string()) {
                    error(format!("Duplicate value: {}", short(item)));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut seen = BTreeSet::new();
            for item in items {
                let key: Vec<String> = keys
                    .iter()
                    .map(|k| item.get(*k).map(short).unwrap_or_default())
                    .collect();
                if !seen.insert(key.clone()) {
                    error(format!("Duplicate value: {}", key.join(", ")));
                }
            }
        }
        _ => {}
    }
}

/// A value as it appears in an error: short enough to read.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(77).collect::<String>())
    } else {
        text
    }
}
