//! Call join tokens: the contract between the workspace server, which
//! issues them to a channel's members, and the SFU, which admits nobody
//! without one.
//!
//! A token is `base64url(claims JSON) "." base64url(HMAC-SHA256(key, claims))`:
//! short-lived and bound to one call, one user and an expiry. The key is the
//! CallsCluster's join-token Secret, mounted in both.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};

type HmacSha256 = Hmac<sha2::Sha256>;

/// The `user` of the tokens the workspace server signs for itself, to ask
/// an SFU who is in a call. Never a user id (those are ULIDs), so it admits
/// no one to the media.
pub const SERVER: &str = "@server";

/// What a token grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Claims {
    /// The call (its channel's call id).
    pub call: String,
    /// The user's id at the issuing workspace.
    pub user: String,
    /// How the user is shown to the others.
    pub name: String,
    /// Unix seconds after which the token no longer admits anyone.
    pub expires: i64,
}

/// Why a token is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the join token is malformed")]
    Malformed,
    #[error("the join token's signature does not match")]
    BadSignature,
    #[error("the join token expired")]
    Expired,
    #[error("the join token is for another call")]
    OtherCall,
}

/// Signs `claims` with `key`.
pub fn sign(key: &[u8], claims: &Claims) -> String {
    let body = serde_json::to_vec(claims).expect("claims serialize");
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&body);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&body),
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Checks `token` with `key` for `call` at `now` (Unix seconds); the claims
/// if it admits its holder.
pub fn verify(key: &[u8], token: &str, call: &str, now: i64) -> Result<Claims, Refused> {
    let (body, signature) = token.split_once('.').ok_or(Refused::Malformed)?;
    let body = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| Refused::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Refused::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&body);
    // Constant-time comparison.
    mac.verify_slice(&signature)
        .map_err(|_| Refused::BadSignature)?;
    let claims: Claims = serde_json::from_slice(&body).map_err(|_| Refused::Malformed)?;
    if claims.expires <= now {
        return Err(Refused::Expired);
    }
    if claims.call != call {
        return Err(Refused::OtherCall);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            call: "call-1".into(),
            user: "01HZX".into(),
            name: "Alice".into(),
            expires: 1_000,
        }
    }

    #[test]
    fn a_token_admits_its_holder_to_its_call_until_it_expires() {
        let token = sign(b"key", &claims());
        assert_eq!(verify(b"key", &token, "call-1", 999), Ok(claims()));
        assert_eq!(
            verify(b"key", &token, "call-1", 1_000),
            Err(Refused::Expired)
        );
        assert_eq!(
            verify(b"key", &token, "call-2", 999),
            Err(Refused::OtherCall)
        );
        assert_eq!(
            verify(b"other", &token, "call-1", 999),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn altered_or_malformed_tokens_are_refused() {
        let token = sign(b"key", &claims());
        let (body, signature) = token.split_once('.').unwrap();
        let mut forged = claims();
        forged.user = "someone-else".into();
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            verify(b"key", &format!("{forged_body}.{signature}"), "call-1", 0),
            Err(Refused::BadSignature)
        );
        for bad in ["", "nodot", "!!.!!", &format!("{body}.")] {
            assert!(verify(b"key", bad, "call-1", 0).is_err(), "{bad:?}");
        }
    }
}
