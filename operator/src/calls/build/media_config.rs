//! The SFUs' MediaConfig, from the CallsCluster's spec: the renderer
//! `entente up` uses too ([`entente_crds::render::calls::media_config`]),
//! placed in a pod.

use entente_crds::{config::MediaConfig, CallsCluster};

use crate::calls::{CONFIG_MOUNT, KEY, SIGNALLING_PORT};

/// The SFUs' MediaConfig.
pub fn build(cc: &CallsCluster) -> MediaConfig {
    entente_crds::render::calls::media_config(
        cc,
        format!("{CONFIG_MOUNT}/{KEY}").into(),
        std::net::SocketAddr::from(([0, 0, 0, 0], SIGNALLING_PORT)),
        0,
    )
}
