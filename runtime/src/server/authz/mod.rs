//! Authorisation, in one place.
//!
//! - [`roles`]: what a workspace role and a channel membership allow (the
//!   authorisation matrix). Pure.
//! - [`policy`]: attribute-based access — which AccessPolicies and guest
//!   rules gate a channel, and whether they admit a user. Pure.
//! - [`gate`]: the read gate every request about a channel passes: the
//!   channel as the caller may see it, or absent. Reads only.
//! - [`findings`]: audit-mode would-be denials, recorded off the read path.
//! - [`sweep`]: enforcement over time — members who stop matching are
//!   removed (on a change of attributes, labels or policies, and
//!   periodically), expired guests leave.

pub mod findings;
pub mod gate;
pub mod policy;
pub mod roles;
pub mod sweep;
