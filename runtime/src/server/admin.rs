//! The admin gRPC endpoint the operator reads: health, counts, and the
//! figures of guest and access policies; federation's join it with that
//! feature.

use tonic::{Request, Response, Status};

use super::{access_admin::Population, events, state::AppState, ServerError};

/// The generated protocol types, client and server.
pub use entente_proto::admin as proto;

use proto::{
    admin_server::{Admin, AdminServer},
    AccessPolicyFigures, AccessReply, AccessRequest, CountsReply, CountsRequest, FederationReply,
    FederationRequest, GuestPolicyFigures, HealthReply, HealthRequest,
};

pub struct AdminService {
    state: AppState,
}

fn unavailable(error: sqlx::Error) -> Status {
    Status::unavailable(format!("database: {error}"))
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn health(&self, _: Request<HealthRequest>) -> Result<Response<HealthReply>, Status> {
        let (database, objects) = super::api::health::readiness(&self.state).await;
        Ok(Response::new(HealthReply {
            ready: database.is_ok() && objects.is_ok(),
            database: database.err().unwrap_or_else(|| "ok".into()),
            object_storage: objects.err().unwrap_or_else(|| "ok".into()),
            version: env!("CARGO_PKG_VERSION").into(),
            config_version: self.state.config().version,
        }))
    }

    async fn counts(&self, _: Request<CountsRequest>) -> Result<Response<CountsReply>, Status> {
        let counts = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM users WHERE deactivated_at IS NULL) AS "users!",
                      (SELECT count(*) FROM users WHERE deactivated_at IS NULL AND role = 'guest') AS "guests!",
                      (SELECT count(*) FROM channels WHERE archived_at IS NULL) AS "channels!",
                      (SELECT count(*) FROM posts WHERE deleted_at IS NULL) AS "posts!",
                      (SELECT count(*) FROM files) AS "files!""#
        )
        .fetch_one(&self.state.db)
        .await
        .map_err(unavailable)?;
        Ok(Response::new(CountsReply {
            users: counts.users,
            guests: counts.guests,
            channels: counts.channels,
            posts: counts.posts,
            files: counts.files,
            websocket_connections: self.state.metrics.websockets.get(),
            latest_event_seq: events::latest(&self.state.db).await.map_err(unavailable)?,
        }))
    }

    async fn federation(
        &self,
        _: Request<FederationRequest>,
    ) -> Result<Response<FederationReply>, Status> {
        Ok(Response::new(FederationReply {
            partners: super::federation::figures(&self.state)
                .await
                .map_err(unavailable)?,
        }))
    }

    async fn access(&self, _: Request<AccessRequest>) -> Result<Response<AccessReply>, Status> {
        Ok(Response::new(AccessReply {
            guest_policies: self.guest_figures().await.map_err(unavailable)?,
            access_policies: self.access_figures().await.map_err(unavailable)?,
        }))
    }
}

impl AdminService {
    async fn guest_figures(&self) -> Result<Vec<GuestPolicyFigures>, sqlx::Error> {
        let policies = self.state.policies();
        let names: Vec<String> = policies.guests.keys().cloned().collect();
        // Not `query!`: the condition is `active_user!()`, one definition of a
        // user who may act, joined with `concat!`, which `query!` does not take.
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(concat!(
            "SELECT p.name,
                    (SELECT count(*) FROM users u WHERE u.guest_policy = p.name AND ",
            super::db::users::active_user!(),
            "),
                    (SELECT count(*) FROM users u WHERE u.guest_policy = p.name AND u.deactivated_at IS NULL
                        AND (u.expired_at IS NOT NULL OR u.access_expires_at <= now())),
                    (SELECT count(*) FROM invitations i WHERE i.policy = p.name
                        AND i.redeemed_at IS NULL AND i.expires_at > now())
             FROM unnest($1::text[]) AS p(name) ORDER BY p.name"
        ))
        .bind(&names)
        .fetch_all(&self.state.db)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(policy, active, expired, pending_invitations)| GuestPolicyFigures {
                    policy,
                    active,
                    expired,
                    pending_invitations,
                },
            )
            .collect())
    }

    async fn access_figures(&self) -> Result<Vec<AccessPolicyFigures>, sqlx::Error> {
        let policies = self.state.policies();
        // The last audit entry includes findings noted before this call.
        self.state.findings.flush().await;
        let population = Population::load(&self.state.db).await?;
        let names: Vec<String> = policies.rules.iter().map(|r| r.name.clone()).collect();
        let last: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> = sqlx::query!(
            r#"SELECT policy AS "policy!", max(at) AS "at!" FROM audit_log
                   WHERE policy = ANY($1) GROUP BY policy"#,
            &names
        )
        .fetch_all(&self.state.db)
        .await?
        .into_iter()
        .map(|row| (row.policy, row.at))
        .collect();
        Ok(population
            .figures(&policies)
            .into_iter()
            .zip(&policies.rules)
            .map(|(figures, rule)| AccessPolicyFigures {
                last_audit: last
                    .get(&figures.policy)
                    .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                error: rule.expression.as_ref().err().cloned().unwrap_or_default(),
                policy: figures.policy,
                admitted: figures.admitted,
                denied: figures.denied,
            })
            .collect())
    }
}

/// Serves the admin API on `listener` until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    tonic::transport::Server::builder()
        .add_service(AdminServer::new(AdminService { state }))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
        .map_err(|e| ServerError::Serve(std::io::Error::other(e)))
}
