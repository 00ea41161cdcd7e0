//! Threat intelligence: trusted and threat IP lists, Tor exit lists.
//!
//! A list is a set of IPv4/IPv6 addresses and CIDR ranges, stored as merged, sorted ranges of
//! 128-bit numbers (IPv4 mapped into IPv6), so a lookup is one binary search: O(log n) for the
//! 250,000-entry lists the managed service allows, with 32 bytes per range. Formats: plain
//! text (one address or CIDR per line, `#` comments), CSV (the first cell of a row that is an
//! address or CIDR: OTX/ProofPoint/FireEye exports), STIX 2.1 bundles (`indicator` objects whose
//! pattern compares `ipv4-addr:value` / `ipv6-addr:value`), and Tor's exit lists (the bulk list
//! or `ExitAddress` lines). A trusted address is never reported, even when a threat list has it.

use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

use maxminddb::geoip2;

use ipnet::IpNet;

/// What a list is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Addresses never reported.
    Trusted,
    /// Vendor threat intelligence.
    Threat,
    /// A customer's own threat list (`….Custom` finding types name it).
    Custom,
    /// Tor exit nodes.
    Tor,
}

/// Limits on one list file.
#[derive(Debug, Clone, Copy)]
pub struct ListLimits {
    pub max_bytes: u64,
    pub max_entries: usize,
}

