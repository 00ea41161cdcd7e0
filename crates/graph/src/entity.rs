//! Entities and their ids: stable, URL-safe paths `{type}/{key…}` that name the same thing
//! in every release (`pod/{cluster}/{namespace}/{name}`, `subject/{cluster}/{username}`, …).
//! Free-form parts (usernames, user agents) are percent-encoded, so an id is always a path of
//! plain segments; parsing an id from a URL checks every part against what it may hold.

use std::fmt;
use std::net::IpAddr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Longest id accepted (bytes of the path).
pub const MAX_ID_BYTES: usize = 2048;
/// Longest Kubernetes name part (a DNS subdomain).
const MAX_NAME_BYTES: usize = 253;

/// Everything but RFC 3986's unreserved characters is encoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum EntityType {
    Cluster,
    Namespace,
    Pod,
    Subject,
    Ip,
    UserAgent,
    Image,
    Node,
    Finding,
    Vulnerability,
    /// An installed package, by package URL.
    Package,
}

impl EntityType {
    pub const ALL: [EntityType; 11] = [
        EntityType::Cluster,
        EntityType::Namespace,
        EntityType::Pod,
        EntityType::Subject,
        EntityType::Ip,
        EntityType::UserAgent,
        EntityType::Image,
        EntityType::Node,
        EntityType::Finding,
        EntityType::Vulnerability,
        EntityType::Package,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Cluster => "cluster",
            EntityType::Namespace => "namespace",
            EntityType::Pod => "pod",
            EntityType::Subject => "subject",
            EntityType::Ip => "ip",
            EntityType::UserAgent => "user-agent",
            EntityType::Image => "image",
            EntityType::Node => "node",
            EntityType::Finding => "finding",
            EntityType::Vulnerability => "vulnerability",
            EntityType::Package => "package",
        }
    }

    pub fn parse(s: &str) -> Option<EntityType> {
        EntityType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Every type's name, for messages: `cluster, namespace, …, package`.
    pub fn names() -> String {
        let names: Vec<&str> = EntityType::ALL.iter().map(|t| t.as_str()).collect();
        names.join(", ")
    }

    /// The parts of this type's key, in order.
    fn parts(self) -> &'static [Part] {
        use Part::*;
        match self {
            EntityType::Cluster => &[Cluster],
            EntityType::Namespace => &[Cluster, Name],
            EntityType::Pod => &[Cluster, Name, Name],
            EntityType::Subject => &[Cluster, Encoded],
            EntityType::Ip => &[Address],
            EntityType::UserAgent => &[Encoded],
            EntityType::Image => &[Digest],
            EntityType::Node => &[Cluster, Name],
            EntityType::Finding => &[Token],
            EntityType::Vulnerability => &[Token],
            EntityType::Package => &[Encoded],
        }
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one segment of a key may hold.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// An Osprey cluster id.
    Cluster,
    /// A Kubernetes object name (namespace, pod, node).
    Name,
    /// Free text, percent-encoded.
    Encoded,
    /// An IPv4 or IPv6 address in its canonical form.
    Address,
    /// `sha256:` and 64 lowercase hex digits.
    Digest,
    /// A finding id or vulnerability id: letters, digits, `-`, `_`, `.`, `:`.
    Token,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityError {
    #[error("entity id is longer than {MAX_ID_BYTES} bytes")]
    TooLong,
    #[error("unknown entity type {0:?} (expected one of {types})", types = EntityType::names())]
    UnknownType(String),
    #[error("a {kind} id has {expected} part(s) after the type, not {got}")]
    Parts {
        kind: EntityType,
        expected: usize,
        got: usize,
    },
    #[error("part {index} of a {kind} id is not {what}: {value:?}")]
    BadPart {
        kind: EntityType,
        index: usize,
        what: &'static str,
        value: String,
    },
}

/// An entity: its type and its key (the path after the type, encoded parts included).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId {
    kind: EntityType,
    key: String,
}

