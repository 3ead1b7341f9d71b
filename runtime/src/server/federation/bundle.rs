//! Offline sync bundles, for air gaps and data diodes, where no link runs.
//!
//! - [`export`]: everything a partner has not acknowledged, in sequence
//!   order, gzip'd and signed with this workspace's federation key. The
//!   queue is left as it is: only an acknowledgement empties it.
//! - [`import`] of an events bundle: the signer must be the partner the
//!   bundle claims to come from (its certificate checked as a TLS client's
//!   would be) and the bundle must be for this workspace; the events are
//!   then applied exactly as pushed ones are (same checks, exactly once,
//!   whichever way an event arrives), and an acknowledgement bundle is
//!   returned to carry back.
//!   Files the bundle's posts carry travel with them, checked and stored as
//!   fetched ones are.
//! - [`import`] of an acknowledgement: the partner's applied sequence
//!   empties this side's queue up to it.

use std::io::{Read, Write};

use prost::Message as _;

use super::{
    error::{Error, Result},
    proto::{bundle, Batch, Bundle, Envelope, Event, Resume, SignedBundle},
    receive::{applied, apply_batch, MAX_BATCH},
    tls,
};
use crate::server::state::AppState;

/// Largest bundle read, compressed and uncompressed.
pub const MAX_BUNDLE_BYTES: u64 = 1 << 30;

/// What an import did.
#[derive(Debug, PartialEq, Eq)]
pub enum Imported {
    /// Events from `partner`: how many the bundle held, how many of those
    /// were refused, the sequence now applied; and the acknowledgement
    /// bundle to carry back.
    Events {
        partner: String,
        events: usize,
        rejected: u32,
        applied: u64,
        acknowledgement: Vec<u8>,
    },
    /// `partner` acknowledged everything up to `applied`.
    Acknowledgement { partner: String, applied: u64 },
}

fn sealed(state: &AppState, bundle: &Bundle) -> Result<Vec<u8>> {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&bundle.encode_to_vec())
        .and_then(|_| gzip.finish())
        .map_err(|e| Error::Bundle(format!("compressing the bundle: {e}")))
        .and_then(|signed| {
            let (signature, certificates) = tls::sign(&state.config(), &signed)?;
            Ok(SignedBundle {
                signed,
                signature,
                certificates,
            }
            .encode_to_vec())
        })
}

fn new_bundle(state: &AppState, destination: &str, body: bundle::Body) -> Bundle {
    Bundle {
        origin: state.config().workspace.id.clone(),
        destination: destination.to_string(),
        created_micros: chrono::Utc::now().timestamp_micros(),
        body: Some(body),
        files: Vec::new(),
    }
}

/// A signed bundle of every event queued for `partner`, with how many.
pub async fn export(state: &AppState, partner: &str) -> Result<(Vec<u8>, usize)> {
    let config = state.config();
    super::partner(&config, partner).ok_or_else(|| {
        Error::Setup(format!(
            "{partner:?} is not a partner of this workspace (no PartnerConnection names it)"
        ))
    })?;
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query!(
        "SELECT seq, payload FROM federation_outbox WHERE partner = $1 ORDER BY seq",
        partner
    )
    .fetch_all(&state.db)
    .await?
    .into_iter()
    .map(|row| (row.seq, row.payload))
    .collect();
    let events: Vec<Envelope> = rows
        .into_iter()
        .filter_map(|(seq, payload)| {
            Some(Envelope {
                seq: seq as u64,
                event: Some(Event::decode(payload.as_slice()).ok()?),
            })
        })
        .collect();
    let count = events.len();
    let carried: Vec<Event> = events.iter().filter_map(|e| e.event.clone()).collect();
    let events_bytes: u64 = carried.iter().map(|e| e.encoded_len() as u64).sum();
    let files = super::files::for_bundle(
        state,
        super::partner(&config, partner).expect("checked above"),
        &carried,
        MAX_BUNDLE_BYTES.saturating_sub(events_bytes + 1024 * 1024),
    )
    .await?;
    let mut bundle = new_bundle(state, partner, bundle::Body::Events(Batch { events }));
    bundle.files = files;
    Ok((sealed(state, &bundle)?, count))
}

/// Verifies and applies a bundle from a partner (see the module's text).
pub async fn import(state: &AppState, bytes: &[u8]) -> Result<Imported> {
    let signed = SignedBundle::decode(bytes)
        .map_err(|e| Error::Bundle(format!("not an Entente bundle: {e}")))?;
    let config = state.config();
    let partner = tls::verify(
        &config,
        &signed.certificates,
        &signed.signed,
        &signed.signature,
    )?;
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(signed.signed.as_slice())
        .take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut plain)
        .map_err(|e| Error::Bundle(format!("the bundle does not decompress: {e}")))?;
    let refused = |message: String| Error::protocol(&partner.workspace_id, message);
    if plain.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(refused(format!(
            "the bundle is over {MAX_BUNDLE_BYTES} bytes uncompressed"
        )));
    }
    let bundle = Bundle::decode(plain.as_slice())
        .map_err(|e| refused(format!("the bundle is malformed: {e}")))?;
    if bundle.origin != partner.workspace_id {
        return Err(refused(format!(
            "the bundle says it comes from {:?}, but it is signed by {:?}",
            bundle.origin, partner.workspace_id
        )));
    }
    if bundle.destination != config.workspace.id {
        return Err(refused(format!(
            "the bundle is for {:?}, not this workspace ({:?})",
            bundle.destination, config.workspace.id
        )));
    }
    let partner = partner.workspace_id.clone();
    match bundle.body {
        Some(bundle::Body::Events(batch)) => {
            let mut high = applied(&state.db, &partner).await?;
            let mut rejected = 0;
            let mut events = batch.events;
            events.sort_by_key(|e| e.seq);
            for chunk in events.chunks(MAX_BATCH) {
                let (next, refused) = apply_batch(state, &partner, high, chunk.to_vec())
                    .await
                    .map_err(|status| Error::Bundle(status.message().to_string()))?;
                high = next;
                rejected += refused;
            }
            // The files of the posts just applied, if they came along.
            let partner_config = super::partner(&config, &partner).ok_or_else(|| {
                Error::Setup(format!("this workspace no longer trusts {partner:?}"))
            })?;
            for file in bundle.files {
                super::files::from_bundle(state, partner_config, file).await?;
            }
            let acknowledgement = new_bundle(
                state,
                &partner,
                bundle::Body::Acknowledgement(Resume { applied: high }),
            );
            Ok(Imported::Events {
                events: events.len(),
                rejected,
                applied: high,
                acknowledgement: sealed(state, &acknowledgement)?,
                partner,
            })
        }
        Some(bundle::Body::Acknowledgement(resume)) => {
            super::send::renumber_if_rewound(state, &partner, resume.applied).await?;
            super::send::acknowledge(state, &partner, resume.applied).await?;
            Ok(Imported::Acknowledgement {
                partner,
                applied: resume.applied,
            })
        }
        None => Err(Error::protocol(
            &partner,
            "the bundle carries neither events nor an acknowledgement",
        )),
    }
}
