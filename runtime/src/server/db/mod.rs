//! The data layer: the only code that inserts, updates or deletes rows.
//!
//! Each table has exactly one writer module, named in [`WRITERS`]; a test
//! reads the whole crate and fails if a write statement on a table appears
//! anywhere else. Domain modules decide *what* to write (rules, events,
//! the federation outbox) and call these functions to write it; reads may
//! stay beside the code that needs them.
//!
//! Functions take any executor (`&PgPool`, a transaction) so a domain
//! operation composes several writes into one transaction. They return
//! [`Error`], never an HTTP type: the API maps it once.

pub mod ai;
pub mod audit;
pub mod calls;
pub mod channels;
pub mod federation;
pub mod files;
pub mod invitations;
pub mod members;
pub mod posts;
pub mod sso;
pub mod tokens;
pub mod translations;
pub mod users;

/// Which module owns the writes of each table (paths under `src/server/`).
pub const WRITERS: &[(&str, &str)] = &[
    ("users", "db/users.rs"),
    ("tokens", "db/tokens.rs"),
    ("channels", "db/channels.rs"),
    ("channel_members", "db/members.rs"),
    ("posts", "db/posts.rs"),
    ("post_edits", "db/posts.rs"),
    ("reactions", "db/posts.rs"),
    ("mentions", "db/posts.rs"),
    ("files", "db/files.rs"),
    ("federation_file_parts", "db/files.rs"),
    ("invitations", "db/invitations.rs"),
    ("audit_log", "db/audit.rs"),
    ("access_findings", "db/audit.rs"),
    ("access_policies_seen", "db/audit.rs"),
    ("calls", "db/calls.rs"),
    ("call_participants", "db/calls.rs"),
    ("federation_outbox", "db/federation.rs"),
    ("federation_peers", "db/federation.rs"),
    ("federation_applied", "db/federation.rs"),
    ("events", "events.rs"),
    ("user_identities", "db/sso.rs"),
    ("sso_flows", "db/sso.rs"),
    ("agent_requests", "db/ai.rs"),
    ("ai_usage", "db/ai.rs"),
    ("translation_jobs", "db/translations.rs"),
    ("post_translations", "db/translations.rs"),
];

/// What went wrong in the database, as callers need to tell it apart.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database cannot be reached (or the pool is exhausted): nothing
    /// was written, and retrying later may succeed.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The connection was lost while a transaction committed, or after it
    /// did: the change may or may not be saved.
    #[error("the database became unavailable at or after commit: {0}")]
    Uncertain(#[source] sqlx::Error),
    /// Text PostgreSQL cannot store: a NUL character (U+0000), in a text
    /// column or in JSON. Nothing was written; the input is to fix.
    #[error("text the database cannot store: {0}")]
    Unstorable(#[source] sqlx::Error),
    /// Anything else: a bug or a broken invariant.
    #[error("database error: {0}")]
    Query(#[source] sqlx::Error),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => Error::Unavailable(error),
            // The server went away under the statement: a connection
            // exception (08…), a shutdown or crash (57P01-57P03), or no
            // room for another connection (53300). The statement's
            // transaction is rolled back.
            sqlx::Error::Database(ref e)
                if e.code().is_some_and(|code| {
                    code.starts_with("08")
                        || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
                }) =>
            {
                Error::Unavailable(error)
            }
            // character_not_in_repertoire (a NUL in text) and
            // untranslatable_character (a \u0000 in JSON).
            sqlx::Error::Database(ref e)
                if matches!(e.code().as_deref(), Some("22021") | Some("22P05")) =>
            {
                Error::Unstorable(error)
            }
            other => Error::Query(other),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// This error, met once a change was committed (or while committing):
    /// a lost database no longer means nothing was saved.
    pub fn after_commit(self) -> Error {
        match self {
            Error::Unavailable(e) => Error::Uncertain(e),
            other => other,
        }
    }
}

/// Commits `tx`. A connection lost during the commit leaves its outcome
/// unknown ([`Error::Uncertain`]), which callers must not report as
/// "nothing was changed".
pub async fn commit(tx: sqlx::Transaction<'_, sqlx::Postgres>) -> Result<()> {
    tx.commit()
        .await
        .map_err(|e| Error::from(e).after_commit())?;
    // Events it wrote are numbered now, not at the sequencer's next look,
    // and questions to agents it queued are taken at once.
    super::events::written();
    super::ai::agents::wake();
    super::translate::wake();
    Ok(())
}

/// An insert's outcome: whether it wrote its row, `false` when a unique key
/// (a name, an email) was taken.
pub(crate) fn inserted(
    result: std::result::Result<sqlx::postgres::PgQueryResult, sqlx::Error>,
) -> Result<bool> {
    match result {
        Ok(done) => Ok(done.rows_affected() == 1),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether the database answers a trivial query.
pub async fn ping(db: &sqlx::PgPool) -> Result<()> {
    sqlx::query_scalar!("SELECT 1 AS answer")
        .fetch_one(db)
        .await?;
    Ok(())
}

/// A new row id (a ULID: sortable by creation time).
pub fn new_id() -> String {
    ulid::Ulid::new().to_string()
}

#[cfg(test)]
mod tests {
    use super::WRITERS;
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source tree") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Every `INSERT INTO t`, `UPDATE t` and `DELETE FROM t` in the crate's
    /// sources, as (table, file relative to `src/server/`).
    fn writes() -> Vec<(String, String)> {
        let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it for tests");
        let src = Path::new(&crate_dir).join("src");
        let server = src.join("server");
        let mut files = Vec::new();
        sources(&src, &mut files);
        // Upper case, as every statement here is written; `FOR UPDATE` and
        // `DO UPDATE SET` (an upsert) name no table of their own.
        let statement = regex::Regex::new(
            r"(?:(\w+)\s+)?\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([a-z_]+)\b",
        )
        .unwrap();
        let mut found = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable source");
            let code: String = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for m in statement.captures_iter(&code) {
                if matches!(m.get(1).map(|w| w.as_str()), Some("FOR" | "DO")) {
                    continue;
                }
                let relative = file
                    .strip_prefix(&server)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| file.display().to_string());
                found.push((m[2].to_string(), relative));
            }
        }
        found
    }

    #[test]
    fn a_lost_database_is_unavailable_before_commit_and_uncertain_after() {
        let lost = || sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(matches!(
            super::Error::from(lost()),
            super::Error::Unavailable(_)
        ));
        assert!(matches!(
            super::Error::from(lost()).after_commit(),
            super::Error::Uncertain(_)
        ));
        assert!(matches!(
            super::Error::from(sqlx::Error::RowNotFound).after_commit(),
            super::Error::Query(_)
        ));
    }

    #[test]
    fn every_table_has_one_writer() {
        let found = writes();
        assert!(
            found.iter().any(|(t, _)| t == "posts"),
            "the scan found no write of posts at all: it is not reading the sources"
        );
        let mut strays = Vec::new();
        for (table, file) in &found {
            match WRITERS.iter().find(|(t, _)| t == table) {
                Some((_, owner)) if owner == file => {}
                Some((_, owner)) => {
                    strays.push(format!("{file} writes {table} (owned by {owner})"))
                }
                None => strays.push(format!(
                    "{file} writes {table}, which has no writer in db::WRITERS"
                )),
            }
        }
        assert!(
            strays.is_empty(),
            "writes outside their table's module:\n{}",
            strays.join("\n")
        );
    }
}
