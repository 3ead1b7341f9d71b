//! Guests: people from outside the organisation, let in by a GuestPolicy.
//!
//! A system admin invites a named email under a policy; the invitation is a
//! single-use token that expires after the policy's `invitationLifetime`.
//! Redeeming it creates a guest account (the policy's attributes, its
//! channels, an end of access from `expiresAt` or `accountLifetime`) and
//! signs the guest in. From then on the guest sees only the channels the
//! policy lists ([`super::authz::policy`]), uploads and messages directly only if
//! it allows, and when access ends (the date passes or the policy is
//! removed) the account can no longer sign in and leaves its channels
//! ([`super::authz::sweep::expire_guests`]). Every step is in the audit
//! log. Over HTTP: [`super::api::guests`].

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use entente_crds::config::GuestRules;
use serde::{Deserialize, Serialize};

use super::{
    audit::{self, kind},
    auth::{self, LoginResponse},
    authz::{self, policy::Subject},
    channels,
    db::{self, new_id},
    error::{ApiError, ApiResult},
    input::{self, Valid},
    state::AppState,
    throttle::Attempt,
};

/// An account's lifetime when the policy sets neither `expiresAt` nor
/// `accountLifetime` (the GuestPolicy's documented default, 720h).
const DEFAULT_ACCOUNT_LIFETIME: Duration = Duration::hours(720);

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Invite {
    /// The GuestPolicy (by name) the guest comes in under.
    #[schema(format = "line", min_length = 1, max_length = 253)]
    pub policy: String,
    #[schema(format = "email-address", max_length = 254)]
    pub email: String,
    /// The guest's organisation, for policies that admit organisations.
    #[serde(default)]
    #[schema(format = "line", min_length = 1, max_length = 128)]
    pub organisation: Option<String>,
}

