//! Image references (`[registry/]repository[:tag][@digest]`) with Docker's defaults:
//! no registry means Docker Hub, a one-component Hub name means `library/NAME`, no tag or
//! digest means `latest`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as written (Docker Hub normalised to `docker.io`).
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Host the API is served from (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The key docker's `config.json` stores credentials for this registry under.
    pub fn credential_key(&self) -> String {
        if self.registry == DOCKER_HUB {
            "https://index.docker.io/v1/".to_string()
        } else {
            self.registry.clone()
        }
    }

    /// What to ask the manifests endpoint for: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// Whether the registry host is the local machine (plain HTTP allowed with `--insecure`).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => &self.registry,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ separated by '.', '_', '__' or runs of '-'.
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = if let Some(rest) = r.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("ipv6", Some(port)),
                None => return false,
            },
        }
    } else {
        match r.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (r, None),
        }
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    port_ok && host_ok
}

impl FromStr for Reference {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("image reference {s:?}: {why}");
        if s.is_empty() || s.len() > 4096 {
            return Err(bad("empty or too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|e| bad(&e))?)),
            None => (s, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t)),
            _ => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(bad("invalid tag"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first, path.to_string())
            }
            _ => (DOCKER_HUB, name.to_string()),
        };
        if !valid_registry(registry) {
            return Err(bad("invalid registry host"));
        }
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DOCKER_HUB
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if !repository.split('/').all(valid_component) {
            return Err(bad(
                "invalid repository name (lowercase letters, digits, '.', '_', '-')",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap()
    }

    #[test]
    fn docker_defaults() {
        assert_eq!(r("alpine").to_string(), "docker.io/library/alpine:latest");
        assert_eq!(
            r("alpine:3.18").to_string(),
            "docker.io/library/alpine:3.18"
        );
        assert_eq!(
            r("bitnami/redis").to_string(),
            "docker.io/bitnami/redis:latest"
        );
        assert_eq!(r("docker.io/alpine").api_host(), "registry-1.docker.io");
        assert_eq!(r("index.docker.io/library/alpine").registry, "docker.io");
    }

    #[test]
    fn registries_ports_digests() {
        let x = r("127.0.0.1:5000/bench/app:v1");
        assert_eq!(
            (x.registry.as_str(), x.repository.as_str(), x.tag.as_deref()),
            ("127.0.0.1:5000", "bench/app", Some("v1"))
        );
        assert!(x.is_loopback());
        let y = r("localhost:5000/app");
        assert_eq!(y.tag.as_deref(), Some("latest"));
        assert!(y.is_loopback());
        assert!(!r("ghcr.io/o/a:1").is_loopback());
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let z = r(&format!("quay.io/a/b@{d}"));
        assert_eq!(z.tag, None);
        assert_eq!(z.manifest_ref(), d);
        assert_eq!(r(&format!("quay.io/a/b:1@{d}")).manifest_ref(), d);
        assert_eq!(r("[::1]:5000/x").registry, "[::1]:5000");
        assert!(r("[::1]:5000/x").is_loopback());
    }

    #[test]
    fn rejects_bad_names() {
        for s in [
            "",
            "UPPER/case",
            "a//b",
            "a:b:c/d",
            "x@sha256:123",
            "./app.tar",
            "../x/y",
            "/abs/path",
            "app.tar:",
            "-a",
            "[zz]:1/x",
        ] {
            assert!(s.parse::<Reference>().is_err(), "{s}");
        }
    }
}
