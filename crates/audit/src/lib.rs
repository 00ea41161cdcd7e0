//! Kubernetes audit-log threat detection.
//!
//! [`event`] reads every shape audit events come in and normalizes them; [`rules`] holds the
//! condition language and the catalogue (rules as YAML data, compiled once); [`detect`] runs
//! rules and the stateful detectors over events; [`findings`] aggregates detections into
//! findings; [`intel`] holds trusted and threat IP lists. The crate does no I/O of its own
//! beyond reading the files it is pointed at. (Simulated traffic comes from `osprey-simulate`.)

#![forbid(unsafe_code)]

pub mod detect;
pub mod event;
pub mod findings;
pub mod intel;
pub mod rules;

pub use detect::{Engine, EngineOptions, EngineStats, TenantOverlay};
pub use event::{Event, Stage};
pub use findings::Findings;
pub use intel::{Intel, IpList, ListKind};
pub use rules::{Loader, RuleSet};
