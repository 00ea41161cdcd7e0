//! Findings: one model for everything Osprey reports, after the managed services' finding JSON
//! (id, type, title, severity, resource, evidence, occurrence counts, state) so that it maps onto
//! OCSF and ASFF without loss.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How bad a finding is: a label, and the score it came from when there is one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Severity {
    pub label: SeverityLabel,
    /// 1.0–10.0 (a CVSS base score for vulnerabilities); absent when only a label is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

impl Severity {
    /// The severity of a score: Low 0.1–3.9, Medium 4–6.9, High 7–8.9, Critical 9–10; a zero
    /// score (CVSS "None") is Untriaged.
    pub fn from_score(score: f64) -> Severity {
        Severity {
            label: SeverityLabel::from_score(score),
            score: Some(score),
        }
    }

    /// A severity known only by its label.
    pub fn label(label: SeverityLabel) -> Severity {
        Severity { label, score: None }
    }
}

/// Severity labels, ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum SeverityLabel {
    /// Not rated by any source.
    #[default]
    Untriaged,
    /// Worth recording, not worth alerting on (an audit trail of changes).
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl SeverityLabel {
    pub const ALL: [SeverityLabel; 6] = [
        SeverityLabel::Untriaged,
        SeverityLabel::Info,
        SeverityLabel::Low,
        SeverityLabel::Medium,
        SeverityLabel::High,
        SeverityLabel::Critical,
    ];

    pub fn from_score(score: f64) -> SeverityLabel {
        match score {
            s if s >= 9.0 => SeverityLabel::Critical,
            s if s >= 7.0 => SeverityLabel::High,
            s if s >= 4.0 => SeverityLabel::Medium,
            s if s > 0.0 => SeverityLabel::Low,
            _ => SeverityLabel::Untriaged,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SeverityLabel::Untriaged => "UNTRIAGED",
            SeverityLabel::Info => "INFO",
            SeverityLabel::Low => "LOW",
            SeverityLabel::Medium => "MEDIUM",
            SeverityLabel::High => "HIGH",
            SeverityLabel::Critical => "CRITICAL",
        }
    }

    /// OCSF `severity_id`.
    pub fn ocsf_id(self) -> u8 {
        match self {
            SeverityLabel::Untriaged => 0,
            SeverityLabel::Info => 1,
            SeverityLabel::Low => 2,
            SeverityLabel::Medium => 3,
            SeverityLabel::High => 4,
            SeverityLabel::Critical => 5,
        }
    }

    /// OCSF `severity`.
    pub fn ocsf_name(self) -> &'static str {
        match self {
            SeverityLabel::Untriaged => "Unknown",
            SeverityLabel::Info => "Informational",
            SeverityLabel::Low => "Low",
            SeverityLabel::Medium => "Medium",
            SeverityLabel::High => "High",
            SeverityLabel::Critical => "Critical",
        }
    }

    /// Reads a label as feeds and users write it: `high`, `HIGH`, `Moderate` (GitHub), `Important`
    /// (Red Hat), `negligible`, `unknown`.
    pub fn parse_loose(text: &str) -> Option<SeverityLabel> {
        Some(
            match text
                .trim()
                .trim_end_matches('*')
                .to_ascii_lowercase()
                .as_str()
            {
                "critical" => SeverityLabel::Critical,
                "high" | "important" => SeverityLabel::High,
                "medium" | "moderate" => SeverityLabel::Medium,
                "low" | "negligible" | "unimportant" | "minor" => SeverityLabel::Low,
                "info" | "informational" => SeverityLabel::Info,
                "untriaged" | "unknown" | "none" | "not yet assigned" => SeverityLabel::Untriaged,
                _ => return None,
            },
        )
    }
}

impl fmt::Display for SeverityLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SeverityLabel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SeverityLabel::parse_loose(s).ok_or_else(|| {
            format!(
                "unknown severity {s:?} (expected one of UNTRIAGED, INFO, LOW, MEDIUM, HIGH, CRITICAL)"
            )
        })
    }
}

