//! Audit-mode findings: when an `Audit` AccessPolicy would deny a user a
//! channel they use, the would-be denial is recorded in the audit log once
//! (until it stops holding; then a later one is recorded again).
//!
//! The read gate only notes a finding ([`Recorder::note`]); a task records
//! it, so no read path writes. Reading the audit log first waits for what
//! was noted before ([`Recorder::flush`]), so an admin sees every finding
//! of the requests that came before theirs.

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::policy::Refusal;
use crate::server::{
    audit::{self, kind},
    db,
};

/// Findings waiting to be recorded. Past this, a read waits for room
/// (findings are audit records: none is dropped).
const QUEUE: usize = 1024;

/// Audit-mode refusals of one user in one channel.
#[derive(Debug)]
pub struct Finding {
    pub user_id: String,
    pub channel_id: String,
    pub channel_name: String,
    pub would_deny: Vec<Refusal>,
}

enum Message {
    Found(Finding),
    Flush(oneshot::Sender<()>),
}

/// Where the read gate notes findings.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Message>,
}

impl Recorder {
    /// Starts the task that records what is noted, on `db`; it ends when
    /// the last [`Recorder`] goes, after recording what is queued.
    pub fn start(db: PgPool) -> Recorder {
        let (queue, mut noted) = mpsc::channel(QUEUE);
        tokio::spawn(async move {
            while let Some(message) = noted.recv().await {
                match message {
                    Message::Found(finding) => {
                        if let Err(error) = record(&db, &finding).await {
                            tracing::error!(
                                %error,
                                user = %finding.user_id,
                                channel = %finding.channel_id,
                                "cannot record an audit-mode finding"
                            );
                        }
                    }
                    Message::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Recorder { queue }
    }

    pub async fn note(&self, finding: Finding) {
        let _ = self.queue.send(Message::Found(finding)).await;
    }

    /// Returns once everything noted before has been recorded.
    pub async fn flush(&self) {
        let (done, recorded) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = recorded.await;
        }
    }
}

/// Records each refusal of `finding` once; forgets those of the user in
/// the channel that no longer hold, so a later one is recorded again.
pub async fn record(db: &PgPool, finding: &Finding) -> Result<(), db::Error> {
    let (user_id, channel_id) = (finding.user_id.as_str(), finding.channel_id.as_str());
    let refusing: Vec<String> = finding
        .would_deny
        .iter()
        .map(|r| r.policy.clone())
        .collect();
    db::audit::forget_findings(db, user_id, channel_id, &refusing).await?;
    for refusal in &finding.would_deny {
        let mut tx = db.begin().await?;
        let new = db::audit::note_finding(&mut *tx, &refusal.policy, user_id, channel_id).await?;
        if new {
            audit::record(
                &mut *tx,
                audit::Entry {
                    kind: kind::ACCESS_WOULD_DENY,
                    user_id: Some(user_id),
                    channel_id: Some(channel_id),
                    policy: Some(&refusal.policy),
                    reason: format!("{} (audit mode: access allowed)", refusal.reason),
                    data: serde_json::json!({"channel": finding.channel_name}),
                    ..Default::default()
                },
            )
            .await?;
        }
        db::commit(tx).await?;
    }
    Ok(())
}