impl Default for ListLimits {
    fn default() -> Self {
        ListLimits {
            max_bytes: 64 << 20,
            max_entries: 1_000_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: larger than the limit of {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: more than {limit} entries")]
    TooManyEntries { path: String, limit: usize },
    #[error("{path}: line {line}: {reason}")]
    Entry {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Format { path: String, reason: String },
}

/// A set of addresses and ranges.
#[derive(Debug, Clone, Default)]
pub struct IpSet {
    /// Sorted, non-overlapping, inclusive.
    ranges: Vec<(u128, u128)>,
}

fn as_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl IpSet {
    pub fn from_nets(nets: impl IntoIterator<Item = IpNet>) -> IpSet {
        let mut ranges: Vec<(u128, u128)> = nets
            .into_iter()
            .map(|n| (as_u128(n.network()), as_u128(n.broadcast())))
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        merged.shrink_to_fit();
        IpSet { ranges: merged }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let x = as_u128(ip);
        // The last range starting at or before x.
        let i = self.ranges.partition_point(|r| r.0 <= x);
        i > 0 && self.ranges[i - 1].1 >= x
    }

    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// One named list.
#[derive(Debug, Clone)]
pub struct IpList {
    pub name: String,
    pub kind: ListKind,
    pub set: IpSet,
    /// Entries read (before merging).
    pub entries: usize,
}

impl IpList {
    /// Reads a list file; its format is told by its content.
    pub fn load(path: &Path, kind: ListKind, limits: &ListLimits) -> Result<IpList, ListError> {
        let p = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| ListError::Io {
            path: p.clone(),
            source,
        })?;
        if meta.len() > limits.max_bytes {
            return Err(ListError::TooLarge {
                path: p,
                limit: limits.max_bytes,
            });
        }
        let bytes = std::fs::read(path).map_err(|source| ListError::Io {
            path: p.clone(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.clone());
        IpList::parse(&name, &p, &bytes, kind, limits)
    }

    /// Parses list text; `label` names the input in errors.
    pub fn parse(
        name: &str,
        label: &str,
        bytes: &[u8],
        kind: ListKind,
        limits: &ListLimits,
    ) -> Result<IpList, ListError> {
        let text = String::from_utf8_lossy(bytes);
        let trimmed = text.trim_start();
        let nets = if trimmed.starts_with('{') || trimmed.starts_with('[') {
            stix(label, trimmed, limits)?
        } else {
            lines(label, &text, limits)?
        };
        let entries = nets.len();
        Ok(IpList {
            name: name.to_string(),
            kind,
            set: IpSet::from_nets(nets),
            entries,
        })
    }
}

fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim().trim_matches('"').trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Plain lists, CSV and Tor's `ExitAddress` format.
fn lines(label: &str, text: &str, limits: &ListLimits) -> Result<Vec<IpNet>, ListError> {
    let mut nets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
            continue;
        }
        let net = if let Some(rest) = line.strip_prefix("ExitAddress ") {
            rest.split_whitespace().next().and_then(parse_net)
        } else if line.contains(',') || line.contains(';') || line.contains('\t') {
            // CSV: the first cell that is an address; header rows have none.
            let found = line.split([',', ';', '\t']).find_map(parse_net);
            if found.is_none() {
                continue;
            }
            found
        } else if line.split_whitespace().next().is_some_and(|w| {
            matches!(w, "ExitNode" | "Published" | "LastStatus") || w.contains(':') && w.len() > 39
        }) {
            // The other lines of Tor's exit-addresses format.
            continue;
        } else {
            let first = line.split_whitespace().next().unwrap_or(line);
            Some(parse_net(first).ok_or_else(|| ListError::Entry {
                path: label.to_string(),
                line: i + 1,
                reason: format!("{first:?} is not an IP address or CIDR range"),
            })?)
        };
        if let Some(n) = net {
            if nets.len() >= limits.max_entries {
                return Err(ListError::TooManyEntries {
                    path: label.to_string(),
                    limit: limits.max_entries,
                });
            }
            nets.push(n);
        }
    }
    Ok(nets)
}

/// STIX 2.1: a bundle (or an array) of objects; `indicator` patterns such as
/// `[ipv4-addr:value = '198.51.100.1'] OR [ipv6-addr:value = '2001:db8::/32']`.
fn stix(label: &str, text: &str, limits: &ListLimits) -> Result<Vec<IpNet>, ListError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| ListError::Format {
        path: label.to_string(),
        reason: format!("not a STIX bundle: {e}"),
    })?;
    let objects = match &v {
        serde_json::Value::Array(a) => a.as_slice(),
        serde_json::Value::Object(m) => match m.get("objects") {
            Some(serde_json::Value::Array(a)) => a.as_slice(),
            _ => {
                return Err(ListError::Format {
                    path: label.to_string(),
                    reason: "JSON without a STIX `objects` array".into(),
                });
            }
        },
        _ => &[],
    };
    let mut nets = Vec::new();
    for o in objects {
        if o.get("type").and_then(|t| t.as_str()) != Some("indicator") {
            continue;
        }
        let Some(pattern) = o.get("pattern").and_then(|p| p.as_str()) else {
            continue;
        };
        let mut rest = pattern;
        while let Some(i) = rest.find("-addr:value") {
            let kind = &rest[..i];
            let after = &rest[i + "-addr:value".len()..];
            rest = after;
            if !(kind.ends_with("ipv4") || kind.ends_with("ipv6")) {
                continue;
            }
            let after = after.trim_start();
            let Some(after) = after.strip_prefix('=') else {
                continue;
            };
            let Some(q) = after.trim_start().strip_prefix('\'') else {
                continue;
            };
            let Some(end) = q.find('\'') else { continue };
            if let Some(n) = parse_net(&q[..end]) {
                if nets.len() >= limits.max_entries {
                    return Err(ListError::TooManyEntries {
                        path: label.to_string(),
                        limit: limits.max_entries,
                    });
                }
                nets.push(n);
            }
            rest = &q[end..];
        }
    }
    Ok(nets)
}

/// A MaxMind ASN database (GeoLite2-ASN, GeoIP2-ISP): which network an address belongs to,
/// for baselines keyed on where callers come from.
pub struct AsnDb {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl std::fmt::Debug for AsnDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AsnDb({})", self.reader.metadata().database_type)
    }
}

/// The network of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asn<'a> {
    pub number: u32,
    pub organization: &'a str,
}

