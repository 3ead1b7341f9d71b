//! A participant: one user's peer connection with the SFU (its transport),
//! the senders of the others' tracks on it, and its renegotiation, always
//! offered by the SFU and serialised so offers never collide.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::mpsc;
use webrtc::{
    peer_connection::{sdp::session_description::RTCSessionDescription, RTCPeerConnection},
    rtp_transceiver::rtp_sender::RTCRtpSender,
};

use super::room::Member;
use crate::signal::{Peer, ServerMessage};

pub struct Participant {
    pub(super) id: u64,
    pub(super) peer: Peer,
    pub(super) pc: Arc<RTCPeerConnection>,
    pub(super) out: mpsc::UnboundedSender<ServerMessage>,
    /// Senders of the others' tracks on this connection, by track id.
    pub(super) senders: Mutex<HashMap<String, Arc<RTCRtpSender>>>,
    negotiation: Mutex<Negotiation>,
}

#[derive(Default)]
struct Negotiation {
    /// An offer is out and its answer has not come back.
    offering: bool,
    /// Something changed meanwhile: offer again after the answer.
    again: bool,
}

impl Member for Participant {
    fn id(&self) -> u64 {
        self.id
    }
    fn user(&self) -> &str {
        &self.peer.user
    }
}

impl Participant {
    pub(super) fn new(
        id: u64,
        peer: Peer,
        pc: Arc<RTCPeerConnection>,
        out: mpsc::UnboundedSender<ServerMessage>,
    ) -> Participant {
        Participant {
            id,
            peer,
            pc,
            out,
            senders: Mutex::new(HashMap::new()),
            negotiation: Mutex::new(Negotiation::default()),
        }
    }

    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Offers the connection as it now is, unless an offer is out (then
    /// once more after its answer).
    pub async fn negotiate(&self) {
        {
            let mut state = self.negotiation.lock().unwrap_or_else(|e| e.into_inner());
            if state.offering {
                state.again = true;
                return;
            }
            state.offering = true;
        }
        let offer = async {
            let offer = self.pc.create_offer(None).await?;
            let mut gathered = self.pc.gathering_complete_promise().await;
            self.pc.set_local_description(offer).await?;
            let _ = gathered.recv().await;
            Ok::<_, webrtc::Error>(self.pc.local_description().await.map(|d| d.sdp))
        }
        .await;
        match offer {
            Ok(Some(sdp)) => {
                tracing::debug!(user = %self.peer.user, "offer sent");
                let _ = self.out.send(ServerMessage::Offer { sdp });
            }
            Ok(None) | Err(_) => {
                tracing::warn!(user = %self.peer.user, "cannot make an offer: {offer:?}");
                self.negotiation
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .offering = false;
            }
        }
    }

    /// The client's answer to the SFU's last offer.
    pub async fn answered(&self, sdp: String) -> Result<(), String> {
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| e.to_string())?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| format!("the answer is not usable: {e}"))?;
        let again = {
            let mut state = self.negotiation.lock().unwrap_or_else(|e| e.into_inner());
            state.offering = false;
            std::mem::take(&mut state.again)
        };
        if again {
            Box::pin(self.negotiate()).await;
        }
        Ok(())
    }
}
