//! Where Osprey may connect: the one destination policy of every outbound HTTP client the
//! server makes (registries and their token servers, alert outputs).
//!
//! What a tenant or a monitored cluster sends decides destinations (an output's URL, a
//! registry host, an image named in an audit event, a token realm a registry answers with),
//! so a destination is checked on Osprey's side: its name is resolved here and only the
//! addresses the policy allows are handed to the connector — the connection goes to an address
//! that was checked, with no second resolution to race — and a literal address in a URL, or
//! in a redirect, is checked before the request. Refused by default: loopback, link-local
//! (cloud metadata services included), private, shared (CGNAT), multicast, unspecified and
//! other non-routable ranges, unless the operator allows them (`--allow-destination`). An
//! HTTPS request is never redirected to plain HTTP.
//!
//! The command line's own clients use [`Policy::open`]: the person running them chooses where
//! they connect.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What the reason of a refused destination says (also what a tenant sees).
pub const NOT_ALLOWED: &str = "destination not allowed";

/// Redirects a registry request follows at most.
const MAX_REDIRECTS: usize = 10;

/// A destination the operator allows although it is not public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// An address or a range (`127.0.0.1`, `10.20.0.0/16`, `fd00::/8`).
    Net(IpNet),
    /// A host name (`registry.internal`): every address it resolves to.
    Host(String),
}

impl FromStr for Allowed {
    type Err = String;

    /// `CIDR`, an address, or a host name.
    fn from_str(text: &str) -> Result<Allowed, String> {
        let text = text.trim();
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(Allowed::Net(net.trunc()));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Allowed::Net(IpNet::from(ip)));
        }
        let host = text.trim_end_matches('.').to_ascii_lowercase();
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid {
            return Err(format!(
                "destination {text:?}: expected an address, a CIDR range or a host name"
            ));
        }
        Ok(Allowed::Host(host))
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allowed::Net(n) => write!(f, "{n}"),
            Allowed::Host(h) => f.write_str(h),
        }
    }
}

/// A connection the policy refused: the error a resolver, a redirect or a check returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The host or address asked for (for the operator's log; a tenant sees [`NOT_ALLOWED`]).
    pub destination: String,
    pub why: &'static str,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {NOT_ALLOWED} ({})", self.destination, self.why)
    }
}

impl std::error::Error for Refused {}

/// Where outbound connections may go.
#[derive(Debug, Clone)]
pub struct Policy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Everything allowed (the command line).
    open: bool,
    allowed: Vec<Allowed>,
}

impl Default for Policy {
    /// The server's policy without exceptions: public addresses only.
    fn default() -> Policy {
        Policy::restricted(Vec::new())
    }
}

impl Policy {
    /// Every destination allowed: for the command line's clients, whose user chooses.
    pub fn open() -> Policy {
        Policy {
            inner: Arc::new(Inner {
                open: true,
                allowed: Vec::new(),
            }),
        }
    }

    /// Public addresses, and those `allowed`.
    pub fn restricted(allowed: Vec<Allowed>) -> Policy {
        Policy {
            inner: Arc::new(Inner {
                open: false,
                allowed,
            }),
        }
    }

    /// Whether every destination is allowed.
    pub fn is_open(&self) -> bool {
        self.inner.open
    }

    /// The exceptions the operator made.
    pub fn allowed(&self) -> &[Allowed] {
        &self.inner.allowed
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.inner
            .allowed
            .iter()
            .any(|a| matches!(a, Allowed::Host(h) if h.eq_ignore_ascii_case(host)))
    }

    /// Whether a connection to `ip` is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.inner.open {
            return true;
        }
        let ip = canonical(ip);
        self.inner
            .allowed
            .iter()
            .any(|a| matches!(a, Allowed::Net(n) if n.contains(&ip)))
            || !not_public(ip)
    }

    /// Checks a URL before a request: an `http`/`https` scheme and, when its host is a
    /// literal address, that address (a name is checked when it is resolved).
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused {
                destination: url.scheme().to_string(),
                why: "not an http or https URL",
            });
        }
        if self.inner.open {
            return Ok(());
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => {
                return Err(Refused {
                    destination: url.to_string(),
                    why: "no host",
                });
            }
        };
        if self.allows(ip) {
            Ok(())
        } else {
            Err(Refused {
                destination: ip.to_string(),
                why: "not a public address",
            })
        }
    }

    /// A resolver handing the connector only the addresses this policy allows.
    pub fn resolver(&self) -> Arc<PolicyResolver> {
        Arc::new(PolicyResolver {
            policy: self.clone(),
        })
    }

    /// The redirects a client follows: none (`follow` false), or up to ten, each checked
    /// like the first request and never from HTTPS to HTTP.
    pub fn redirects(&self, follow: bool) -> reqwest::redirect::Policy {
        if !follow {
            return reqwest::redirect::Policy::none();
        }
        let policy = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                let destination = attempt.url().to_string();
                return attempt.error(Refused {
                    destination,
                    why: "too many redirects",
                });
            }
            let downgrade = attempt.previous().iter().any(|u| u.scheme() == "https")
                && attempt.url().scheme() == "http";
            if downgrade && !policy.inner.open {
                let destination = attempt.url().host_str().unwrap_or_default().to_string();
                return attempt.error(Refused {
                    destination,
                    why: "a redirect from HTTPS to plain HTTP",
                });
            }
            match policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        })
    }

    /// A client builder bound to this policy: its resolver, its redirects (`follow`), and no
    /// proxy from the environment unless the policy is open (a proxy would resolve and connect
    /// in our place, unchecked).
    pub fn client(&self, follow_redirects: bool) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder().redirect(self.redirects(follow_redirects));
        if self.inner.open {
            builder
        } else {
            builder.dns_resolver(self.resolver()).no_proxy()
        }
    }
}