impl AsnDb {
    pub fn open(path: &Path, limits: &ListLimits) -> Result<AsnDb, ListError> {
        let p = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| ListError::Io {
            path: p.clone(),
            source,
        })?;
        // ASN databases are ~10 MB; an ISP one a little more.
        if meta.len() > limits.max_bytes * 4 {
            return Err(ListError::TooLarge {
                path: p,
                limit: limits.max_bytes * 4,
            });
        }
        let bytes = std::fs::read(path).map_err(|source| ListError::Io {
            path: p.clone(),
            source,
        })?;
        AsnDb::from_bytes(&p, bytes)
    }

    pub fn from_bytes(label: &str, bytes: Vec<u8>) -> Result<AsnDb, ListError> {
        let reader = maxminddb::Reader::from_source(bytes).map_err(|e| ListError::Format {
            path: label.to_string(),
            reason: format!("not a MaxMind database: {e}"),
        })?;
        let kind = reader.metadata().database_type.clone();
        if !(kind.contains("ASN") || kind.contains("ISP")) {
            return Err(ListError::Format {
                path: label.to_string(),
                reason: format!("a {kind} database, not an ASN or ISP one"),
            });
        }
        Ok(AsnDb { reader })
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<Asn<'_>> {
        let found = self.reader.lookup(ip).ok()?;
        let asn: geoip2::Asn<'_> = found.decode().ok()??;
        Some(Asn {
            number: asn.autonomous_system_number?,
            organization: asn.autonomous_system_organization.unwrap_or(""),
        })
    }
}

/// Every list the detectors consult.
#[derive(Debug, Default)]
pub struct Intel {
    lists: Vec<IpList>,
    asn: Option<AsnDb>,
}

/// What the lists say about one address.
#[derive(Debug, Clone, Copy, Default)]
pub struct IntelHit<'i> {
    /// The first vendor threat list holding it.
    pub threat: Option<&'i str>,
    /// The first customer threat list holding it.
    pub custom: Option<&'i str>,
    pub tor: bool,
    pub trusted: bool,
    /// The caller's network, when an ASN database is loaded.
    pub asn: Option<Asn<'i>>,
}

impl Intel {
    pub fn set_asn_db(&mut self, db: AsnDb) {
        self.asn = Some(db);
    }

    pub fn add(&mut self, list: IpList) {
        self.lists.push(list);
    }

    pub fn lists(&self) -> &[IpList] {
        &self.lists
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty() && self.asn.is_none()
    }

    /// Looks an address up in every list. A trusted address is on no other list.
    pub fn lookup(&self, ip: Option<IpAddr>) -> IntelHit<'_> {
        let mut hit = IntelHit::default();
        let Some(ip) = ip else { return hit };
        hit.asn = self.asn.as_ref().and_then(|db| db.lookup(ip));
        // Loopback and private addresses are never intel hits.
        if is_internal(ip) {
            return hit;
        }
        if self
            .lists
            .iter()
            .any(|l| l.kind == ListKind::Trusted && l.set.contains(ip))
        {
            hit.trusted = true;
            return hit;
        }
        for l in &self.lists {
            if !l.set.contains(ip) {
                continue;
            }
            match l.kind {
                ListKind::Threat => {
                    hit.threat.get_or_insert(&l.name);
                }
                ListKind::Custom => {
                    hit.custom.get_or_insert(&l.name);
                }
                ListKind::Tor => hit.tor = true,
                ListKind::Trusted => {}
            }
        }
        hit
    }
}

