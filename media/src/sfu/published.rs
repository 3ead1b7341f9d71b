//! A published track (the producer side): what a participant sends, turned
//! into one local track of the same codec (nothing is transcoded) that every
//! other participant's connection carries, its packets copied to all of them
//! as they arrive.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use webrtc::{
    rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication,
    rtp_transceiver::rtp_codec::{RTCRtpCodecParameters, RTPCodecType},
    track::{
        track_local::{track_local_static_rtp::TrackLocalStaticRTP, TrackLocalWriter},
        track_remote::TrackRemote,
    },
};

use super::{participant::Participant, room::Owned, Sfu};

/// One published track, fanned out.
#[derive(Clone)]
pub(super) struct PublishedTrack {
    pub owner: u64,
    pub local: Arc<TrackLocalStaticRTP>,
    /// The publisher's SSRC, for picture-loss requests sent back to it.
    pub ssrc: u32,
    pub video: bool,
}

impl Owned for PublishedTrack {
    fn owner(&self) -> u64 {
        self.owner
    }
}

impl Sfu {
    /// Each track the participant publishes is forwarded to the others.
    pub(super) fn watch_tracks(self: &Arc<Sfu>, call: &str, participant: &Arc<Participant>) {
        let (sfu, call) = (Arc::downgrade(self), call.to_string());
        let owner = participant.id;
        let user = participant.peer.user.clone();
        participant
            .pc
            .on_track(Box::new(move |remote: Arc<TrackRemote>, receiver, _| {
                let (sfu, call, user) = (sfu.clone(), call.clone(), user.clone());
                // The handler must return: the next track's waits for it.
                if let Some(sfu) = sfu.upgrade() {
                    tokio::spawn(async move {
                        // The codec this track's m-line negotiated. The track's own
                        // guess looks its payload type up across every m-line, and
                        // clients number codecs differently (aiortc's Opus is 96,
                        // which is VP8 in the SFU's offers).
                        let pt = remote.payload_type();
                        let codec = receiver
                            .get_parameters()
                            .await
                            .codecs
                            .into_iter()
                            .find(|c| c.payload_type == pt)
                            .unwrap_or_else(|| remote.codec());
                        sfu.publish(&call, owner, &user, remote, codec).await
                    });
                }
                Box::pin(async {})
            }));
    }

    async fn publish(
        self: &Arc<Sfu>,
        call: &str,
        owner: u64,
        user: &str,
        remote: Arc<TrackRemote>,
        codec: RTCRtpCodecParameters,
    ) {
        let video = remote.kind() == RTPCodecType::Video;
        let kind = if video { "video" } else { "audio" };
        let local = Arc::new(TrackLocalStaticRTP::new(
            codec.capability.clone(),
            format!("{user}-{kind}-{}", remote.ssrc()),
            // Receivers know whose track it is by its stream id.
            user.to_string(),
        ));
        let track = PublishedTrack {
            owner,
            local: local.clone(),
            ssrc: remote.ssrc(),
            video,
        };
        let Some((others, room_size)) = self.rooms().publish(call, track.clone()) else {
            return;
        };
        tracing::info!(%call, %user, mime = %codec.capability.mime_type, "publishing");
        for other in &others {
            self.forward_to(call, other, &track).await;
            other.negotiate().await;
        }
        self.forward(room_size, remote, local).await;
    }

    /// Copies the publisher's packets to every subscriber until the track ends.
    /// `room_size` is the room's participant count, the publisher included.
    async fn forward(
        &self,
        room_size: Arc<AtomicUsize>,
        remote: Arc<TrackRemote>,
        local: Arc<TrackLocalStaticRTP>,
    ) {
        let mut last_sequence: Option<u16> = None;
        while let Ok((packet, _)) = remote.read_rtp().await {
            self.metrics.packets_received.inc();
            let sequence = packet.header.sequence_number;
            if let Some(last) = last_sequence {
                let gap = sequence.wrapping_sub(last);
                // Gaps forward (not reordering or a restart) are losses.
                if (2..1000).contains(&gap) {
                    self.metrics.packets_lost.inc_by(u64::from(gap - 1));
                }
            }
            last_sequence = Some(sequence);
            let receivers = room_size.load(Ordering::Relaxed).saturating_sub(1) as u64;
            let bytes = packet.payload.len() as u64;
            if local.write_rtp(&packet).await.is_ok() && receivers > 0 {
                self.metrics.packets_forwarded.inc_by(receivers);
                self.metrics.bytes_forwarded.inc_by(bytes * receivers);
            }
        }
    }

    /// Asks the publisher of `ssrc` for a keyframe.
    pub(super) async fn request_keyframe(&self, call: &str, owner: u64, ssrc: u32) {
        let publisher = self.rooms().member(call, owner);
        if let Some(publisher) = publisher {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: ssrc,
            };
            let _ = publisher.pc.write_rtcp(&[Box::new(pli)]).await;
        }
    }
}
