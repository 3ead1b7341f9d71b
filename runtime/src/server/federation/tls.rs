//! Mutual TLS between partner workspaces.
//!
//! The federation listener accepts a connection only if the client's
//! certificate chains to the CA bundle of a configured partner *and* is
//! valid for that partner's identity (a DNS name); the connection then
//! carries the partner's workspace id, which handlers read instead of
//! anything the peer says. A foreign CA fails the handshake; a valid
//! certificate for another name is dropped before a byte of gRPC is read.
//!
//! The client side dials a partner with this workspace's certificate and
//! accepts only a server certificate from the partner's CA, for its identity.

use std::{
    path::Path,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use entente_crds::config::{PartnerConfig, RuntimeConfig};
use rustls::{
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime},
    server::{danger::ClientCertVerifier, WebPkiClientVerifier},
    RootCertStore,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};
use tokio_rustls::{server::TlsStream, TlsAcceptor, TlsConnector};
use tonic::transport::{server::Connected, Channel, Endpoint};

use super::{
    error::{Error, Result},
    proto::federation_server::FederationServer,
};
use crate::server::{state::AppState, ServerError};

/// How long a peer has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::file(path, e))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::file(path, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(Error::file(path, "holds no certificate"));
    }
    Ok(certs)
}

fn roots(path: &Path) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    for cert in certificates(path)? {
        store
            .add(cert)
            .map_err(|e| Error::file(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(store)
}

/// This workspace's certificate chain and key.
fn identity(
    config: &RuntimeConfig,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let tls = &config.federation.tls;
    let key = PrivateKeyDer::from_pem_slice(&read(&tls.key_file)?)
        .map_err(|e| Error::file(&tls.key_file, format!("not a PEM private key: {e}")))?;
    Ok((certificates(&tls.cert_file)?, key))
}

fn verifier(roots: RootCertStore) -> Result<Arc<dyn ClientCertVerifier>> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| Error::Setup(format!("partners' CA bundles: {e}")))
}

/// This workspace's certificate and key, refused together by rustls.
fn unusable_certificate(config: &RuntimeConfig, e: rustls::Error) -> Error {
    Error::file(
        &config.federation.tls.cert_file,
        format!("federation certificate: {e}"),
    )
}

/// The server side for the partners configured now: client certificates
/// must chain to one of their CA bundles.
fn server_config(config: &RuntimeConfig) -> Result<Arc<rustls::ServerConfig>> {
    let mut union = RootCertStore::empty();
    for partner in &config.federation.partners {
        union.roots.extend(roots(&partner.ca_file)?.roots);
    }
    if union.is_empty() {
        return Err(Error::Setup("no partners are configured".into()));
    }
    let (certs, key) = identity(config)?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Setup(format!("TLS 1.3: {e}")))?
        .with_client_cert_verifier(verifier(union)?)
        .with_single_cert(certs, key)
        .map_err(|e| unusable_certificate(config, e))?;
    server.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(server))
}

/// Which partner presented `chain`: the one whose CA it chains to and whose
/// identity it is valid for.
pub fn identify<'c>(
    config: &'c RuntimeConfig,
    chain: &[CertificateDer<'_>],
) -> Option<&'c PartnerConfig> {
    let (end_entity, intermediates) = chain.split_first()?;
    let now = UnixTime::now();
    config.federation.partners.iter().find(|partner| {
        let Ok(name) = ServerName::try_from(partner.identity.as_str()) else {
            return false;
        };
        let chains = roots(&partner.ca_file)
            .and_then(verifier)
            .is_ok_and(|v| v.verify_client_cert(end_entity, intermediates, now).is_ok());
        chains
            && webpki::EndEntityCert::try_from(end_entity)
                .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
    })
}

/// `message` signed with this workspace's federation key (ECDSA P-256,
/// SHA-256), and its certificate chain (DER, leaf first), for an offline
/// bundle.
pub fn sign(config: &RuntimeConfig, message: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let (chain, key) = identity(config)?;
    let key_file = &config.federation.tls.key_file;
    let key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| Error::file(key_file, e))?;
    let signer = key
        .choose_scheme(&[rustls::SignatureScheme::ECDSA_NISTP256_SHA256])
        .ok_or_else(|| {
            Error::file(
                key_file,
                "not an ECDSA P-256 key, which bundles are signed with",
            )
        })?;
    let signature = signer.sign(message).map_err(|e| Error::file(key_file, e))?;
    Ok((signature, chain.into_iter().map(|c| c.to_vec()).collect()))
}

/// The partner that signed `message`: `chain` must chain to that partner's
/// CA and be valid for its identity (as for a TLS client), and `signature`
/// must be its leaf's.
pub fn verify<'c>(
    config: &'c RuntimeConfig,
    chain: &[Vec<u8>],
    message: &[u8],
    signature: &[u8],
) -> Result<&'c PartnerConfig> {
    let chain: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let partner = identify(config, &chain).ok_or_else(|| {
        Error::Bundle(
            "the signer's certificate does not chain to any partner's CA with that partner's identity"
                .into(),
        )
    })?;
    webpki::EndEntityCert::try_from(&chain[0])
        .map_err(|e| Error::Bundle(format!("the signer's certificate: {e}")))?
        .verify_signature(webpki::ring::ECDSA_P256_SHA256, message, signature)
        .map_err(|_| Error::protocol(&partner.workspace_id, "the signature does not match the content: the bundle was altered or is not the partner's"))?;
    Ok(partner)
}

