//! A forwarded track (the consumer side): a published track added to one
//! receiver's connection on a send-only transceiver of its own, with the
//! receiver's picture-loss requests relayed to the publisher.

use std::sync::Arc;

use webrtc::{
    rtcp::payload_feedbacks::{
        full_intra_request::FullIntraRequest, picture_loss_indication::PictureLossIndication,
    },
    rtp_transceiver::{
        rtp_transceiver_direction::RTCRtpTransceiverDirection, RTCRtpTransceiverInit,
    },
    track::track_local::TrackLocal,
};

use super::{participant::Participant, published::PublishedTrack, Sfu};

impl Sfu {
    /// Adds `track` to `to`'s connection, and relays `to`'s picture-loss
    /// requests for it to the publisher.
    pub(super) async fn forward_to(
        self: &Arc<Sfu>,
        call: &str,
        to: &Arc<Participant>,
        track: &PublishedTrack,
    ) {
        let PublishedTrack {
            owner,
            ref local,
            ssrc,
            video,
        } = *track;
        // A send-only transceiver of its own: never the client's publishing
        // one, so each forwarded track is one m-line the client can tell apart.
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            send_encodings: Vec::new(),
        };
        let sender = match to
            .pc
            .add_transceiver_from_track(
                local.clone() as Arc<dyn TrackLocal + Send + Sync>,
                Some(init),
            )
            .await
        {
            Ok(transceiver) => transceiver.sender().await,
            Err(e) => {
                tracing::warn!(user = %to.peer.user, "cannot add a track: {e}");
                return;
            }
        };
        tracing::debug!(to = %to.peer.user, track = %local.id(), "subscribed");
        to.senders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(local.id().to_string(), sender.clone());
        let (sfu, room) = (self.clone(), call.to_string());
        tokio::spawn(async move {
            while let Ok((packets, _)) = sender.read_rtcp().await {
                let wants_keyframe = packets.iter().any(|p| {
                    let any = p.as_any();
                    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
                });
                if wants_keyframe {
                    sfu.request_keyframe(&room, owner, ssrc).await;
                }
            }
        });
        if video {
            // The newcomer needs a keyframe to start decoding.
            self.request_keyframe(call, owner, ssrc).await;
        }
    }
}
