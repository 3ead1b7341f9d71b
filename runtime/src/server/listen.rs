//! The API's listener: how connections are accepted and how long each may
//! take ([`ConnectionLimits`], read from the config as each is accepted).
//!
//! - a client has `headerTimeoutSeconds` to send a request's head, and an
//!   idle keep-alive connection is closed after as long;
//! - a request head past `maxHeaderBytes` is answered 431 and closed;
//! - a request body that sends nothing for `bodyTimeoutSeconds` is cut;
//! - one address holds at most `perAddress` connections: more are closed at
//!   once, so a single client cannot take every socket.
//!
//! WebSockets upgrade from these connections and then follow their own rules
//! ([`super::api::ws`]).

use std::{
    collections::HashMap,
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{extract::ConnectInfo, Router};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::{state::AppState, ServerError};

/// Open connections per client address.
#[derive(Default, Clone)]
struct PerAddress(Arc<Mutex<HashMap<IpAddr, u32>>>);

/// One counted connection; the count drops with it.
struct Counted {
    table: PerAddress,
    address: IpAddr,
}

impl PerAddress {
    /// A slot for one more connection from `address`, unless it holds `max`.
    fn admit(&self, address: IpAddr, max: u32) -> Option<Counted> {
        let mut table = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let open = table.entry(address).or_default();
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(Counted {
            table: self.clone(),
            address,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut table = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = table.get_mut(&self.address) {
            *open -= 1;
            if *open == 0 {
                table.remove(&self.address);
            }
        }
    }
}

/// A request body that fails once it has sent nothing for `stall`.
struct StallTimeout {
    inner: Incoming,
    stall: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl StallTimeout {
    fn new(inner: Incoming, stall: Duration) -> StallTimeout {
        StallTimeout {
            inner,
            stall,
            deadline: Box::pin(tokio::time::sleep(stall)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the request body sent nothing for {0:?}")]
    Stalled(Duration),
    #[error(transparent)]
    Read(#[from] hyper::Error),
}

impl HttpBody for StallTimeout {
    type Data = axum::body::Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.stall;
                this.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(BodyError::from)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::Stalled(this.stall)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish (up to 30 s) and returns.
pub async fn serve(
    state: AppState,
    router: Router,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let per_address = PerAddress::default();
    let (closing, _) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or the peer gave up before
                    // the accept: pause instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
            Some(_) = connections.join_next() => continue,
        };
        let limits = state.config().limits.connections.clone();
        let Some(slot) = per_address.admit(peer.ip(), limits.per_address.max(1)) else {
            state.metrics.refused_connections.inc();
            tracing::debug!(%peer, "too many connections from this address; closed");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut closing = closing.subscribe();
        connections.spawn(async move {
            let _slot = slot;
            let stall = Duration::from_secs(limits.body_timeout_seconds.max(1).into());
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let mut request =
                    request.map(|body| axum::body::Body::new(StallTimeout::new(body, stall)));
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(
                    limits.header_timeout_seconds.max(1).into(),
                ))
                .max_header_size(limits.max_header_bytes.max(1024) as usize)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended");
                    }
                }
                _ = async { closing.wait_for(|closing| *closing).await.map(|_| ()) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    let _ = closing.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(30), drained)
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after 30 s; closing them");
    }
    Ok(())
}