/// Whether fixes exist for a vulnerability finding, as the managed services report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum FixAvailable {
    /// Every vulnerable package has a fixed version.
    Yes,
    /// Some do.
    Partial,
    /// None does.
    No,
}

impl FixAvailable {
    pub fn as_str(self) -> &'static str {
        match self {
            FixAvailable::Yes => "YES",
            FixAvailable::Partial => "PARTIAL",
            FixAvailable::No => "NO",
        }
    }

    /// The state of a finding whose packages have (`true`) or lack fixes.
    pub fn of(fixed: impl IntoIterator<Item = bool>) -> FixAvailable {
        let (mut some, mut all, mut any) = (false, true, false);
        for f in fixed {
            any = true;
            some |= f;
            all &= f;
        }
        match (any && all, some) {
            (true, _) => FixAvailable::Yes,
            (false, true) => FixAvailable::Partial,
            (false, false) => FixAvailable::No,
        }
    }
}

text_enum!(
    /// Whether a finding is in the active list or archived (by an analyst, or by a suppression
    /// rule when it was made).
    FindingState {
        Active = "active",
        Archived = "archived",
    }
);

text_enum!(
    /// What made a finding.
    FindingSource {
        /// The audit-log detection catalogue.
        Audit = "audit",
        /// A malware scan of an image.
        Malware = "malware",
        /// Vulnerability matching of an image's packages.
        Vulnerability = "vulnerability",
        /// A sample finding made on request, for testing integrations.
        Sample = "sample",
        /// Findings correlated by the investigation graph: an attack sequence.
        Correlation = "correlation",
        /// A retro-hunt: rules or a threat list run over kept audit events afterwards.
        RetroHunt = "retro-hunt",
    }
);

text_enum!(
    /// The analyst's view of where a finding stands.
    Workflow {
        New = "new",
        Acknowledged = "acknowledged",
        Resolved = "resolved",
    }
);

/// Milliseconds since the epoch of an RFC 3339 time (a finding's `first_seen`, `last_seen`).
pub fn time_ms(t: Option<&str>) -> Option<i64> {
    t.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
}

impl Finding {
    /// `first_seen` in milliseconds since the epoch.
    pub fn first_seen_ms(&self) -> Option<i64> {
        time_ms(self.first_seen.as_deref())
    }

    /// `last_seen` in milliseconds since the epoch.
    pub fn last_seen_ms(&self) -> Option<i64> {
        time_ms(self.last_seen.as_deref())
    }
}

/// One finding. `Finding::default()` has every optional part empty, for struct-update syntax.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    /// Stable: the same issue on the same resource always gets the same id.
    pub id: String,
    /// `ThreatPurpose:ResourceType/ThreatFamily.DetectionMechanism!Artifact`, e.g.
    /// `Vulnerability:Package/CVE`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub severity: Severity,
    pub resource: Resource,
    /// Details of a vulnerability finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerability: Option<Vulnerability>,
    /// Set when an ignore rule or a VEX statement suppresses the finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<Suppression>,
    /// Repeated occurrences of the same issue update one finding.
    #[serde(default = "one")]
    pub count: u64,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// The API call of an audit finding (its latest occurrence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// What the finding rests on: audit event ids, the rule, the list matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitre: Option<Mitre>,
    /// The scan behind a malware finding: its threats, files and coverage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malware: Option<MalwareScan>,
}

/// A malware scan's details, after the managed service's scan finding.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MalwareScan {
    pub scan_id: String,
    /// `ON_DEMAND`, `TRIGGERED` or `SCHEDULED`.
    pub scan_type: String,
    /// The finding that started a triggered scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_finding_id: Option<String>,
    /// What was scanned, as given (`dir:/srv`, an image reference, `disk:vol.qcow2`).
    pub source: String,
    /// The most frequent threats first.
    pub threats: Vec<Threat>,
    pub files_scanned: u64,
    pub bytes_scanned: u64,
    pub archives_opened: u64,
    /// Files and members not scanned, by reason.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub skipped: std::collections::BTreeMap<String, u64>,
    /// Disk scans: every volume, scanned or skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ScannedVolume>,
}

