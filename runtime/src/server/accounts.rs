//! Managing accounts: the directory of users a caller may find, changing
//! one's own password, and deactivating and reactivating users. Over HTTP:
//! [`super::api::users`].

use serde::{Deserialize, Serialize};

use super::{
    audit,
    auth::{self, user_columns, Caller, User},
    authz::roles::Role,
    db,
    error::{ApiError, ApiResult},
    input::{self, Valid},
    sessions,
    state::AppState,
    throttle::Attempt,
};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Directory {
    /// Part of a username or display name, any case.
    #[param(format = "line", min_length = 1, max_length = 64)]
    pub q: Option<String>,
    /// Users after this username (the `next` of the previous page).
    #[param(format = "line", min_length = 1, max_length = 64)]
    pub after: Option<String>,
    /// 50 unless given.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Deactivated accounts too (system admins only).
    pub include_deactivated: Option<bool>,
}

impl Valid for Directory {
    fn valid(&self) -> ApiResult<()> {
        if let Some(q) = &self.q {
            input::line(q, 64).map_err(input::at("q"))?;
        }
        if let Some(after) = &self.after {
            input::line(after, 64).map_err(input::at("after"))?;
        }
        input::limit(self.limit, 200)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserPage {
    /// By username.
    pub users: Vec<User>,
    /// Cursor for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The users `caller` may find, by username, matching `q`: everyone in the
/// workspace for its members; for a guest, only the people they share a
/// channel with; partners' users, for anyone, only when they share a
/// channel. Emails are shown to system admins and to the user themselves.
pub async fn directory(state: &AppState, caller: &Caller, query: Directory) -> ApiResult<UserPage> {
    let admin = caller.role == Role::SystemAdmin;
    if query.include_deactivated == Some(true) && !admin {
        return Err(ApiError::forbidden(
            "only system admins see deactivated accounts",
        ));
    }
    let limit = query.limit.unwrap_or(50);
    // Not `query_as!`: the columns are `user_columns!()`, one definition of
    // a user as the API shows it, joined with `concat!`, which `query!` does not take.
    let mut users: Vec<User> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users u
         WHERE ($1 = '' OR strpos(lower(u.username), $1) > 0 OR strpos(lower(u.display_name), $1) > 0)
           AND lower(u.username) > $2
           AND (u.deactivated_at IS NULL OR $3)
           AND (u.id = $4
                OR ($5 AND u.origin IS NULL)
                OR EXISTS (SELECT 1 FROM channel_members a
                           JOIN channel_members b ON b.channel_id = a.channel_id
                           WHERE a.user_id = $4 AND b.user_id = u.id))
         ORDER BY lower(u.username) LIMIT $6"
    ))
    .bind(query.q.as_deref().unwrap_or("").to_lowercase())
    .bind(query.after.as_deref().unwrap_or("").to_lowercase())
    .bind(query.include_deactivated == Some(true))
    .bind(&caller.user_id)
    .bind(caller.role != Role::Guest)
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let next = if users.len() as i64 > limit {
        users.truncate(limit as usize);
        users.last().map(|u| u.username.to_lowercase())
    } else {
        None
    };
    for user in &mut users {
        if !admin && user.id != caller.user_id {
            user.email = None;
        }
    }
    Ok(UserPage { users, next })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePassword {
    #[schema(min_length = 1, max_length = 1024)]
    pub current_password: String,
    /// At least `identity.local.minPasswordLength` characters (12 unless configured).
    #[schema(min_length = 1, max_length = 1024)]
    pub new_password: String,
}

impl Valid for ChangePassword {
    fn valid(&self) -> ApiResult<()> {
        auth::password_length(&self.current_password)
            .map_err(|_| ApiError::invalid("currentPassword", "give your current password"))?;
        auth::password_length(&self.new_password).map_err(|mut e| {
            e.field = Some("newPassword".into());
            e
        })
    }
}

/// The caller changes their own password, proving the current one
/// (throttled like a sign-in): their other sessions end; this one and
/// their personal access tokens stay.
pub async fn change_password(
    state: &AppState,
    caller: &Caller,
    request: ChangePassword,
    address: Option<std::net::IpAddr>,
) -> ApiResult<()> {
    let row = sqlx::query!(
        "SELECT username, password_hash FROM users WHERE id = $1",
        caller.user_id
    )
    .fetch_one(&state.db)
    .await?;
    let Some(current) = row.password_hash else {
        return Err(ApiError::conflict(
            "currentPassword",
            "this account signs in through its identity provider and has no password here",
        ));
    };
    let attempt = Attempt::new(
        "wrong passwords",
        Some(format!("account:{}", row.username.to_lowercase())),
        address,
    );
    attempt.allowed(&state.throttle)?;
    if !state
        .passwords
        .verify(&request.current_password, Some(&current))
        .await?
    {
        attempt.failed(state).await?;
        return Err(ApiError {
            status: axum::http::StatusCode::FORBIDDEN,
            code: "wrong_password",
            message: "that is not your current password".into(),
            field: Some("currentPassword".into()),
            retry_after: None,
        });
    }
    attempt.succeeded(&state.throttle);
    auth::check_password(state, &request.new_password).map_err(|mut e| {
        e.field = Some("newPassword".into());
        e
    })?;
    let hash = state.passwords.hash(&request.new_password).await?;
    let mut tx = state.db.begin().await?;
    db::users::set_password(&mut *tx, &caller.user_id, &hash).await?;
    let ended =
        db::tokens::revoke_sessions_but(&mut *tx, &caller.user_id, &caller.token_id).await?;
    sessions::changed(&state.session_cache, &mut *tx, &caller.user_id).await?;
    audit::record(
        &mut *tx,
        audit::Entry {
            kind: audit::kind::PASSWORD_CHANGED,
            actor_id: Some(&caller.user_id),
            user_id: Some(&caller.user_id),
            reason: format!("the user changed their password; {ended} other sessions ended"),
            data: serde_json::json!({"sessionsEnded": ended}),
            ..Default::default()
        },
    )
    .await?;
    db::commit(tx).await?;
    Ok(())
}

/// `actor` (a system admin) deactivates a local user: every token of theirs
/// is revoked at once (their open WebSockets close), they can no longer
/// sign in, and what they wrote stays. Not oneself.
pub async fn deactivate(state: &AppState, actor: &Caller, user_id: &str) -> ApiResult<User> {
    set_active(state, actor, user_id, false).await
}

/// `actor` (a system admin) reactivates a deactivated user: they sign in
/// again with their password (no old session or token comes back).
pub async fn reactivate(state: &AppState, actor: &Caller, user_id: &str) -> ApiResult<User> {
    set_active(state, actor, user_id, true).await
}

/// `actor` (a system admin) ends every login session of a user (their
/// open pages and live streams with them; personal access tokens stay);
/// how many ended. They sign in again, through the identity provider or
/// with their password.
pub async fn end_sessions(state: &AppState, actor: &Caller, user_id: &str) -> ApiResult<u64> {
    actor.require_admin()?;
    let mut tx = state.db.begin().await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT true AS "exists!" FROM users WHERE id = $1 AND origin IS NULL"#,
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_none() {
        return Err(ApiError::not_found("user"));
    }
    let ended = db::tokens::revoke_sessions_but(&mut *tx, user_id, "").await?;
    sessions::changed(&state.session_cache, &mut *tx, user_id).await?;
    audit::record(
        &mut *tx,
        audit::Entry {
            kind: audit::kind::SESSIONS_ENDED,
            actor_id: Some(&actor.user_id),
            user_id: Some(user_id),
            reason: format!("a system admin ended the user's {ended} sessions"),
            data: serde_json::json!({"sessionsEnded": ended}),
            ..Default::default()
        },
    )
    .await?;
    db::commit(tx).await?;
    Ok(ended)
}

async fn set_active(
    state: &AppState,
    actor: &Caller,
    user_id: &str,
    active: bool,
) -> ApiResult<User> {
    actor.require_admin()?;
    if user_id == actor.user_id {
        return Err(ApiError::conflict(
            "id",
            "you cannot deactivate yourself; ask another system admin",
        ));
    }
    let mut tx = state.db.begin().await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT true AS "exists!" FROM users WHERE id = $1 AND origin IS NULL FOR UPDATE"#,
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_none() {
        return Err(ApiError::not_found("user"));
    }
    if db::users::set_deactivated(&mut *tx, user_id, !active).await? {
        if !active {
            db::tokens::revoke_all(&mut *tx, user_id).await?;
            sessions::changed(&state.session_cache, &mut *tx, user_id).await?;
        }
        let (kind, reason) = if active {
            (
                audit::kind::USER_REACTIVATED,
                "a system admin reactivated the user",
            )
        } else {
            (
                audit::kind::USER_DEACTIVATED,
                "a system admin deactivated the user; every session and token was revoked",
            )
        };
        audit::record(
            &mut *tx,
            audit::Entry {
                kind,
                actor_id: Some(&actor.user_id),
                user_id: Some(user_id),
                reason: reason.into(),
                data: serde_json::Value::Null,
                ..Default::default()
            },
        )
        .await?;
    }
    db::commit(tx).await?;
    let user: User = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE id = $1"
    ))
    .bind(user_id)
    .fetch_one(&state.db)
    .await
    .map_err(|e| ApiError::from(e).after_commit())?;
    Ok(user)
}
