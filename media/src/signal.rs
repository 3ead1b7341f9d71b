//! The SFU's signalling protocol: JSON messages over one WebSocket per
//! participant, at `/calls/{call}/ws`.
//!
//! 1. The client sends `join` with its join token and an SDP offer carrying
//!    the tracks it publishes (audio, a camera or a screen share).
//! 2. The SFU answers `joined` (its SDP answer and who is already there).
//! 3. From then on only the SFU offers: when someone joins, publishes or
//!    leaves, it sends `offer` and the client replies `answer`. One side
//!    offering means no glare.
//! 4. `participantJoined` / `participantLeft` name who came and went; the
//!    latter lists the track ids that ended with them. Each forwarded track's
//!    stream id is its publisher's user id.
//!
//! ICE is not trickled: each SDP carries all of its sender's candidates.
//! A client whose UDP is blocked first asks `GET /calls/{call}/ice` (its
//! join token as a Bearer token) for the node's TURN-over-TCP server and
//! credentials, and gathers relay candidates through it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientMessage {
    Join { token: String, offer: String },
    Answer { sdp: String },
    Leave,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    pub user: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage {
    Joined {
        answer: String,
        participants: Vec<Peer>,
    },
    Offer {
        sdp: String,
    },
    ParticipantJoined {
        #[serde(flatten)]
        peer: Peer,
    },
    ParticipantLeft {
        #[serde(flatten)]
        peer: Peer,
        tracks: Vec<String>,
    },
    /// The last message before the SFU closes the socket.
    Error {
        code: String,
        message: String,
    },
}

impl ServerMessage {
    pub fn error(code: &str, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error {
            code: code.into(),
            message: message.into(),
        }
    }
}