/// Loopback, private (RFC 1918, ULA), link-local and CGNAT addresses.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::LOCALHOST
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> IpList {
        IpList::parse(
            "t",
            "t.txt",
            text.as_bytes(),
            ListKind::Threat,
            &ListLimits::default(),
        )
        .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plain_lists_with_ranges_merge() {
        let l = list(
            "# bad hosts\n198.51.100.7\n203.0.113.0/25\n203.0.113.128/25\n2001:db8::/32 trailing comment\n\n",
        );
        assert_eq!(l.entries, 4);
        assert_eq!(l.set.ranges(), 3);
        for yes in [
            "198.51.100.7",
            "203.0.113.0",
            "203.0.113.255",
            "2001:db8::1",
        ] {
            assert!(l.set.contains(ip(yes)), "{yes}");
        }
        for no in [
            "198.51.100.8",
            "203.0.114.0",
            "2001:db9::1",
            "::ffff:198.51.100.6",
        ] {
            assert!(!l.set.contains(ip(no)), "{no}");
        }
        assert!(l.set.contains(ip("::ffff:198.51.100.7")));
    }

    #[test]
    fn csv_stix_and_tor() {
        let csv = list(
            "Indicator type,Indicator,Description\nIPv4,192.0.2.1,scanner\nIPv4,\"192.0.2.9\",c2\n",
        );
        assert_eq!(csv.entries, 2);
        assert!(csv.set.contains(ip("192.0.2.9")));
        let stix = list(
            r#"{"type":"bundle","id":"bundle--1","objects":[
            {"type":"indicator","spec_version":"2.1","pattern_type":"stix","pattern":"[ipv4-addr:value = '198.51.100.1'] OR [ipv6-addr:value = '2001:db8::/32']"},
            {"type":"indicator","pattern":"[domain-name:value = 'evil.example']"},
            {"type":"malware","name":"x"}]}"#,
        );
        assert_eq!(stix.entries, 2);
        assert!(stix.set.contains(ip("2001:db8::5")));
        let tor = list(
            "ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E\nPublished 2024-01-01 00:00:00\nLastStatus 2024-01-01 01:00:00\nExitAddress 185.220.101.1 2024-01-01 01:02:03\n",
        );
        assert_eq!(tor.entries, 1);
        assert!(tor.set.contains(ip("185.220.101.1")));
    }

    #[test]
    fn bad_entries_name_the_line() {
        let e = IpList::parse(
            "t",
            "t.txt",
            b"1.2.3.4\nnot-an-ip\n",
            ListKind::Threat,
            &ListLimits::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.txt: line 2: \"not-an-ip\" is not an IP address or CIDR range"
        );
        let e = IpList::parse(
            "t",
            "t.txt",
            b"1.2.3.4\n1.2.3.5\n",
            ListKind::Threat,
            &ListLimits {
                max_entries: 1,
                ..ListLimits::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, ListError::TooManyEntries { .. }));
        let e = IpList::parse(
            "t",
            "t.json",
            b"{\"a\":1}",
            ListKind::Threat,
            &ListLimits::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("objects"));
    }

    #[test]
    fn trusted_wins_and_internal_addresses_never_hit() {
        let mut intel = Intel::default();
        let mut t = list("198.51.100.0/24\n10.0.0.1\n");
        t.name = "intel".into();
        intel.add(t);
        let mut c = list("198.51.100.9\n");
        c.name = "mine".into();
        c.kind = ListKind::Custom;
        intel.add(c);
        let mut tr = list("198.51.100.1\n");
        tr.kind = ListKind::Trusted;
        intel.add(tr);
        let h = intel.lookup(Some(ip("198.51.100.9")));
        assert_eq!(
            (h.threat, h.custom, h.trusted),
            (Some("intel"), Some("mine"), false)
        );
        let h = intel.lookup(Some(ip("198.51.100.1")));
        assert_eq!((h.threat, h.trusted), (None, true));
        assert!(intel.lookup(Some(ip("10.0.0.1"))).threat.is_none());
    }

    #[test]
    fn asn_database() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/GeoLite2-ASN-Test.mmdb");
        let db = AsnDb::open(&path, &ListLimits::default()).unwrap();
        assert_eq!(
            db.lookup(ip("1.128.0.1")),
            Some(Asn {
                number: 1221,
                organization: "Telstra Pty Ltd"
            })
        );
        assert_eq!(db.lookup(ip("12.81.96.5")).map(|a| a.number), Some(7018));
        assert_eq!(db.lookup(ip("10.0.0.1")), None);
        let mut intel = Intel::default();
        intel.set_asn_db(db);
        assert_eq!(intel.lookup(Some(ip("1.0.0.7"))).asn.unwrap().number, 15169);
        let e = AsnDb::from_bytes("x.mmdb", b"not a database".to_vec()).unwrap_err();
        assert!(
            e.to_string().starts_with("x.mmdb: not a MaxMind database"),
            "{e}"
        );
    }

    #[test]
    fn large_sets_look_up_by_binary_search() {
        let nets =
            (0..250_000u32).map(|i| IpNet::from(IpAddr::from((i * 7 + (1 << 24)).to_be_bytes())));
        let s = IpSet::from_nets(nets);
        assert_eq!(s.ranges(), 250_000);
        assert!(s.contains(IpAddr::from((7 * 1000 + (1u32 << 24)).to_be_bytes())));
        assert!(!s.contains(IpAddr::from((7 * 1000 + 1 + (1u32 << 24)).to_be_bytes())));
    }
}