/// One threat of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Threat {
    pub name: String,
    pub severity: SeverityLabel,
    /// Files it was found in.
    pub count: u64,
    /// `yara` or `hash`, and the rule or list.
    pub detected_by: String,
    /// Up to a handful of the files.
    pub files: Vec<ThreatFile>,
}

/// A file a threat was found in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreatFile {
    /// Inside archives: `archive.zip!member`.
    pub path: String,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// The later layer that deleted or replaced the file: present in `layer`, not in the
    /// final image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_in_layer: Option<usize>,
    /// The disk partition (1-based) of a disk scan's file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<usize>,
}

/// A volume of a disk scan: scanned, or skipped with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScannedVolume {
    /// `disk` or `partition N`.
    pub name: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<String>,
    pub scanned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_reason: Option<String>,
}

/// A MITRE ATT&CK tactic and technique.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mitre {
    /// `TA0004`.
    pub tactic: String,
    /// `T1610`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub technique: String,
}

/// The evidence of a detection.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evidence {
    /// The rule that fired.
    pub rule_id: String,
    /// The detection catalogue rows (`C22`) and managed-service types the rule implements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catalogue: Vec<String>,
    /// Audit event ids of the occurrences (the latest ones when there are many).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_ids: Vec<String>,
    /// Name of the threat list that matched, for intel findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_list: Option<String>,
    /// Free-form facts of the detection (`window`, `distinct_count`, `baseline_key`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub additional_info: std::collections::BTreeMap<String, String>,
    /// The findings an attack sequence was made of, earliest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<String>,
}

/// A Kubernetes API call (`KUBERNETES_API_CALL`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Action {
    pub verb: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_uri: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<String>,
    /// The caller's autonomous system, when an ASN database is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_asn: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_asn_org: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_name: String,
    /// RFC 3339 time of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

fn one() -> u64 {
    1
}

/// Why a finding is suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Suppression {
    /// `ignore-file` or `vex`.
    pub by: String,
    /// The file that holds the rule or statement.
    pub source: String,
    /// `ignored`, or the VEX status (`not_affected`, `fixed`).
    pub status: String,
    /// VEX justification (`vulnerable_code_not_present`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// What a finding is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageResource>,
    /// The cluster, the namespace, the subject and the workload of a Kubernetes finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesResource>,
}

/// The Kubernetes side of a finding's resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KubernetesResource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<KubernetesUser>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
}

/// Who made the call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KubernetesUser {
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonated_user: Option<String>,
}

/// The workload a call creates, changes or reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Workload {
    /// `pods`, `deployments`, …
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
    /// Host paths the pod mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_pid: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_ipc: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
}

/// One container of a workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Container {
    pub name: String,
    pub image: String,
    /// The image without tag or digest, what suppression rules match on.
    pub image_prefix: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
}

/// A scanned image or file system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageResource {
    /// The source as given (`registry:…`, `oci-dir:…`, an SBOM file).
    pub reference: String,
    /// Manifest digest, when the source is an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The operating system, as `Debian GNU/Linux 12 (bookworm)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
}

/// A vulnerability: its identifiers, scores, the vulnerable packages and their fixes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Vulnerability {
    /// The preferred identifier (a CVE when there is one).
    pub id: String,
    /// Every other identifier of the same vulnerability (GHSA, PYSEC, GO-, RUSTSEC-, DSA…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cvss: Vec<Cvss>,
    /// Severity labels the data sources gave (`GHSA: MODERATE`, `debian: low`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vendor_severity: Vec<VendorSeverity>,
    pub fix_available: FixAvailable,
    pub packages: Vec<VulnerablePackage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
}

