//! Osprey's data model: pure data shared by every engine, with serde on everything and no I/O.
//! Engines meet only through this crate (and `osprey-image`).

#![forbid(unsafe_code)]

pub mod export;
mod finding;
mod os;
mod package;

pub use finding::{
    Action, Container, Cvss, Evidence, Finding, FindingSource, FindingState, FixAvailable,
    ImageResource, KubernetesResource, KubernetesUser, MalwareScan, Mitre, Resource, ScannedVolume,
    Severity, SeverityLabel, Suppression, Threat, ThreatFile, VendorSeverity, Vulnerability,
    VulnerablePackage, Workflow, Workload,
};
pub use os::Os;
pub use package::{Location, Package, PackageType};