impl EntityId {
    pub fn cluster(cluster_id: &str) -> EntityId {
        EntityId::of(EntityType::Cluster, &[cluster_id])
    }
    pub fn namespace(cluster_id: &str, namespace: &str) -> EntityId {
        EntityId::of(EntityType::Namespace, &[cluster_id, namespace])
    }
    pub fn pod(cluster_id: &str, namespace: &str, name: &str) -> EntityId {
        EntityId::of(EntityType::Pod, &[cluster_id, namespace, name])
    }
    pub fn subject(cluster_id: &str, username: &str) -> EntityId {
        EntityId::of(EntityType::Subject, &[cluster_id, &encode(username)])
    }
    pub fn ip(address: IpAddr) -> EntityId {
        EntityId::of(EntityType::Ip, &[&address.to_string()])
    }
    pub fn user_agent(agent: &str) -> EntityId {
        EntityId::of(EntityType::UserAgent, &[&encode(agent)])
    }
    pub fn image(digest: &str) -> EntityId {
        EntityId::of(EntityType::Image, &[digest])
    }
    pub fn node(cluster_id: &str, name: &str) -> EntityId {
        EntityId::of(EntityType::Node, &[cluster_id, name])
    }
    pub fn finding(id: &str) -> EntityId {
        EntityId::of(EntityType::Finding, &[id])
    }
    pub fn vulnerability(id: &str) -> EntityId {
        EntityId::of(EntityType::Vulnerability, &[id])
    }
    /// A package by its package URL (`pkg:deb/debian/openssl@3.0.11-1?arch=amd64`); `None`
    /// for an empty one, or one whose id would pass [`MAX_ID_BYTES`] (it would not parse).
    pub fn package(purl: &str) -> Option<EntityId> {
        let id = EntityId::of(EntityType::Package, &[&encode(purl)]);
        let len = EntityType::Package.as_str().len() + 1 + id.key.len();
        (!purl.is_empty() && len <= MAX_ID_BYTES).then_some(id)
    }

    fn of(kind: EntityType, parts: &[&str]) -> EntityId {
        EntityId {
            kind,
            key: parts.join("/"),
        }
    }

    /// Parses `{type}/{key…}` (as in a URL path), checking every part.
    pub fn parse(path: &str) -> Result<EntityId, EntityError> {
        if path.len() > MAX_ID_BYTES {
            return Err(EntityError::TooLong);
        }
        let (kind, key) = path.split_once('/').unwrap_or((path, ""));
        let kind =
            EntityType::parse(kind).ok_or_else(|| EntityError::UnknownType(kind.to_string()))?;
        EntityId::parse_key(kind, key)
    }

    /// Parses the key of an entity of type `kind`.
    pub fn parse_key(kind: EntityType, key: &str) -> Result<EntityId, EntityError> {
        if key.len() > MAX_ID_BYTES {
            return Err(EntityError::TooLong);
        }
        let expected = kind.parts();
        let segments: Vec<&str> = if key.is_empty() {
            Vec::new()
        } else {
            key.split('/').collect()
        };
        if segments.len() != expected.len() {
            return Err(EntityError::Parts {
                kind,
                expected: expected.len(),
                got: segments.len(),
            });
        }
        let mut canonical = Vec::with_capacity(segments.len());
        for (index, (raw, part)) in segments.iter().zip(expected).enumerate() {
            let bad = |what: &'static str| EntityError::BadPart {
                kind,
                index,
                what,
                value: raw.chars().take(80).collect(),
            };
            // A part that is not percent-encoded by definition may still arrive encoded (an
            // address's colons in a URL): read it decoded.
            let plain;
            let segment: &str = if matches!(part, Part::Encoded) {
                raw
            } else {
                plain = percent_decode_str(raw)
                    .decode_utf8()
                    .map_err(|_| bad("percent-encoded UTF-8"))?;
                &plain
            };
            let value = match part {
                Part::Cluster | Part::Name => {
                    if !is_name(segment) {
                        return Err(bad(
                            "a Kubernetes name (lowercase letters, digits, '-', '.')",
                        ));
                    }
                    segment.to_string()
                }
                Part::Encoded => {
                    let decoded = percent_decode_str(segment)
                        .decode_utf8()
                        .map_err(|_| bad("percent-encoded UTF-8"))?;
                    if decoded.is_empty() {
                        return Err(bad("a non-empty value"));
                    }
                    // One spelling per value: the canonical encoding.
                    encode(&decoded)
                }
                Part::Address => segment
                    .parse::<IpAddr>()
                    .map_err(|_| bad("an IP address"))?
                    .to_string(),
                Part::Digest => {
                    let hex = segment
                        .strip_prefix("sha256:")
                        .ok_or_else(|| bad("a sha256: digest"))?;
                    if hex.len() != 64
                        || !hex
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    {
                        return Err(bad("a sha256: digest"));
                    }
                    segment.to_string()
                }
                Part::Token => {
                    if segment.is_empty()
                        || segment.len() > MAX_NAME_BYTES
                        || !segment
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
                    {
                        return Err(bad("an id (letters, digits, '-', '_', '.', ':')"));
                    }
                    segment.to_string()
                }
            };
            canonical.push(value);
        }
        Ok(EntityId {
            kind,
            key: canonical.join("/"),
        })
    }

    pub fn kind(&self) -> EntityType {
        self.kind
    }

    /// The path after the type.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The cluster a cluster-scoped entity belongs to.
    pub fn cluster_id(&self) -> Option<&str> {
        match self.kind {
            EntityType::Cluster
            | EntityType::Namespace
            | EntityType::Pod
            | EntityType::Subject
            | EntityType::Node => self.key.split('/').next(),
            _ => None,
        }
    }

    /// What a person reads: the last part, decoded (a pod's `namespace/name`).
    pub fn name(&self) -> String {
        let mut parts = self.key.split('/');
        match self.kind {
            EntityType::Subject => decode(parts.nth(1).unwrap_or_default()),
            EntityType::UserAgent | EntityType::Package => decode(&self.key),
            EntityType::Pod => {
                let _cluster = parts.next();
                parts.collect::<Vec<_>>().join("/")
            }
            EntityType::Namespace | EntityType::Node => parts.nth(1).unwrap_or_default().into(),
            _ => self.key.clone(),
        }
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.key)
    }
}