/// The partner a connection was authenticated as (a request extension).
#[derive(Debug, Clone)]
pub struct Peer {
    pub workspace_id: String,
}

/// A TLS connection from an identified partner.
pub struct PeerStream {
    inner: TlsStream<TcpStream>,
    peer: Peer,
}

impl Connected for PeerStream {
    type ConnectInfo = Peer;
    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Completes the handshake of one connection and names its partner, or says why not.
async fn admit(state: &AppState, tcp: TcpStream) -> Result<PeerStream> {
    let config = state.config();
    let acceptor = TlsAcceptor::from(server_config(&config)?);
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| Error::Unidentified("no TLS handshake within 10s".into()))?
        .map_err(|e| Error::Unidentified(format!("TLS handshake: {e}")))?;
    let chain = stream.get_ref().1.peer_certificates().unwrap_or_default();
    let partner = identify(&config, chain).ok_or_else(|| {
        Error::Unidentified(
            "the client certificate is not valid for any configured partner's identity".into(),
        )
    })?;
    Ok(PeerStream {
        peer: Peer {
            workspace_id: partner.workspace_id.clone(),
        },
        inner: stream,
    })
}

/// Serves federation on `listener` until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let (admitted, incoming) = tokio::sync::mpsc::channel::<std::io::Result<PeerStream>>(16);
    let accepting = state.clone();
    let acceptor = tokio::spawn(async move {
        loop {
            let Ok((tcp, address)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let (state, admitted) = (accepting.clone(), admitted.clone());
            tokio::spawn(async move {
                match admit(&state, tcp).await {
                    Ok(stream) => {
                        tracing::debug!(%address, partner = %stream.peer.workspace_id, "partner connected");
                        let _ = admitted.send(Ok(stream)).await;
                    }
                    Err(why) => {
                        state.metrics.federation_refused_connections.inc();
                        tracing::warn!(%address, "federation connection refused: {why}");
                    }
                }
            });
        }
    });
    let result = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(
            FederationServer::new(super::receive::Receiver::new(state))
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .send_compressed(tonic::codec::CompressionEncoding::Gzip),
        )
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::ReceiverStream::new(incoming),
            shutdown,
        )
        .await
        .map_err(|e| ServerError::Serve(std::io::Error::other(e)));
    acceptor.abort();
    result
}

/// A gRPC channel to `partner` over mutual TLS, with HTTP/2 keepalives so a
/// dead (silently cut) link is noticed within twice `keepalive_seconds`.
pub async fn connect(config: &RuntimeConfig, partner: &PartnerConfig) -> Result<Channel> {
    let (certs, key) = identity(config)?;
    let mut client = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Setup(format!("TLS 1.3: {e}")))?
        .with_root_certificates(roots(&partner.ca_file)?)
        .with_client_auth_cert(certs, key)
        .map_err(|e| unusable_certificate(config, e))?;
    client.alpn_protocols = vec![b"h2".to_vec()];
    let connector = TlsConnector::from(Arc::new(client));
    let setup =
        |message: String| Error::Setup(format!("partner {:?}: {message}", partner.workspace_id));
    let name = ServerName::try_from(partner.identity.clone())
        .map_err(|e| setup(format!("identity {:?}: {e}", partner.identity)))?;
    let address = authority(&partner.endpoint).map_err(setup)?;
    let keepalive = Duration::from_secs(partner.sync.keepalive_seconds.max(1) as u64);
    Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| setup(format!("endpoint {:?}: {e}", partner.endpoint)))?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(keepalive)
        .keep_alive_timeout(keepalive)
        .keep_alive_while_idle(true)
        .connect_with_connector(tower::service_fn(move |_: tonic::codegen::http::Uri| {
            let (connector, name, address) = (connector.clone(), name.clone(), address.clone());
            async move {
                let tcp = TcpStream::connect(&address).await?;
                tcp.set_nodelay(true)?;
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await
        .map_err(|e| Error::Link {
            partner: partner.workspace_id.clone(),
            endpoint: partner.endpoint.clone(),
            message: source_chain(&e),
        })
}

/// `host:port` of an `https://host:port/…` endpoint (443 if none).
fn authority(endpoint: &str) -> Result<String, String> {
    let rest = endpoint
        .strip_prefix("https://")
        .ok_or_else(|| format!("partner endpoint {endpoint:?} is not an https URL"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("partner endpoint {endpoint:?} has no host"));
    }
    Ok(
        if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_string()
        } else {
            format!("{host}:443")
        },
    )
}

/// An error with its causes, for a message that says what went wrong.
fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn endpoints_name_host_and_port() {
        assert_eq!(
            authority("https://fed.b.example:8443").unwrap(),
            "fed.b.example:8443"
        );
        assert_eq!(
            authority("https://fed.b.example/x").unwrap(),
            "fed.b.example:443"
        );
        assert!(authority("http://fed.b.example").is_err());
    }
}
