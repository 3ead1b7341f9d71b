//! The Workspace controller: what a Workspace becomes, and keeping it so.
//!
//! - [`build`]: spec → child objects, pure, one builder per child kind.
//! - the RuntimeConfig and the federation certificates are rendered by
//!   [`entente_crds::render`], shared with `entente up`.
//! - [`rollout`]: when a new image may roll (after its migration Job).
//! - [`observe`]: children's state → the Workspace's status.
//! - [`controller`]: the pipeline that runs them against the API.

pub mod build;
pub mod controller;
pub mod dereference;
pub mod layout;
pub mod observe;
pub mod rollout;
