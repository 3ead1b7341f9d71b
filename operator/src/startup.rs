//! Checks before the controllers start: the CRDs are installed, and the
//! operator holds every permission in [`crate::rbac`]. Either failing is a
//! start-up error that says what to install or grant.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::{api::PostParams, Api, Client};

use crate::{
    rbac::{Rule, LEADER_ELECTION, RULES},
    reconcile::Scope,
};

use entente_crds::KINDS;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "the entente.dev/v1alpha1 CRDs are not installed (missing: {0}); install them with \
         `kubectl apply --server-side -f charts/entente/crds/`"
    )]
    CrdsMissing(String),
    #[error(
        "the operator's service account lacks permissions: {0}; install the chart's RBAC \
         (rbac.create=true) or grant these rules"
    )]
    Forbidden(String),
    #[error("cannot reach the Kubernetes API: {0}")]
    Api(#[from] kube::Error),
}

/// The entente kinds the cluster does not serve.
pub fn missing_kinds(served: &[String]) -> Vec<&'static str> {
    KINDS
        .iter()
        .copied()
        .filter(|kind| !served.iter().any(|s| s == kind))
        .collect()
}

/// The kinds the cluster serves in `group_version` (none if it serves no such group).
pub async fn served_kinds(
    client: &Client,
    group_version: &str,
) -> Result<Vec<String>, kube::Error> {
    match client.list_api_group_resources(group_version).await {
        Ok(list) => Ok(list.resources.into_iter().map(|r| r.kind).collect()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

pub async fn check_crds(client: &Client) -> Result<(), StartupError> {
    let served = served_kinds(
        client,
        &format!("{}/{}", entente_crds::GROUP, entente_crds::VERSION),
    )
    .await?;
    let missing = missing_kinds(&served);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StartupError::CrdsMissing(missing.join(", ")))
    }
}

/// One question to the API server: may I `verb` `resource` in `namespace`?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    pub verb: &'static str,
    /// `None`: across all namespaces.
    pub namespace: Option<String>,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        write!(f, "{} {group}/{}", self.verb, self.resource)?;
        if let Some(sub) = self.subresource {
            write!(f, "/{sub}")?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in {ns}"),
            None => write!(f, " cluster-wide"),
        }
    }
}

/// Every permission to check for `scope`, the leader Lease included.
pub fn checks(scope: &Scope, operator_namespace: &str) -> Vec<Check> {
    let namespaces: Vec<Option<String>> = match scope {
        Scope::Cluster => vec![None],
        Scope::Namespaces(list) => list.iter().cloned().map(Some).collect(),
    };
    let expand = |rule: &Rule, namespace: &Option<String>| -> Vec<Check> {
        rule.resources
            .iter()
            .flat_map(|resource| {
                let (resource, subresource) = match resource.split_once('/') {
                    Some((r, s)) => (r, Some(s)),
                    None => (*resource, None),
                };
                rule.verbs.iter().map(move |verb| Check {
                    group: rule.group,
                    resource,
                    subresource,
                    verb,
                    namespace: namespace.clone(),
                })
            })
            .collect()
    };
    let mut out: Vec<Check> = namespaces
        .iter()
        .flat_map(|ns| RULES.iter().flat_map(move |rule| expand(rule, ns)))
        .collect();
    out.extend(expand(
        &LEADER_ELECTION,
        &Some(operator_namespace.to_string()),
    ));
    out
}

pub async fn check_permissions(client: &Client, checks: &[Check]) -> Result<(), StartupError> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut denied = Vec::new();
    for check in checks {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(check.group.to_string()),
                    resource: Some(check.resource.to_string()),
                    subresource: check.subresource.map(String::from),
                    verb: Some(check.verb.to_string()),
                    namespace: check.namespace.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = api.create(&PostParams::default(), &review).await?;
        if !answer.status.is_some_and(|s| s.allowed) {
            denied.push(check.to_string());
        }
    }
    if denied.is_empty() {
        Ok(())
    } else {
        Err(StartupError::Forbidden(denied.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_kinds_are_named() {
        let served: Vec<String> = KINDS[..6].iter().map(|k| k.to_string()).collect();
        assert_eq!(missing_kinds(&served), vec!["Bridge", "LegalHold"]);
        let all: Vec<String> = KINDS.iter().map(|k| k.to_string()).collect();
        assert!(missing_kinds(&all).is_empty());
    }

    #[test]
    fn checks_cover_every_rule_in_every_namespace_and_the_lease_at_home() {
        let scope = Scope::Namespaces(vec!["a".into(), "b".into()]);
        let all = checks(&scope, "entente-system");
        let per_namespace: usize = RULES
            .iter()
            .map(|r| r.resources.len() * r.verbs.len())
            .sum();
        assert_eq!(all.len(), 2 * per_namespace + 3);
        assert!(all.iter().any(|c| c.resource == "workspaces"
            && c.subresource == Some("status")
            && c.namespace.as_deref() == Some("b")));
        let lease: Vec<_> = all.iter().filter(|c| c.resource == "leases").collect();
        assert!(lease
            .iter()
            .all(|c| c.namespace.as_deref() == Some("entente-system")));
        assert_eq!(all[0].to_string(), "get entente.dev/workspaces in a");
    }
}
