//! Vulnerability data and matching.
//!
//! - [`version`]: each ecosystem's version ordering;
//! - [`ecosystem`]: OSV ecosystem names, name normalization, which ecosystem a package is in;
//! - [`advisory`]: the advisory records the database holds, and range evaluation;
//! - [`db`]: the database file: building and lookups;
//! - [`feeds`]: importers for OSV, the Alpine secdb, the Debian tracker and RubySec;
//! - [`matcher`]: installed packages against the database;
//! - [`report`]: matches grouped by alias into findings;
//! - [`sarif`]: findings as a SARIF 2.1.0 log for code-scanning dashboards;
//! - [`policy`]: severity and fix filters, ignore files and OpenVEX suppressions.
//!
//! The crate does no network I/O: the binary downloads feeds and hands this crate files.

#![forbid(unsafe_code)]

pub mod advisory;
pub mod db;
pub mod ecosystem;
pub mod feeds;
pub mod matcher;
#[cfg(feature = "mirror")]
pub mod mirror;
pub mod policy;
pub mod report;
pub mod sarif;
pub mod version;
