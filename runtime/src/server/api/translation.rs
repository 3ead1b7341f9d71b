//! Translation settings over HTTP: the language one reads, translation on
//! a channel (its admins) and one's own opt-out, and for admins the
//! provider and the pairs it offers ([`crate::server::translate`]).

use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};

use crate::server::{
    api::extract::{Body, Path, Valid},
    audit,
    auth::Caller,
    authz::gate::see,
    db,
    error::{ApiError, ApiResult},
    events::{self, Change},
    state::AppState,
};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Language {
    /// A BCP 47 tag (`en`, `es`, `pt-BR`) among the workspace's
    /// translation languages; `null`: the workspace's default.
    #[schema(pattern = "^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
    pub language: Option<String>,
}

impl Valid for Language {
    fn valid(&self) -> ApiResult<()> {
        let Some(tag) = &self.language else {
            return Ok(());
        };
        let mut parts = tag.split('-');
        let primary = parts.next().unwrap_or_default();
        let ok = (2..=3).contains(&primary.len())
            && primary.chars().all(|c| c.is_ascii_alphabetic())
            && parts.all(|p| {
                (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if !ok {
            return Err(ApiError::invalid(
                "language",
                "language is a BCP 47 tag such as en, es or pt-BR",
            ));
        }
        Ok(())
    }
}

/// Sets the language the caller reads and writes: posts in other
/// languages are translated into it, and theirs are not translated for
/// readers of the same language.
#[utoipa::path(put, path = "/api/v1/users/me/language", request_body = Language, responses((status = 204, description = "set"), (status = 400, description = "invalid input, or a language the workspace does not offer", body = ApiError), (status = 401, description = "not logged in", body = ApiError)), security(("bearer" = [])))]
pub async fn set_language(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<Language>,
) -> ApiResult<StatusCode> {
    if let (Some(tag), Some(translator)) = (&request.language, &state.translator) {
        let offered = &translator.config.languages;
        let primary = tag.split('-').next().unwrap_or(tag);
        if !offered
            .iter()
            .any(|l| l.eq_ignore_ascii_case(tag) || l.eq_ignore_ascii_case(primary))
        {
            return Err(ApiError::invalid(
                "language",
                format!("this workspace offers {}", offered.join(", ")),
            ));
        }
    }
    db::users::set_language(&state.db, &caller.user_id, request.language.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enabled {
    pub enabled: bool,
}

impl Valid for Enabled {
    fn valid(&self) -> ApiResult<()> {
        Ok(())
    }
}

fn translator(
    state: &AppState,
) -> ApiResult<&std::sync::Arc<crate::server::translate::Translator>> {
    state.translator.as_ref().ok_or_else(|| {
        ApiError::forbidden(
            "this workspace translates nothing (no translation provider is configured)",
        )
    })
}

/// Turns translation on or off in a channel: its admins (in a
/// conversation, any of its members).
#[utoipa::path(put, path = "/api/v1/channels/{id}/translation", params(("id" = String, Path)), request_body = Enabled, responses((status = 204, description = "set"), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "not the channel's admin, or no provider", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn set_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<Enabled>,
) -> ApiResult<StatusCode> {
    translator(&state)?;
    let seen = see(&state, &caller, &id).await?;
    let conversation = matches!(seen.channel.kind.as_str(), "direct" | "group");
    if !(seen.access.manage || conversation && seen.channel.member) {
        return Err(ApiError::forbidden(
            "only the channel's admins turn translation on or off",
        ));
    }
    let mut tx = state.db.begin().await?;
    db::channels::set_translation(&mut *tx, &id, request.enabled).await?;
    audit::record(
        &mut *tx,
        audit::Entry {
            kind: audit::kind::CHANNEL_UPDATED,
            actor_id: Some(&caller.user_id),
            channel_id: Some(&id),
            reason: if request.enabled {
                "translation turned on: its posts are sent to the workspace's translation provider"
            } else {
                "translation turned off"
            }
            .into(),
            data: serde_json::json!({"translation": request.enabled}),
            ..Default::default()
        },
    )
    .await?;
    events::record(
        &mut tx,
        &Change::TranslationSwitched(events::TranslationSwitch {
            channel_id: id,
            enabled: request.enabled,
        }),
    )
    .await?;
    db::commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Opts the caller in to (or out of) translation in one channel.
#[utoipa::path(put, path = "/api/v1/channels/{id}/translation/me", params(("id" = String, Path)), request_body = Enabled, responses((status = 204, description = "set"), (status = 400, description = "invalid input", body = ApiError), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "not a member, or no provider", body = ApiError), (status = 404, description = "no such thing, or not yours to see", body = ApiError)), security(("bearer" = [])))]
pub async fn set_mine(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<Enabled>,
) -> ApiResult<StatusCode> {
    translator(&state)?;
    see(&state, &caller, &id).await?;
    if !db::members::set_translate(&state.db, &id, &caller.user_id, request.enabled).await? {
        return Err(ApiError::forbidden("join the channel first"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Offered {
    /// Who translates: `apertium`, `libretranslate` or `language-model`.
    pub provider: String,
    /// The languages one may choose to read.
    pub languages: Vec<String>,
    /// The language of whoever chose none.
    pub default_language: String,
}

/// What this workspace translates into, and through whom.
#[utoipa::path(get, path = "/api/v1/translation", responses((status = 200, body = Offered), (status = 401, description = "not logged in", body = ApiError), (status = 404, description = "this workspace translates nothing", body = ApiError)), security(("bearer" = [])))]
pub async fn offered(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Offered>> {
    let translator = state
        .translator
        .as_ref()
        .ok_or_else(|| ApiError::not_found("translation"))?;
    Ok(Json(Offered {
        provider: translator.provider.name().into(),
        languages: translator.config.languages.clone(),
        default_language: translator.config.default_language.clone(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranslationStatus {
    pub provider: String,
    /// The languages readers may choose.
    pub languages: Vec<String>,
    pub default_language: String,
    /// The pairs the provider offers, as `from→to`.
    pub pairs: Vec<String>,
    /// Pairs of the workspace's languages the provider does not offer:
    /// posts between them are not translated, and readers are told.
    pub missing: Vec<String>,
    /// Why the provider could not be asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The provider, and which of the workspace's language pairs it can do.
#[utoipa::path(get, path = "/api/v1/admin/translation", responses((status = 200, body = TranslationStatus), (status = 401, description = "not logged in", body = ApiError), (status = 403, description = "not a system admin, or no provider", body = ApiError)), security(("bearer" = [])))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<TranslationStatus>> {
    caller.require_admin()?;
    let translator = translator(&state)?;
    let config = &translator.config;
    let pairs = translator.provider.pairs().await;
    let offered = pairs.as_ref().map(Vec::as_slice).unwrap_or_default();
    let missing = config
        .languages
        .iter()
        .flat_map(|a| {
            config
                .languages
                .iter()
                .filter(move |b| *b != a)
                .map(move |b| (a, b))
        })
        .filter(|(a, b)| !offered.iter().any(|(x, y)| x == *a && y == *b))
        .map(|(a, b)| format!("{a}→{b}"))
        .collect();
    Ok(Json(TranslationStatus {
        provider: translator.provider.name().into(),
        languages: config.languages.clone(),
        default_language: config.default_language.clone(),
        pairs: offered.iter().map(|(a, b)| format!("{a}→{b}")).collect(),
        missing,
        problem: pairs.err().map(|e| e.to_string()),
    }))
}
