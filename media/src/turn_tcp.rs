//! The TCP fallback: a TURN server on the SFU node that clients whose UDP
//! is blocked reach over TCP (`turn:HOST:PORT?transport=tcp`). Their media
//! is relayed from the TURN allocation to the SFU's own UDP port on the same
//! host, so nothing but one TCP connection crosses their firewall.
//!
//! The `turn` crate's server reads and writes datagrams through a
//! [`Conn`]; [`TcpConn`] is that, over many TCP connections: it splits each
//! stream into STUN messages and ChannelData frames (RFC 5766 §11.5: over a
//! stream, ChannelData is padded to four bytes) and answers each peer on its
//! own connection.
//!
//! Credentials are the TURN REST scheme: a username that is an expiry time,
//! its password an HMAC of it with the join-token key, handed out by
//! `GET /calls/{call}/ice` to holders of a join token.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::{mpsc, Mutex},
};
use webrtc::util::{self, Conn};

/// Largest frame taken from a client: a STUN message or ChannelData.
const MAX_FRAME: usize = 64 * 1024;

pub struct TcpConn {
    local: SocketAddr,
    incoming: Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    peers: Arc<std::sync::Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>,
}

impl TcpConn {
    /// Accepts TCP connections on `listener` for as long as the value lives.
    pub fn serve(listener: TcpListener) -> std::io::Result<Arc<TcpConn>> {
        let local = listener.local_addr()?;
        let (deliver, incoming) = mpsc::channel(1024);
        let peers: Arc<std::sync::Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>> =
            Arc::default();
        let conn = Arc::new(TcpConn {
            local,
            incoming: Mutex::new(incoming),
            peers: peers.clone(),
        });
        tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (mut reader, mut writer) = stream.into_split();
                let (outgoing, mut to_write) = mpsc::channel::<Vec<u8>>(256);
                peers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(peer, outgoing);
                tokio::spawn(async move {
                    while let Some(frame) = to_write.recv().await {
                        if writer.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                });
                let (deliver, peers) = (deliver.clone(), peers.clone());
                tokio::spawn(async move {
                    while let Ok(Some(frame)) = read_frame(&mut reader).await {
                        if deliver.send((frame, peer)).await.is_err() {
                            break;
                        }
                    }
                    peers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&peer);
                });
            }
        });
        Ok(conn)
    }
}

/// The length of a frame whose first four bytes are `head`, padding
/// included; `None` if it is neither STUN nor ChannelData.
fn frame_length(head: [u8; 4]) -> Option<usize> {
    let length = u16::from_be_bytes([head[2], head[3]]) as usize;
    match head[0] >> 6 {
        // STUN: a 20-byte header, then the attributes (a multiple of four).
        0 => Some(20 + length),
        // ChannelData (channel numbers 0x4000-0x7FFF), padded over streams.
        1 => Some(4 + length.div_ceil(4) * 4),
        _ => None,
    }
}

async fn read_frame(reader: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 4];
    if reader.read_exact(&mut head).await.is_err() {
        return Ok(None);
    }
    let Some(length) = frame_length(head).filter(|l| *l <= MAX_FRAME) else {
        return Ok(None);
    };
    let mut frame = vec![0u8; length];
    frame[..4].copy_from_slice(&head);
    reader.read_exact(&mut frame[4..]).await?;
    if head[0] >> 6 == 1 {
        // The server wants the ChannelData as sent, without the padding.
        let data = u16::from_be_bytes([head[2], head[3]]) as usize;
        frame.truncate(4 + data);
    }
    Ok(Some(frame))
}

#[async_trait::async_trait]
impl Conn for TcpConn {
    async fn connect(&self, _addr: SocketAddr) -> util::Result<()> {
        Err(util::Error::Other(
            "a TURN listener does not connect".into(),
        ))
    }

    async fn recv(&self, buf: &mut [u8]) -> util::Result<usize> {
        self.recv_from(buf).await.map(|(n, _)| n)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> util::Result<(usize, SocketAddr)> {
        let (frame, peer) = self
            .incoming
            .lock()
            .await
            .recv()
            .await
            .ok_or_else(|| util::Error::Other("the TURN listener stopped".into()))?;
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok((n, peer))
    }

    async fn send(&self, _buf: &[u8]) -> util::Result<usize> {
        Err(util::Error::Other(
            "send on a TURN listener needs an address".into(),
        ))
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> util::Result<usize> {
        let writer = self
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&target)
            .cloned()
            .ok_or_else(|| util::Error::Other(format!("no TCP connection from {target}")))?;
        let mut frame = buf.to_vec();
        if frame.first().is_some_and(|b| b >> 6 == 1) {
            frame.resize(frame.len().div_ceil(4) * 4, 0);
        }
        writer
            .send(frame)
            .await
            .map_err(|_| util::Error::Other(format!("the TCP connection from {target} closed")))?;
        Ok(buf.len())
    }

    fn local_addr(&self) -> util::Result<SocketAddr> {
        Ok(self.local)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_told_apart_by_their_first_bits() {
        // A STUN binding request with 8 bytes of attributes.
        assert_eq!(frame_length([0x00, 0x01, 0x00, 0x08]), Some(28));
        // ChannelData of 5 bytes: padded to 8 over a stream.
        assert_eq!(frame_length([0x40, 0x00, 0x00, 0x05]), Some(12));
        assert_eq!(frame_length([0xc0, 0x00, 0x00, 0x05]), None);
    }
}
