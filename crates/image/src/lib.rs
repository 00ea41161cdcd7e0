//! Container images from every source Osprey reads — a registry (OCI distribution API v2),
//! `docker save` archives, OCI image layouts (directory or tar) and plain root file systems —
//! exposed two ways: as a stream of layers, each walked once with its entries (whiteouts
//! recognised, paths cleaned, digests verified as the bytes pass), and as a merged file-system
//! view ([`FileTree`]) that attributes every file to the layer that last wrote it.
//!
//! The crate is synchronous: engines call it from plain threads. The registry client is async
//! inside and runs on its own runtime. Nothing here prints; every error names its input.
//!
//! Untrusted input is bounded by [`Limits`]: manifests and configs by size, archives by member
//! count, walks by file count, path length, bytes read per file and symbolic-link depth.

#![forbid(unsafe_code)]

pub mod cache;
mod digest;
mod error;
mod image;
mod layer;
mod limits;
pub mod path;
mod platform;
mod source;
pub mod sources;
pub mod spec;
mod tree;

pub use cache::{LayerCache, LayerKey};
pub use digest::Digest;
pub use error::{ImageError, Result};
pub use image::{Image, OpenOptions};
pub use layer::{
    Compression, Entry, EntryKind, LayerInfo, LayerReport, LayerStream, Metadata, Notice,
    NoticeKind, StreamDigests, WalkBudget, walk_tar,
};
pub use limits::Limits;
pub use oci_spec::image::ImageConfiguration;
pub use platform::Platform;
pub use source::Source;
pub use sources::registry::{Credentials, Reference, RegistryOptions};
pub use tree::{FileTree, LayerChanges, Node, NodeKind, Resolved};
