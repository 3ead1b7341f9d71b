//! Full-text search over the posts the caller may read, with `in:channel`,
//! `from:user`, `before:date` and `after:date` filters (`GET
//! /api/v1/search?q=…`, [`super::api::search`]).

use chrono::NaiveDate;

use super::{
    auth::Caller,
    authz::{gate, roles::Role},
    db::posts::post_select,
    error::{ApiError, ApiResult},
    posts::Post,
    state::AppState,
};

/// A search request, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Terms {
    /// Words and quoted phrases, as `websearch_to_tsquery` reads them.
    pub text: String,
    pub in_channels: Vec<String>,
    pub from_users: Vec<String>,
    /// Posts created before the start of this day (UTC).
    pub before: Option<NaiveDate>,
    /// Posts created after the end of this day (UTC).
    pub after: Option<NaiveDate>,
}

/// Splits `q` into filters and text; an unreadable date names the filter.
pub fn parse(q: &str) -> ApiResult<Terms> {
    let mut terms = Terms::default();
    let mut text = Vec::new();
    for word in q.split_whitespace() {
        let date = |value: &str, filter: &str| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
                ApiError::invalid(
                    "q",
                    format!("{filter}: needs a date as YYYY-MM-DD, got {value:?}"),
                )
            })
        };
        match word.split_once(':') {
            Some(("in", channel)) if !channel.is_empty() => terms
                .in_channels
                .push(channel.trim_start_matches('~').to_ascii_lowercase()),
            Some(("from", user)) if !user.is_empty() => terms
                .from_users
                .push(user.trim_start_matches('@').to_ascii_lowercase()),
            Some(("before", day)) => terms.before = Some(date(day, "before")?),
            Some(("after", day)) => terms.after = Some(date(day, "after")?),
            _ => text.push(word),
        }
    }
    terms.text = text.join(" ");
    if terms.text.is_empty() && terms.in_channels.is_empty() && terms.from_users.is_empty() {
        return Err(ApiError::invalid(
            "q",
            "search for some words, or filter with in:, from:, before:, after:",
        ));
    }
    Ok(terms)
}

/// Up to `limit` posts matching `terms`, best first (newest first among
/// equals), from channels the caller may read: their own, and for
/// non-guests the public ones, less those access policies keep from them.
pub async fn posts(
    state: &AppState,
    caller: &Caller,
    terms: &Terms,
    limit: i64,
) -> ApiResult<Vec<Post>> {
    // Not `query_as!`: the columns are `post_select!()`, one definition for
    // every read of posts, joined with `concat!`, which `query!` does not take.
    Ok(sqlx::query_as(concat!(
        post_select!(),
        " JOIN channels c ON c.id = p.channel_id
          JOIN users a ON a.id = p.user_id
          LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $1
          WHERE p.deleted_at IS NULL
            AND (m.user_id IS NOT NULL OR (c.kind = 'public' AND $2))
            AND NOT (c.id = ANY($9))
            AND ($3 = '' OR p.search @@ websearch_to_tsquery('simple', $3))
            AND (cardinality($4::text[]) = 0 OR lower(c.name) = ANY($4))
            AND (cardinality($5::text[]) = 0 OR lower(a.username) = ANY($5))
            AND ($6::date IS NULL OR p.created_at < $6::date)
            AND ($7::date IS NULL OR p.created_at >= $7::date + 1)
          ORDER BY ts_rank(p.search, websearch_to_tsquery('simple', $3)) DESC, p.seq DESC
          LIMIT $8"
    ))
    .bind(&caller.user_id)
    .bind(caller.role != Role::Guest)
    .bind(&terms.text)
    .bind(&terms.in_channels)
    .bind(&terms.from_users)
    .bind(terms.before)
    .bind(terms.after)
    .bind(limit)
    .bind(gate::denied(state, caller).await?)
    .fetch_all(&state.db)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_text_are_told_apart() {
        let terms =
            parse("convoy \"north gate\" in:ops from:@Alice after:2026-01-31 before:2026-03-01")
                .unwrap();
        assert_eq!(terms.text, "convoy \"north gate\"");
        assert_eq!(terms.in_channels, ["ops"]);
        assert_eq!(terms.from_users, ["alice"]);
        assert_eq!(terms.after, NaiveDate::from_ymd_opt(2026, 1, 31));
        assert_eq!(terms.before, NaiveDate::from_ymd_opt(2026, 3, 1));
    }

    #[test]
    fn bad_dates_and_empty_searches_say_what_to_fix() {
        let error = parse("before:yesterday").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("q"));
        assert!(error.message.contains("YYYY-MM-DD"), "{}", error.message);
        assert!(parse("   ").is_err());
        assert_eq!(parse("in:ops").unwrap().text, "");
        assert_eq!(parse("http://x.y").unwrap().text, "http://x.y");
    }
}
