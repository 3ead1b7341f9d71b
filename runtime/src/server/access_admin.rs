//! Admin endpoints of attribute-based access: the labels policies select
//! channels by, and the simulator that answers "who would gain or lose
//! access" before a policy is applied. Over HTTP: [`super::api::access_admin`].

use std::collections::{BTreeMap, HashSet};

use entente_crds::{access_policy::PolicyMode, config::AccessRule};
use serde::{Deserialize, Serialize};

use super::{
    audit::{self, kind},
    authz::{
        policy::{Policies, Rule, Subject},
        roles::Role,
        sweep,
    },
    error::{ApiError, ApiResult},
    input::{self, Valid},
    state::AppState,
};

fn valid_label_part(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
}

/// A channel's labels, which access policies select channels by: at most
/// 32, keys and values 1-63 letters, digits, `-`, `_`, `.` or `/`.
#[derive(Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Labels(pub BTreeMap<String, String>);

impl utoipa::PartialSchema for Labels {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let part = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(LABEL_PATTERN))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "label → value: at most 32, each 1-63 letters, digits, '-', '_', '.' or '/'",
            ))
            .max_properties(Some(32))
            .property_names(Some(part()))
            .additional_properties(Some(part()))
            .into()
    }
}

impl utoipa::ToSchema for Labels {}

/// A label's key or value, as the document states [`valid_label_part`].
const LABEL_PATTERN: &str = "^[A-Za-z0-9._/-]{1,63}$";

