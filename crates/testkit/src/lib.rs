//! Helpers for Osprey's integration and end-to-end tests. Nothing here ships.
//!
//! - [`layout`]: OCI layouts, docker archives and crafted tar layers built in memory, so tests
//!   can make exactly the image they need (including malicious ones no tool would write);
//! - [`registry`]: a real `docker-registry` process (Debian's package) per test, open, with
//!   htpasswd, or with token authentication;
//! - [`token`]: a Docker-token-spec authorization server signing ES256 JWTs;
//! - [`http`]: a minimal HTTP server for fakes (retries, odd answers);
//! - [`schemas`]: validators for the published CycloneDX, SPDX and SARIF schemas;
//! - [`tools`]: umoci and skopeo wrappers, paths to the repository's test data, the vulnerability
//!   oracle's expectations.

pub mod http;
pub mod layout;
pub mod registry;
pub mod schemas;
pub mod token;
pub mod tools;

/// EICAR's anti-malware test file: harmless, and detected by every engine.
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
