//! The HTTP API under `/api/v1`: handlers that extract the request,
//! authorise the caller, call the domain, and map its error once
//! ([`crate::server::error`]). No SQL writes here: they belong to
//! [`crate::server::db`].

pub mod access_admin;
pub mod ai;
pub mod audit;
pub mod auth;
pub mod calls;
pub mod channels;
pub mod contract;
pub mod extract;
pub mod files;
pub mod guests;
pub mod health;
pub mod posts;
pub mod search;
pub mod teams;
pub mod translation;
pub mod users;
pub mod ws;