impl Valid for Invite {
    fn valid(&self) -> ApiResult<()> {
        input::line(&self.policy, 253).map_err(input::at("policy"))?;
        input::email(&self.email).map_err(input::at("email"))?;
        if let Some(organisation) = &self.organisation {
            input::line(organisation, input::ORGANISATION_MAX)
                .map_err(input::at("organisation"))?;
        }
        Ok(())
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub id: String,
    /// Shown once; only its hash is stored. Redeem it at `/api/v1/guests/redeem`.
    pub token: String,
    pub policy: String,
    pub email: String,
    pub expires_at: DateTime<Utc>,
}

/// Whether `rules` admit `email` (or its organisation).
pub fn admits(rules: &GuestRules, email: &str, organisation: Option<&str>) -> bool {
    let email = email.to_ascii_lowercase();
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    rules.emails.iter().any(|e| e.eq_ignore_ascii_case(&email))
        || rules
            .domains
            .iter()
            .any(|d| domain == d || domain.ends_with(&format!(".{d}")))
        || organisation.is_some_and(|o| {
            rules
                .organisations
                .iter()
                .any(|x| x.eq_ignore_ascii_case(o))
        })
}

fn rules_of(state: &AppState, policy: &str) -> ApiResult<GuestRules> {
    let policies = state.policies();
    policies.guests.get(policy).cloned().ok_or_else(|| {
        let known: Vec<&str> = policies.guests.keys().map(String::as_str).collect();
        ApiError::invalid(
            "policy",
            format!(
                "no GuestPolicy named {policy:?} applies to this workspace (there are: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        )
    })
}

/// `inviter` (a system admin) invites one person as a guest under a
/// GuestPolicy: a single-use invitation, in the audit log.
pub async fn invite(state: &AppState, inviter: &str, request: Invite) -> ApiResult<Invitation> {
    let rules = rules_of(state, &request.policy)?;
    let email = request.email.trim().to_ascii_lowercase();
    if !admits(&rules, &email, request.organisation.as_deref()) {
        return Err(ApiError::forbidden(format!(
            "guest policy {:?} does not admit {email} (it admits emails {:?}, domains {:?}, organisations {:?})",
            rules.policy, rules.emails, rules.domains, rules.organisations
        )));
    }
    let taken = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = $1 AND deactivated_at IS NULL AND expired_at IS NULL) AS "taken!""#,
        email
    )
    .fetch_one(&state.db)
    .await?;
    if taken {
        return Err(ApiError::conflict(
            "email",
            "an account with this email exists",
        ));
    }
    let (token, hash) = auth::new_token();
    let id = new_id();
    let expires_at = Utc::now() + Duration::seconds(rules.invitation_lifetime_seconds as i64);
    let mut tx = state.db.begin().await?;
    db::invitations::insert(
        &mut *tx,
        db::invitations::NewInvitation {
            id: &id,
            token_hash: &hash,
            policy: &rules.policy,
            email: &email,
            organisation: request.organisation.as_deref(),
            invited_by: inviter,
            expires_at,
        },
    )
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry {
            kind: kind::GUEST_INVITED,
            actor_id: Some(inviter),
            policy: Some(&rules.policy),
            reason: format!("{email} invited as a guest"),
            data: serde_json::json!({"invitationId": id, "email": email, "expiresAt": expires_at}),
            ..Default::default()
        },
    )
    .await?;
    db::commit(tx).await?;
    Ok(Invitation {
        id,
        token,
        policy: rules.policy,
        email,
        expires_at,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Redeem {
    #[schema(format = "line", min_length = 1, max_length = 128)]
    pub token: String,
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub username: String,
    /// At least `identity.local.minPasswordLength` characters (12 unless configured).
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
    #[serde(default)]
    #[schema(format = "line", min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
    /// For a browser: the session in a cookie, as at sign-in.
    #[serde(default)]
    pub cookie: bool,
}

impl Valid for Redeem {
    fn valid(&self) -> ApiResult<()> {
        input::line(&self.token, 128).map_err(input::at("token"))?;
        auth::username(&self.username)?;
        auth::password_length(&self.password)?;
        if let Some(name) = &self.display_name {
            input::line(name, input::DISPLAY_NAME_MAX).map_err(input::at("displayName"))?;
        }
        Ok(())
    }
}

fn gone(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::GONE,
        code,
        message: message.into(),
        field: Some("token".into()),
        retry_after: None,
    }
}

/// When a guest admitted now under `rules` loses access.
pub fn access_ends(rules: &GuestRules, now: DateTime<Utc>) -> DateTime<Utc> {
    let fixed = rules
        .expires_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let lifetime = rules
        .account_lifetime_seconds
        .map(|s| now + Duration::seconds(s as i64));
    match (fixed, lifetime) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => now + DEFAULT_ACCOUNT_LIFETIME,
    }
}

/// Redeems an invitation (once): creates the guest account, adds it to its
/// policy's channels, and signs it in.
pub async fn redeem(
    state: &AppState,
    request: Redeem,
    address: Option<std::net::IpAddr>,
) -> ApiResult<LoginResponse> {
    // Guessing invitation tokens is throttled per address, like passwords.
    let attempt = Attempt::new("invitation tokens that do not work", None, address);
    attempt.allowed(&state.throttle)?;
    let result = redeem_checked(state, request).await;
    if let Err(error) = &result {
        if matches!(
            error.code,
            "not_found" | "invitation_used" | "invitation_expired"
        ) {
            attempt.failed(state).await?;
        }
    }
    result
}

async fn redeem_checked(state: &AppState, request: Redeem) -> ApiResult<LoginResponse> {
    auth::check_password(state, &request.password)?;
    let hash = state.passwords.hash(&request.password).await?;
    let mut tx = state.db.begin().await?;
    let invitation = sqlx::query!(
        "SELECT id, policy, email, organisation, expires_at, redeemed_at FROM invitations
         WHERE token_hash = $1 FOR UPDATE",
        auth::token_hash(&request.token)
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::not_found("invitation"))?;
    let (invitation_id, policy, email, organisation, expires_at, redeemed_at) = (
        invitation.id,
        invitation.policy,
        invitation.email,
        invitation.organisation,
        invitation.expires_at,
        invitation.redeemed_at,
    );
    let now = Utc::now();
    let rules = state.policies().guests.get(&policy).cloned();
    let refusal = match (&redeemed_at, &rules) {
        (Some(at), _) => Some(gone(
            "invitation_used",
            format!("this invitation was already used, at {}", at.to_rfc3339()),
        )),
        (None, _) if expires_at <= now => Some(gone(
            "invitation_expired",
            format!(
                "this invitation expired at {}; ask for a new one",
                expires_at.to_rfc3339()
            ),
        )),
        (None, None) => Some(gone(
            "policy_removed",
            format!("guest policy {policy:?} no longer exists"),
        )),
        (None, Some(rules)) if access_ends(rules, now) <= now => Some(gone(
            "policy_ended",
            format!("guest policy {policy:?} has ended"),
        )),
        _ => None,
    };
    if let Some(error) = refusal {
        tx.rollback().await?;
        audit::record(
            &state.db,
            audit::Entry {
                kind: kind::INVITATION_REFUSED,
                policy: Some(&policy),
                reason: error.message.clone(),
                data: serde_json::json!({"invitationId": invitation_id, "email": email, "username": request.username}),
                ..Default::default()
            },
        )
        .await?;
        return Err(error);
    }
    let rules = rules.expect("checked above");
    let ends = access_ends(&rules, now);
    let mut attributes: serde_json::Map<String, serde_json::Value> = rules
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    if let Some(organisation) = &organisation {
        attributes
            .entry("organisation")
            .or_insert_with(|| organisation.clone().into());
    }
    let user_id = new_id();
    let inserted = db::users::insert(
        &mut *tx,
        db::users::NewUser {
            id: &user_id,
            username: &request.username,
            email: Some(&email),
            display_name: request.display_name.as_deref().unwrap_or(&request.username),
            password_hash: &hash,
            role: "guest",
            attributes: serde_json::Value::Object(attributes.clone()),
            guest_policy: Some(&policy),
            access_expires_at: Some(ends),
        },
    )
    .await?;
    if !inserted {
        return Err(ApiError::conflict(
            "username",
            "that username or email is taken",
        ));
    }
    db::invitations::redeemed(&mut *tx, &invitation_id, &user_id).await?;
    // The policy's channels, less any an access policy closes to this guest.
    let named = sqlx::query_as!(
        channels::Channel,
        r#"SELECT id, kind, name, display_name, purpose, header, created_at, archived_at, labels,
                  false AS "member!", 0::bigint AS "unread!", 0::bigint AS "mentions!",
                  ARRAY[]::text[] AS "shared_with!", translation, false AS "translate!"
           FROM channels WHERE lower(name) = ANY($1) AND archived_at IS NULL"#,
        &rules
            .channels
            .iter()
            .map(|c| c.to_ascii_lowercase())
            .collect::<Vec<_>>()
    )
    .fetch_all(&mut *tx)
    .await?;
    let subject = Subject {
        role: super::authz::roles::Role::Guest,
        attributes: &attributes,
        guest_policy: Some(&policy),
    };
    let mut joined = Vec::new();
    for channel in &named {
        let verdict = authz::gate::verdict(state, &subject, channel);
        if verdict.allowed() {
            channels::add_member(&mut tx, &state.config(), &channel.id, &user_id, "member").await?;
            joined.push(channel.name.clone());
        } else {
            audit::record(
                &mut *tx,
                audit::Entry {
                    kind: kind::ACCESS_DENIED,
                    user_id: Some(&user_id),
                    channel_id: Some(&channel.id),
                    policy: Some(&verdict.denied[0].policy),
                    reason: verdict.reasons(),
                    data: serde_json::json!({"attempt": "guest joining its policy's channels"}),
                    ..Default::default()
                },
            )
            .await?;
        }
    }
    audit::record(
        &mut *tx,
        audit::Entry {
            kind: kind::GUEST_JOINED,
            user_id: Some(&user_id),
            policy: Some(&policy),
            reason: format!("{email} redeemed an invitation as {}", request.username),
            data: serde_json::json!({"invitationId": invitation_id, "channels": joined, "accessExpiresAt": ends}),
            ..Default::default()
        },
    )
    .await?;
    let token = auth::start_session(&mut *tx, &user_id).await?;
    db::commit(tx).await?;
    let user = auth::find_user(&state.db, &user_id)
        .await
        .map_err(ApiError::after_commit)?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(LoginResponse::bearer(token, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> GuestRules {
        GuestRules {
            policy: "liaison".into(),
            emails: vec!["Named@Elsewhere.example".into()],
            domains: vec!["partner.example".into()],
            organisations: vec!["Allied Corp".into()],
            channels: vec!["joint".into()],
            account_lifetime_seconds: None,
            expires_at: None,
            invitation_lifetime_seconds: 3600,
            upload_files: false,
            direct_messages: false,
            attributes: Default::default(),
        }
    }

    #[test]
    fn invitees_are_named_emails_domains_or_organisations() {
        let r = rules();
        assert!(admits(&r, "named@elsewhere.example", None));
        assert!(admits(&r, "anyone@partner.example", None));
        assert!(admits(&r, "anyone@hq.partner.example", None), "subdomains");
        assert!(
            !admits(&r, "anyone@evilpartner.example", None),
            "not a suffix match"
        );
        assert!(!admits(&r, "x@other.example", None));
        assert!(admits(&r, "x@other.example", Some("allied corp")));
    }

    #[test]
    fn access_ends_at_the_earlier_of_the_date_and_the_lifetime() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut r = rules();
        assert_eq!(access_ends(&r, now), now + Duration::hours(720));
        r.account_lifetime_seconds = Some(3600);
        assert_eq!(access_ends(&r, now), now + Duration::hours(1));
        r.expires_at = Some("2026-11-22T00:30:00Z".into());
        assert_eq!(access_ends(&r, now), now + Duration::minutes(30));
        r.account_lifetime_seconds = None;
        assert_eq!(access_ends(&r, now), now + Duration::minutes(30));
    }
}
