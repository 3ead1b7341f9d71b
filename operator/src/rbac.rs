//! Every permission the operator uses, and why. The Helm chart renders
//! exactly these rules (a test compares them), and at start-up the operator
//! asks the API server whether it holds each one, so missing RBAC is a clear
//! start-up error instead of failures deep inside reconciles.

/// One RBAC rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub group: &'static str,
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
}

const KINDS: &[&str] = &[
    "workspaces",
    "partnerconnections",
    "guestpolicies",
    "accesspolicies",
    "callsclusters",
    "languagemodels",
    "bridges",
    "legalholds",
];

/// Children: created and updated by server-side apply, watched, pruned.
const CHILD: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];

/// The rules granted in every watched namespace (or cluster-wide).
pub const RULES: &[Rule] = &[
    // Read and watch the kinds; patch adds and removes the finalizer.
    Rule {
        group: "entente.dev",
        resources: KINDS,
        verbs: &["get", "list", "watch", "patch"],
    },
    Rule {
        group: "entente.dev",
        resources: &[
            "workspaces/status",
            "partnerconnections/status",
            "guestpolicies/status",
            "accesspolicies/status",
            "callsclusters/status",
            "languagemodels/status",
            "bridges/status",
            "legalholds/status",
        ],
        verbs: &["get", "patch"],
    },
    // blockOwnerDeletion on children's ownerReferences.
    Rule {
        group: "entente.dev",
        resources: &["workspaces/finalizers"],
        verbs: &["update"],
    },
    Rule {
        group: "apps",
        resources: &["deployments", "daemonsets"],
        verbs: CHILD,
    },
    // Where a host-network SFU node runs: its pod's address.
    Rule {
        group: "",
        resources: &["pods"],
        verbs: &["list"],
    },
    Rule {
        group: "",
        resources: &["services", "secrets"],
        verbs: CHILD,
    },
    Rule {
        group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
    },
    Rule {
        group: "policy",
        resources: &["poddisruptionbudgets"],
        verbs: CHILD,
    },
    Rule {
        group: "networking.k8s.io",
        resources: &["networkpolicies", "ingresses"],
        verbs: CHILD,
    },
    Rule {
        group: "batch",
        resources: &["jobs"],
        verbs: CHILD,
    },
    Rule {
        group: "postgresql.cnpg.io",
        resources: &["clusters", "scheduledbackups"],
        verbs: CHILD,
    },
    Rule {
        group: "barmancloud.cnpg.io",
        resources: &["objectstores"],
        verbs: CHILD,
    },
];

/// The rule granted only in the operator's own namespace.
pub const LEADER_ELECTION: Rule = Rule {
    group: "coordination.k8s.io",
    resources: &["leases"],
    verbs: &["get", "create", "update"],
};
