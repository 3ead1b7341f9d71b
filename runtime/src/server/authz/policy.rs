//! Attribute-based access: which AccessPolicies and GuestPolicy rules gate a
//! channel, and whether they admit a user. Pure decisions, no I/O; the
//! enforcement around them is in [`super::sweep`], [`super::gate`] and
//! [`crate::server::guests`].
//!
//! A named channel (public or private) is gated by every AccessPolicy that
//! lists it by name or whose label selector matches its labels. A user may
//! access it only if every `Enforce` policy gating it admits them; `Audit`
//! policies never deny, their would-be denials are recorded. A guest who came
//! in under a GuestPolicy may access only the channels that policy lists.
//! Policies apply to everyone, system admins and guests alike, and to shared
//! channels as to any other.

use std::collections::BTreeMap;

use entente_crds::{
    access_policy::PolicyMode,
    config::{AccessRule, GuestRules, RuntimeConfig},
    policy::{ChannelFacts, Expression, Ranks},
};

use super::roles::Role;

/// One AccessPolicy, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub mode: PolicyMode,
    pub definition: AccessRule,
    /// The compiled expression, or the compiler's message. A rule that does
    /// not compile denies everyone in the channels it gates (`Enforce`):
    /// a broken policy must not open what it was meant to close.
    pub expression: Result<Expression, String>,
}

impl Rule {
    pub fn compile(definition: &AccessRule, ranks: &Ranks) -> Rule {
        Rule {
            name: definition.policy.clone(),
            mode: definition.mode,
            expression: Expression::compile(&definition.expression, ranks),
            definition: definition.clone(),
        }
    }

    /// Whether this policy gates `channel`.
    pub fn gates(&self, channel: &ChannelFacts) -> bool {
        let by_name = self
            .definition
            .channels
            .iter()
            .any(|name| name.eq_ignore_ascii_case(channel.name));
        let by_label = !self.definition.channel_labels.is_empty()
            && self
                .definition
                .channel_labels
                .iter()
                .all(|(key, value)| channel.labels.get(key) == Some(value));
        by_name || by_label
    }

    /// `None` when `user` is admitted, else why not.
    pub fn refuses(&self, user: &Subject, channel: &ChannelFacts) -> Option<String> {
        let outcome = match &self.expression {
            Ok(expression) => {
                expression.evaluate(user.attributes, user.role == Role::Guest, channel)
            }
            Err(message) => Err(format!("the policy does not compile: {message}")),
        };
        match outcome {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "access policy {:?} does not admit the user ({})",
                self.name, self.definition.expression
            )),
            Err(why) => Some(format!(
                "access policy {:?} cannot decide: {why}",
                self.name
            )),
        }
    }
}

/// Who is asking, as policies see them.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub role: Role,
    pub attributes: &'a serde_json::Map<String, serde_json::Value>,
    /// The GuestPolicy a guest came in under.
    pub guest_policy: Option<&'a str>,
}

/// One policy saying no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub policy: String,
    pub reason: String,
}