/// A CVSS vector and its base score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cvss {
    /// `2.0`, `3.0`, `3.1`, `4.0`.
    pub version: String,
    pub vector: String,
    pub base_score: f64,
    /// Which advisory gave it.
    pub source: String,
}

/// A severity label from one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VendorSeverity {
    pub source: String,
    pub label: String,
}

/// A package a vulnerability affects, where it is, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VulnerablePackage {
    pub name: String,
    pub version: String,
    #[serde(rename = "type")]
    pub kind: crate::PackageType,
    pub purl: String,
    /// The source package the advisory names (OS packages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// Versions that fix it, nearest first; empty when there is no fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed_versions: Vec<String>,
    /// The file that declares the package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Index of the layer that introduced the package (0 = base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_diff_id: Option<String>,
    /// The advisories that matched (the evidence, with `vulnerable_ranges`).
    pub advisories: Vec<String>,
    /// `Debian:12`, `PyPI`, …
    pub ecosystem: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vulnerable_ranges: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_enums_keep_one_spelling_everywhere() {
        fn check<T>(all: &[T], as_str: fn(T) -> &'static str, parse: fn(&str) -> Option<T>)
        where
            T: Copy + PartialEq + std::fmt::Debug + Serialize + for<'de> Deserialize<'de>,
        {
            for &v in all {
                let text = as_str(v);
                assert_eq!(parse(text), Some(v));
                assert_eq!(serde_json::to_value(v).unwrap(), text);
                assert_eq!(serde_json::from_value::<T>(text.into()).unwrap(), v);
            }
            assert_eq!(parse("Active "), None);
        }
        check(FindingState::ALL, FindingState::as_str, FindingState::parse);
        check(
            FindingSource::ALL,
            FindingSource::as_str,
            FindingSource::parse,
        );
        check(Workflow::ALL, Workflow::as_str, Workflow::parse);
        assert_eq!(FindingState::Archived.to_string(), "archived");
        assert_eq!(Workflow::Acknowledged.as_str(), "acknowledged");
    }

    #[test]
    fn labels_from_scores() {
        assert_eq!(SeverityLabel::from_score(9.8), SeverityLabel::Critical);
        assert_eq!(SeverityLabel::from_score(9.0), SeverityLabel::Critical);
        assert_eq!(SeverityLabel::from_score(8.9), SeverityLabel::High);
        assert_eq!(SeverityLabel::from_score(7.0), SeverityLabel::High);
        assert_eq!(SeverityLabel::from_score(6.9), SeverityLabel::Medium);
        assert_eq!(SeverityLabel::from_score(4.0), SeverityLabel::Medium);
        assert_eq!(SeverityLabel::from_score(3.9), SeverityLabel::Low);
        assert_eq!(SeverityLabel::from_score(0.0), SeverityLabel::Untriaged);
        assert!(
            SeverityLabel::Critical > SeverityLabel::High
                && SeverityLabel::Low > SeverityLabel::Untriaged
        );
    }

    #[test]
    fn loose_labels() {
        assert_eq!(
            "Moderate".parse::<SeverityLabel>(),
            Ok(SeverityLabel::Medium)
        );
        assert_eq!(
            SeverityLabel::parse_loose("high**"),
            Some(SeverityLabel::High)
        );
        assert_eq!(
            SeverityLabel::parse_loose("important"),
            Some(SeverityLabel::High)
        );
        assert!(
            "severe"
                .parse::<SeverityLabel>()
                .unwrap_err()
                .contains("severe")
        );
    }

    #[test]
    fn fix_available() {
        assert_eq!(FixAvailable::of([true, true]), FixAvailable::Yes);
        assert_eq!(FixAvailable::of([true, false]), FixAvailable::Partial);
        assert_eq!(FixAvailable::of([false]), FixAvailable::No);
        assert_eq!(FixAvailable::of([]), FixAvailable::No);
    }
}