/// Whether the policy refused a request: `error` (or what caused it) is a [`Refused`].
pub fn refused<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(error);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<Refused>() {
            return Some(r);
        }
        cause = c.source();
    }
    None
}

/// What a tenant is told of a failed request: the policy's refusal, a timeout, a failed
/// connection or the HTTP status — never a socket error or what the remote end wrote.
pub fn public_reason(error: &reqwest::Error) -> String {
    if refused(error).is_some() {
        NOT_ALLOWED.to_string()
    } else if let Some(status) = error.status() {
        format!("HTTP {}", status.as_u16())
    } else if error.is_timeout() {
        "timed out".to_string()
    } else {
        "connection failed".to_string()
    }
}

/// Resolves names and keeps only the addresses the policy allows; a name with none left is
/// refused.
#[derive(Debug)]
pub struct PolicyResolver {
    policy: Policy,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let by_name = policy.host_allowed(&host);
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| by_name || policy.allows(a.ip()))
                .collect();
            if kept.is_empty() {
                let why = if found.is_empty() {
                    "no address"
                } else {
                    "resolves to no public address"
                };
                return Err(Box::new(Refused {
                    destination: host,
                    why,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// An IPv4 address carried in IPv6 (mapped, or the NAT64 well-known prefix) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// Ranges that are not public destinations.
const NOT_PUBLIC_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", unspecified
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (CGNAT; Alibaba metadata)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local (cloud metadata services)
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, broadcast
];

const NOT_PUBLIC_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::UNSPECIFIED, 128),
    (Ipv6Addr::LOCALHOST, 128),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4 (embeds any IPv4)
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local (fd00:ec2::254 metadata)
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
];

/// Whether an address is outside the public Internet.
fn not_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => NOT_PUBLIC_V4
            .iter()
            .any(|(net, len)| ipnet::Ipv4Net::new(*net, *len).is_ok_and(|n| n.contains(&v4))),
        IpAddr::V6(v6) => NOT_PUBLIC_V6
            .iter()
            .any(|(net, len)| ipnet::Ipv6Net::new(*net, *len).is_ok_and(|n| n.contains(&v6))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_by_default() {
        let p = Policy::default();
        for refused in [
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(!p.allows(ip(refused)), "{refused} allowed");
        }
        for allowed in ["1.1.1.1", "8.8.8.8", "140.82.112.3", "2606:4700::1111"] {
            assert!(p.allows(ip(allowed)), "{allowed} refused");
        }
        assert!(Policy::open().allows(ip("127.0.0.1")));
    }

    #[test]
    fn operators_allow_addresses_ranges_and_names() {
        let p = Policy::restricted(vec![
            "127.0.0.1".parse().unwrap(),
            "10.20.0.0/16".parse().unwrap(),
            "Registry.Internal.".parse().unwrap(),
        ]);
        assert!(p.allows(ip("127.0.0.1")));
        assert!(!p.allows(ip("127.0.0.2")));
        assert!(p.allows(ip("10.20.3.4")));
        assert!(!p.allows(ip("10.21.0.1")));
        assert!(p.allows(ip("::ffff:127.0.0.1")));
        assert!(p.host_allowed("registry.internal"));
        assert!(!p.host_allowed("registry.internal.evil"));
        assert_eq!(
            "10.20.3.4/16".parse::<Allowed>().unwrap().to_string(),
            "10.20.0.0/16"
        );
        for bad in ["", "a..b", "-x.example", "http://x", "x y"] {
            assert!(bad.parse::<Allowed>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_with_literal_addresses_are_checked() {
        let p = Policy::default();
        let check = |u: &str| p.check_url(&Url::parse(u).unwrap());
        assert!(check("https://registry.example/v2/").is_ok());
        assert!(check("https://1.1.1.1/").is_ok());
        let r = check("http://169.254.169.254/latest/meta-data/").unwrap_err();
        assert_eq!(r.destination, "169.254.169.254");
        assert!(r.to_string().contains(NOT_ALLOWED));
        assert!(check("http://[::1]:5000/").is_err());
        assert!(check("http://[::ffff:7f00:1]/").is_err());
        assert!(check("file:///etc/passwd").is_err());
        assert!(check("gopher://1.1.1.1/").is_err());
        assert!(
            Policy::open()
                .check_url(&Url::parse("http://127.0.0.1/").unwrap())
                .is_ok()
        );
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        let p = Policy::default();
        let err = match p
            .resolver()
            .resolve(Name::from_str("localhost").unwrap())
            .await
        {
            Ok(_) => panic!("localhost resolved"),
            Err(e) => e,
        };
        let r = refused(err.as_ref()).expect("a refusal");
        assert_eq!(r.destination, "localhost");
        let allowed =
            Policy::restricted(vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()]);
        let addrs: Vec<SocketAddr> = match allowed
            .resolver()
            .resolve(Name::from_str("localhost").unwrap())
            .await
        {
            Ok(a) => a.collect(),
            Err(e) => panic!("{e}"),
        };
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
