//! The campuswatch server library: ingest, liveness, coverage, alerts, store and API.

pub mod broker;
pub mod regions;
pub mod registry;
