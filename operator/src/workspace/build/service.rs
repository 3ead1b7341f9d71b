//! The Services of a workspace: clients, federation, admin — separate, so
//! network policy and exposure can differ for each.

use entente_crds::Workspace;
use k8s_openapi::{
    api::core::v1::{Service, ServicePort, ServiceSpec},
    apimachinery::pkg::util::intstr::IntOrString,
};

use crate::{
    labels,
    workspace::layout::{metadata, Names, ADMIN_PORT, COMPONENT, FEDERATION_PORT, HTTP_PORT},
};

pub fn build(workspace: &Workspace) -> Vec<Service> {
    let names = Names::of(workspace);
    let service = |name: String, port_name: &str, port: u16| Service {
        metadata: metadata(workspace, name, COMPONENT),
        spec: Some(ServiceSpec {
            selector: Some(labels::selector(&names.workspace, COMPONENT)),
            ports: Some(vec![ServicePort {
                name: Some(port_name.into()),
                port: port.into(),
                target_port: Some(IntOrString::String(port_name.into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    vec![
        service(names.server(), "http", HTTP_PORT),
        service(names.federation_service(), "federation", FEDERATION_PORT),
        service(names.admin_service(), "admin", ADMIN_PORT),
    ]
}