impl serde::Serialize for EntityId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// A Kubernetes object name or an Osprey cluster id: a DNS subdomain, leniently (upper case
/// and `_` occur in ids of other systems). Names from audit events are checked with it
/// before they make ids.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_BYTES
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_paths_that_parse_back() {
        let ids = [
            EntityId::cluster("c1"),
            EntityId::namespace("c1", "kube-system"),
            EntityId::pod("c1", "default", "web-7d4b9"),
            EntityId::subject("c1", "system:serviceaccount:default:builder"),
            EntityId::subject("c1", "jane@example.com"),
            EntityId::ip("10.0.0.7".parse().unwrap()),
            EntityId::ip("2001:db8::1".parse().unwrap()),
            EntityId::user_agent("kubectl/v1.30.1 (linux/amd64) kubernetes/7c48c2b"),
            EntityId::image(&format!("sha256:{}", "ab".repeat(32))),
            EntityId::node("c1", "ip-10-0-0-1.ec2.internal"),
            EntityId::finding("3f2a9c"),
            EntityId::vulnerability("CVE-2024-3094"),
            EntityId::package(
                "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
            )
            .unwrap(),
            EntityId::package("pkg:npm/%40babel/parser@7.24.0").unwrap(),
        ];
        for id in ids {
            let path = id.to_string();
            assert!(
                path.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%/:".contains(&b)),
                "{path}"
            );
            assert_eq!(EntityId::parse(&path).unwrap(), id, "{path}");
        }
        let s = EntityId::subject("c1", "system:serviceaccount:default:builder");
        assert_eq!(
            s.to_string(),
            "subject/c1/system%3Aserviceaccount%3Adefault%3Abuilder"
        );
        assert_eq!(s.name(), "system:serviceaccount:default:builder");
        assert_eq!(s.cluster_id(), Some("c1"));
        assert_eq!(EntityId::pod("c1", "ns", "p").name(), "ns/p");
        assert_eq!(
            EntityId::user_agent("curl/8.5 (x)").name(),
            "curl/8.5 (x)",
            "a slash in a user agent is encoded, so it stays one part"
        );
        let p = EntityId::package("pkg:pypi/requests@2.31.0").unwrap();
        assert_eq!(p.to_string(), "package/pkg%3Apypi%2Frequests%402.31.0");
        assert_eq!(p.name(), "pkg:pypi/requests@2.31.0");
        assert_eq!(EntityId::package(""), None);
        let longest = "x".repeat(MAX_ID_BYTES - "package/".len());
        assert!(EntityId::package(&longest).is_some());
        assert_eq!(EntityId::package(&format!("{longest}x")), None);
    }

    #[test]
    fn parsing_checks_every_part_and_makes_one_spelling() {
        let bad = [
            ("", "unknown entity type"),
            ("host/x", "unknown entity type"),
            ("pod/c1/ns", "3 part(s) after the type, not 2"),
            ("pod/c1/ns/a/b", "not 4"),
            ("namespace/c1/..", "a Kubernetes name"),
            ("namespace/c1/a b", "a Kubernetes name"),
            ("ip/10.0.0.300", "an IP address"),
            ("image/latest", "a sha256: digest"),
            ("image/sha256:ABCD", "a sha256: digest"),
            ("subject/c1/%FF", "percent-encoded UTF-8"),
            ("finding/a;b", "an id"),
        ];
        for (path, needle) in bad {
            let e = EntityId::parse(path).unwrap_err().to_string();
            assert!(e.contains(needle), "{path}: {e}");
        }
        assert_eq!(
            EntityId::parse(&format!("cluster/{}", "a".repeat(MAX_ID_BYTES))).unwrap_err(),
            EntityError::TooLong
        );
        // Other spellings of the same value come out canonical.
        assert_eq!(
            EntityId::parse("subject/c1/system:admin")
                .unwrap()
                .to_string(),
            "subject/c1/system%3Aadmin"
        );
        assert_eq!(
            EntityId::parse("ip/2001:0db8:0:0:0:0:0:1")
                .unwrap()
                .to_string(),
            "ip/2001:db8::1"
        );
    }
}