impl Valid for Labels {
    fn valid(&self) -> ApiResult<()> {
        if self.0.len() > 32 {
            return Err(ApiError::invalid(
                "labels",
                "a channel has at most 32 labels",
            ));
        }
        for (key, value) in &self.0 {
            if !valid_label_part(key, 63) || !valid_label_part(value, 63) {
                return Err(ApiError::invalid(
                    "labels",
                    format!(
                        "label {key:?}: keys and values are 1-63 letters, digits, '-', '_', '.' or '/'"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `actor` (a system admin) sets a named channel's labels (replacing
/// them). Members the policies no longer admit leave at once.
pub async fn set_labels(
    state: &AppState,
    actor: &str,
    channel_id: &str,
    labels: BTreeMap<String, String>,
) -> ApiResult<BTreeMap<String, String>> {
    let mut tx = state.db.begin().await?;
    let before = sqlx::query_scalar!(
        "SELECT labels FROM channels WHERE id = $1 AND kind IN ('public', 'private') FOR UPDATE",
        channel_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::not_found("channel"))?;
    let after = serde_json::to_value(&labels).expect("labels serialize");
    super::db::channels::set_labels(&mut *tx, channel_id, &after).await?;
    if before != after {
        audit::record(
            &mut *tx,
            audit::Entry {
                kind: kind::CHANNEL_LABELS_CHANGED,
                actor_id: Some(actor),
                channel_id: Some(channel_id),
                reason: "a system admin set the channel's labels".into(),
                data: serde_json::json!({"before": before, "after": after}),
                ..Default::default()
            },
        )
        .await?;
    }
    super::db::commit(tx).await?;
    sweep::channel(state, channel_id, Some(actor))
        .await
        .map_err(ApiError::after_commit)?;
    Ok(labels)
}

/// A policy as it would be: replaces the policy of that name, adds it, or
/// (with `remove`) takes it away.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Simulate {
    #[schema(format = "line", min_length = 1, max_length = 253)]
    pub policy: String,
    #[serde(default)]
    #[schema(format = "text", min_length = 1, max_length = 4096)]
    pub expression: Option<String>,
    /// Channel names.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub channel_labels: Labels,
    /// `Enforce` (the default) or `Audit`.
    #[serde(default)]
    #[schema(value_type = PolicyModeName)]
    pub mode: PolicyMode,
    #[serde(default)]
    pub remove: bool,
}

/// What a policy does with what it decides.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub enum PolicyModeName {
    Enforce,
    Audit,
}

impl Valid for Simulate {
    fn valid(&self) -> ApiResult<()> {
        input::line(&self.policy, 253).map_err(input::at("policy"))?;
        if let Some(expression) = &self.expression {
            input::text(expression, 4096, true).map_err(input::at("expression"))?;
        }
        if self.channels.len() > 1000 {
            return Err(ApiError::invalid("channels", "at most 1000 channel names"));
        }
        if let Some(name) = self
            .channels
            .iter()
            .find(|n| !super::channels::valid_channel_name(n))
        {
            return Err(ApiError::invalid(
                "channels",
                format!("{name:?} is not a channel name"),
            ));
        }
        self.channel_labels.valid()
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub user_id: String,
    pub username: String,
    pub channel_id: String,
    pub channel: String,
    /// A member now: losing access means being removed.
    pub member: bool,
    /// Why the changed policies refuse (losses) or refused (gains).
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Simulation {
    pub gains: Vec<Change>,
    pub losses: Vec<Change>,
    /// Would-be denials an audit-mode policy would start recording.
    pub newly_audited: Vec<Change>,
}

#[derive(sqlx::FromRow)]
struct Person {
    id: String,
    username: String,
    role: String,
    attributes: sqlx::types::Json<serde_json::Map<String, serde_json::Value>>,
    guest_policy: Option<String>,
}

impl Person {
    fn subject(&self) -> Subject<'_> {
        Subject {
            role: Role::parse(&self.role).unwrap_or(Role::Guest),
            attributes: &self.attributes,
            guest_policy: self.guest_policy.as_deref(),
        }
    }
}

/// Everyone policies decide about and every channel they can gate, with
/// who is in which: what the simulator and the figures go through.
pub struct Population {
    channels: Vec<super::channels::Named>,
    people: Vec<Person>,
    /// (channel id, user id)
    members: HashSet<(String, String)>,
}

/// What one AccessPolicy does right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub policy: String,
    /// Members of the channels it gates whom it admits.
    pub admitted: i64,
    /// Active users it refuses in at least one channel it gates.
    pub denied: i64,
}

impl Population {
    pub async fn load(db: &sqlx::PgPool) -> Result<Population, sqlx::Error> {
        let channels = super::channels::named(db).await?;
        // Not `query!`: the condition is `active_user!()`, one definition of a
        // user who may act, joined with `concat!`, which `query!` does not take.
        let people = sqlx::query_as(concat!(
            "SELECT u.id, u.username, u.role, u.attributes, u.guest_policy FROM users u WHERE ",
            super::db::users::active_user!(),
            " ORDER BY u.username"
        ))
        .fetch_all(db)
        .await?;
        let members = sqlx::query!("SELECT channel_id, user_id FROM channel_members")
            .fetch_all(db)
            .await?
            .into_iter()
            .map(|m| (m.channel_id, m.user_id))
            .collect();
        Ok(Population {
            channels,
            people,
            members,
        })
    }

    fn member(&self, channel_id: &str, user_id: &str) -> bool {
        self.members
            .contains(&(channel_id.to_string(), user_id.to_string()))
    }

    /// Per policy in `policies`, each judged on its own (another policy
    /// refusing the same user does not change this one's figures).
    pub fn figures(&self, policies: &Policies) -> Vec<Figures> {
        policies
            .rules
            .iter()
            .map(|rule| {
                let mut admitted = HashSet::new();
                let mut denied = HashSet::new();
                for channel in self.channels.iter().filter(|c| rule.gates(&c.facts())) {
                    for person in &self.people {
                        if rule.refuses(&person.subject(), &channel.facts()).is_some() {
                            denied.insert(person.id.as_str());
                        } else if self.member(&channel.id, &person.id) {
                            admitted.insert(person.id.as_str());
                        }
                    }
                }
                Figures {
                    policy: rule.name.clone(),
                    admitted: admitted.len() as i64,
                    denied: denied.len() as i64,
                }
            })
            .collect()
    }
}

/// What a policy change would do, decided by the same code that enforces it.
pub async fn simulate(state: &AppState, request: Simulate) -> ApiResult<Simulation> {
    let current = state.policies();
    let change = if request.remove {
        Err(request.policy.as_str())
    } else {
        let expression = request.expression.clone().ok_or_else(|| {
            ApiError::invalid(
                "expression",
                "give the expression to simulate, or remove: true",
            )
        })?;
        if request.channels.is_empty() == request.channel_labels.0.is_empty() {
            return Err(ApiError::invalid(
                "channels",
                "set exactly one of channels (names) or channelLabels",
            ));
        }
        let definition = AccessRule {
            policy: request.policy.clone(),
            expression,
            channels: request.channels.clone(),
            channel_labels: request.channel_labels.0.clone(),
            mode: request.mode,
        };
        let rule = Rule::compile(&definition, &state.config().identity.ranked_attributes);
        if let Err(message) = &rule.expression {
            return Err(ApiError::invalid("expression", message.clone()));
        }
        Ok(rule)
    };
    let candidate = current.with(change);
    let population = Population::load(&state.db).await?;
    let mut simulation = Simulation {
        gains: Vec::new(),
        losses: Vec::new(),
        newly_audited: Vec::new(),
    };
    for channel in &population.channels {
        let facts = channel.facts();
        let (channel_id, name) = (&channel.id, &channel.name);
        if !current.gated(&facts) && !candidate.gated(&facts) {
            continue;
        }
        for person in &population.people {
            let subject = person.subject();
            let (before, after) = (
                current.decide(&subject, &facts),
                candidate.decide(&subject, &facts),
            );
            let change = |reason: String| Change {
                user_id: person.id.clone(),
                username: person.username.clone(),
                channel_id: channel_id.clone(),
                channel: name.clone(),
                member: population.member(channel_id, &person.id),
                reason,
            };
            match (before.allowed(), after.allowed()) {
                (true, false) => simulation.losses.push(change(after.reasons())),
                (false, true) => simulation.gains.push(change(before.reasons())),
                _ => {}
            }
            let audited_before: Vec<&str> = before
                .would_deny
                .iter()
                .map(|r| r.policy.as_str())
                .collect();
            for refusal in after
                .would_deny
                .iter()
                .filter(|r| !audited_before.contains(&r.policy.as_str()))
            {
                simulation
                    .newly_audited
                    .push(change(refusal.reason.clone()));
            }
        }
    }
    Ok(simulation)
}
