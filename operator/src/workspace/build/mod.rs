//! Spec → objects, one builder per child kind. Pure: no API calls.

pub mod apertium;
pub mod database;
pub mod deployment;
pub mod ingress;
pub mod migration;
pub mod network_policy;
pub mod pdb;
pub mod secrets;
pub mod service;