/// What the policies say about one user and one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Refusals that deny access (enforced policies, guest rules).
    pub denied: Vec<Refusal>,
    /// Refusals of audit-mode policies: access is allowed, the refusal recorded.
    pub would_deny: Vec<Refusal>,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.denied.is_empty()
    }

    /// The reasons, for a message.
    pub fn reasons(&self) -> String {
        self.denied
            .iter()
            .map(|r| r.reason.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The access rules in effect: compiled once per config.
#[derive(Debug, Default)]
pub struct Policies {
    pub rules: Vec<Rule>,
    pub guests: BTreeMap<String, GuestRules>,
}

impl Policies {
    pub fn from_config(config: &RuntimeConfig) -> Policies {
        let ranks = &config.identity.ranked_attributes;
        Policies {
            rules: config
                .access
                .policies
                .iter()
                .map(|rule| Rule::compile(rule, ranks))
                .collect(),
            guests: config
                .guests
                .iter()
                .map(|g| (g.policy.clone(), g.clone()))
                .collect(),
        }
    }

    /// Whether anything restricts `channel` for anyone but guests.
    pub fn gated(&self, channel: &ChannelFacts) -> bool {
        is_named(channel) && self.rules.iter().any(|r| r.gates(channel))
    }

    pub fn decide(&self, user: &Subject, channel: &ChannelFacts) -> Verdict {
        let mut verdict = Verdict::default();
        // Direct and group conversations are between people; no policy gates them.
        if !is_named(channel) {
            return verdict;
        }
        if let Some(policy) = user.guest_policy {
            match self.guests.get(policy) {
                Some(rules)
                    if rules
                        .channels
                        .iter()
                        .any(|c| c.eq_ignore_ascii_case(channel.name)) => {}
                Some(_) => verdict.denied.push(Refusal {
                    policy: policy.to_string(),
                    reason: format!(
                        "guest policy {policy:?} does not list channel {:?}",
                        channel.name
                    ),
                }),
                None => verdict.denied.push(Refusal {
                    policy: policy.to_string(),
                    reason: format!("guest policy {policy:?} no longer exists"),
                }),
            }
        }
        for rule in self.rules.iter().filter(|r| r.gates(channel)) {
            if let Some(reason) = rule.refuses(user, channel) {
                let refusal = Refusal {
                    policy: rule.name.clone(),
                    reason,
                };
                match rule.mode {
                    PolicyMode::Enforce => verdict.denied.push(refusal),
                    PolicyMode::Audit => verdict.would_deny.push(refusal),
                }
            }
        }
        verdict
    }

    /// The same policies with `rule` in place of the one of its name (added
    /// if there is none), or without it when `rule` is `Err(name)`: what a
    /// change would do, for the simulator.
    pub fn with(&self, change: Result<Rule, &str>) -> Policies {
        let name = match &change {
            Ok(rule) => rule.name.clone(),
            Err(name) => name.to_string(),
        };
        let mut rules: Vec<Rule> = self
            .rules
            .iter()
            .filter(|r| r.name != name)
            .cloned()
            .collect();
        if let Ok(rule) = change {
            rules.push(rule);
        }
        Policies {
            rules,
            guests: self.guests.clone(),
        }
    }
}

fn is_named(channel: &ChannelFacts) -> bool {
    matches!(channel.kind, "public" | "private")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        name: &str,
        expression: &str,
        channels: &[&str],
        labels: &[(&str, &str)],
        mode: PolicyMode,
    ) -> AccessRule {
        AccessRule {
            policy: name.into(),
            expression: expression.into(),
            channels: channels.iter().map(|c| c.to_string()).collect(),
            channel_labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            mode,
        }
    }

    fn policies(rules: &[AccessRule]) -> Policies {
        let ranks: Ranks = [(
            "clearance".to_string(),
            vec!["UNCLASSIFIED".into(), "SECRET".into()],
        )]
        .into();
        Policies {
            rules: rules.iter().map(|r| Rule::compile(r, &ranks)).collect(),
            guests: BTreeMap::new(),
        }
    }

    fn attributes(pairs: &[(&str, &str)]) -> serde_json::Map<String, serde_json::Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect()
    }

    #[test]
    fn enforced_policies_deny_and_audited_ones_only_record() {
        let p = policies(&[
            rule(
                "secret",
                "user.clearance >= 'SECRET'",
                &["intel"],
                &[],
                PolicyMode::Enforce,
            ),
            rule(
                "nato",
                "user.nation in ['FR', 'DE']",
                &[],
                &[("mission", "alpha")],
                PolicyMode::Audit,
            ),
        ]);
        let labels: BTreeMap<String, String> =
            [("mission".to_string(), "alpha".to_string())].into();
        let intel = ChannelFacts {
            name: "intel",
            kind: "private",
            labels: &labels,
        };
        let low = attributes(&[("clearance", "UNCLASSIFIED"), ("nation", "US")]);
        let user = Subject {
            role: Role::Member,
            attributes: &low,
            guest_policy: None,
        };
        let verdict = p.decide(&user, &intel);
        assert!(!verdict.allowed());
        assert_eq!(verdict.denied[0].policy, "secret");
        assert_eq!(verdict.would_deny[0].policy, "nato");
        // The audit policy alone never denies.
        let high = attributes(&[("clearance", "SECRET"), ("nation", "US")]);
        let verdict = p.decide(
            &Subject {
                attributes: &high,
                ..user
            },
            &intel,
        );
        assert!(verdict.allowed() && verdict.would_deny.len() == 1);
        // Channels no policy gates are untouched; direct conversations are never gated.
        let empty = BTreeMap::new();
        assert_eq!(
            p.decide(
                &user,
                &ChannelFacts {
                    name: "lobby",
                    kind: "public",
                    labels: &empty
                }
            ),
            Verdict::default()
        );
        assert!(!p.gated(&ChannelFacts {
            name: "intel",
            kind: "direct",
            labels: &empty
        }));
    }

    #[test]
    fn a_policy_that_does_not_compile_closes_what_it_gates() {
        let p = policies(&[rule(
            "broken",
            "user.clearance >=",
            &["intel"],
            &[],
            PolicyMode::Enforce,
        )]);
        let empty = BTreeMap::new();
        let high = attributes(&[("clearance", "SECRET")]);
        let verdict = p.decide(
            &Subject {
                role: Role::SystemAdmin,
                attributes: &high,
                guest_policy: None,
            },
            &ChannelFacts {
                name: "intel",
                kind: "private",
                labels: &empty,
            },
        );
        assert!(!verdict.allowed());
        assert!(
            verdict.reasons().contains("does not compile"),
            "{}",
            verdict.reasons()
        );
    }

    #[test]
    fn guests_see_only_the_channels_of_their_policy() {
        let mut p = policies(&[]);
        p.guests.insert(
            "liaison".into(),
            GuestRules {
                policy: "liaison".into(),
                emails: vec![],
                domains: vec!["partner.example".into()],
                organisations: vec![],
                channels: vec!["joint-ops".into()],
                account_lifetime_seconds: None,
                expires_at: None,
                invitation_lifetime_seconds: 3600,
                upload_files: false,
                direct_messages: false,
                attributes: BTreeMap::new(),
            },
        );
        let none = attributes(&[]);
        let empty = BTreeMap::new();
        let guest = Subject {
            role: Role::Guest,
            attributes: &none,
            guest_policy: Some("liaison"),
        };
        let channel = |name| ChannelFacts {
            name,
            kind: "public",
            labels: &empty,
        };
        assert!(p.decide(&guest, &channel("joint-ops")).allowed());
        assert!(!p.decide(&guest, &channel("town-square")).allowed());
        let orphan = Subject {
            guest_policy: Some("gone"),
            ..guest
        };
        assert!(p
            .decide(&orphan, &channel("joint-ops"))
            .reasons()
            .contains("no longer exists"));
    }
}
