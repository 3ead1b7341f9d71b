//! The admin gRPC endpoint the operator reads: health and counts now;
//! federation, guest and policy figures join it with those features.

use tonic::{Request, Response, Status};

use super::{events, state::AppState, ServerError};

/// The generated protocol types, client and server.
pub mod proto {
    tonic::include_proto!("entente.admin.v1");
}

use proto::{
    admin_server::{Admin, AdminServer},
    CountsReply, CountsRequest, HealthReply, HealthRequest,
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
        let (database, objects) = super::readiness(&self.state).await;
        Ok(Response::new(HealthReply {
            ready: database.is_ok() && objects.is_ok(),
            database: database.err().unwrap_or_else(|| "ok".into()),
            object_storage: objects.err().unwrap_or_else(|| "ok".into()),
            version: env!("CARGO_PKG_VERSION").into(),
            config_version: self.state.config().version,
        }))
    }

    async fn counts(&self, _: Request<CountsRequest>) -> Result<Response<CountsReply>, Status> {
        let (users, guests, channels, posts, files): (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM users WHERE deactivated_at IS NULL),
                    (SELECT count(*) FROM users WHERE deactivated_at IS NULL AND role = 'guest'),
                    (SELECT count(*) FROM channels WHERE archived_at IS NULL),
                    (SELECT count(*) FROM posts WHERE deleted_at IS NULL),
                    (SELECT count(*) FROM files)",
        )
        .fetch_one(&self.state.db)
        .await
        .map_err(unavailable)?;
        Ok(Response::new(CountsReply {
            users,
            guests,
            channels,
            posts,
            files,
            websocket_connections: self.state.metrics.websockets.get(),
            latest_event_seq: events::latest(&self.state.db).await.map_err(unavailable)?,
        }))
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
