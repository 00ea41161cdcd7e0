//! Layers: what the manifest says about them ([`LayerInfo`]), and walking one layer's entries
//! in a single streaming pass ([`walk_tar`]) with whiteouts recognised, paths cleaned, special
//! files skipped and the limits of [`Limits`] applied.

mod decompress;

use std::fmt;
use std::io::{self, Read};

pub use decompress::{Compression, LayerStream, StreamDigests};

use crate::digest::Digest;
use crate::error::ImageError;
use crate::limits::Limits;
use crate::path::{PathProblem, clean_path, file_name, join, parent};

/// One layer as the image describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LayerInfo {
    /// Position in the image, 0 = base layer.
    pub index: usize,
    /// Digest of the blob as stored (compressed); `None` where the source does not address
    /// layers by digest (legacy docker-archive members, `dir:`).
    pub digest: Option<Digest>,
    /// Digest of the uncompressed tar (from the image config); `None` for `dir:`.
    pub diff_id: Option<Digest>,
    /// Stored size in bytes, when known.
    pub size: Option<u64>,
    pub media_type: Option<String>,
    /// The history entry that made this layer (`RUN …`, `COPY …`).
    pub created_by: Option<String>,
    pub created: Option<String>,
}

/// What an entry of a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind<'a> {
    File,
    Dir,
    /// A symbolic link; the target exactly as stored (relative targets are relative to the
    /// link's directory; resolve through [`crate::FileTree`] to stay inside the image).
    Symlink {
        target: &'a str,
    },
    /// A hard link to an earlier entry of the same layer (clean path). Its content was handed
    /// out under the target's path: content is read once per inode.
    HardLink {
        target: &'a str,
    },
    /// `.wh.NAME`: the path (clean) is deleted from lower layers.
    Whiteout,
    /// `.wh..wh..opq`: the directory (clean path) hides everything lower layers put in it.
    OpaqueDir,
}

/// File metadata from a tar header or `lstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Metadata {
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

/// One entry handed to a walk's visitor. For regular files it reads the content (at most
/// `Limits::max_file_read` bytes; see [`Entry::truncated`]).
pub struct Entry<'a> {
    pub path: &'a str,
    pub kind: EntryKind<'a>,
    pub meta: Metadata,
    pub(crate) reader: &'a mut dyn Read,
    pub(crate) truncated: bool,
}

impl Entry<'_> {
    /// True when the file is larger than the read limit and only its first
    /// `Limits::max_file_read` bytes can be read.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Reads the content into memory, up to `limit` bytes (and the walk's file limit).
    /// Returns `None` when the file is larger than that.
    pub fn read_limited(&mut self, limit: u64) -> io::Result<Option<Vec<u8>>> {
        if self.meta.size > limit || self.truncated {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(self.meta.size as usize);
        self.reader.take(limit + 1).read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Ok(None);
        }
        Ok(Some(buf))
    }
}

impl Read for Entry<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

/// Something about the image that was not read as asked because of a limit or an oddity;
/// reported to the user, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notice {
    /// Layer index, when the notice is about one layer.
    pub layer: Option<usize>,
    pub path: Option<String>,
    #[serde(flatten)]
    pub kind: NoticeKind,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum NoticeKind {
    /// A file larger than the read limit; only its beginning is analysed.
    FileTruncated { size: u64, limit: u64 },
    /// The walk reached `max_files`; later entries are not analysed.
    TooManyFiles { limit: u64 },
    /// A path longer than `max_path_len`; the entry is skipped.
    PathTooLong { length: usize, limit: usize },
    /// A path (or whiteout, or hard-link target) that climbs above the root; skipped.
    PathEscapesRoot,
    /// A symbolic-link chain longer than `max_link_depth`.
    LinkDepthExceeded { limit: u32 },
    /// A file or directory that could not be read (permissions, I/O error); skipped.
    Unreadable { reason: String },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.layer {
            write!(f, "layer {}: ", l + 1)?;
        }
        if let Some(p) = &self.path {
            write!(f, "/{p}: ")?;
        }
        match &self.kind {
            NoticeKind::FileTruncated { size, limit } => {
                write!(
                    f,
                    "file of {size} bytes read only up to the {limit}-byte limit"
                )
            }
            NoticeKind::TooManyFiles { limit } => {
                write!(f, "more than {limit} entries; the rest were not read")
            }
            NoticeKind::PathTooLong { length, limit } => {
                write!(
                    f,
                    "path of {length} bytes is over the {limit}-byte limit; skipped"
                )
            }
            NoticeKind::PathEscapesRoot => write!(f, "path escapes the image root; skipped"),
            NoticeKind::LinkDepthExceeded { limit } => {
                write!(f, "more than {limit} symbolic links to resolve")
            }
            NoticeKind::Unreadable { reason } => write!(f, "unreadable ({reason}); skipped"),
        }
    }
}

/// What a walk over one layer saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LayerReport {
    /// Entries handed to the visitor.
    pub entries: u64,
    /// Regular files among them.
    pub files: u64,
    /// Device nodes, FIFOs and unknown entry types, skipped.
    pub skipped_special: u64,
    pub notices: Vec<Notice>,
    /// Measured while streaming (tar layers only).
    #[serde(skip)]
    pub digests: Option<StreamDigests>,
}

/// Counts entries across the layers of one walk, for `Limits::max_files`. Shared by layers
/// walked in parallel.
#[derive(Debug, Default)]
pub struct WalkBudget {
    entries: std::sync::atomic::AtomicU64,
    exhausted: std::sync::atomic::AtomicBool,
}

impl WalkBudget {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one entry from the budget; false once the limit is reached (reported once).
    pub(crate) fn take(&self, limits: &Limits, report: &mut LayerReport, layer: usize) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if self.entries.fetch_add(1, Relaxed) < limits.max_files {
            return true;
        }
        if !self.exhausted.swap(true, Relaxed) {
            report.notices.push(Notice {
                layer: Some(layer),
                path: None,
                kind: NoticeKind::TooManyFiles {
                    limit: limits.max_files,
                },
            });
        }
        false
    }
}

/// Checks a raw path against the limits and cleans it. `None` (with a notice, unless the entry
/// is the root itself) means "skip this entry".
pub(crate) fn accept_path(
    raw: &str,
    limits: &Limits,
    layer: usize,
    report: &mut LayerReport,
) -> Option<String> {
    if raw.len() > limits.max_path_len {
        report.notices.push(Notice {
            layer: Some(layer),
            path: Some(raw.chars().take(200).collect()),
            kind: NoticeKind::PathTooLong {
                length: raw.len(),
                limit: limits.max_path_len,
            },
        });
        return None;
    }
    match clean_path(raw) {
        Ok(p) => Some(p),
        Err(PathProblem::Root) => None,
        Err(PathProblem::EscapesRoot) => {
            report.notices.push(Notice {
                layer: Some(layer),
                path: Some(raw.to_string()),
                kind: NoticeKind::PathEscapesRoot,
            });
            None
        }
    }
}

/// What a whiteout marker means, for a clean path whose file name starts with `.wh.`.
pub(crate) enum Whiteout {
    /// Not a whiteout name.
    No,
    /// Delete this clean path.
    Path(String),
    /// Opaque marker for this directory (clean, may be `""` for the root).
    Opaque(String),
    /// Other AUFS metadata (`.wh..wh.plnk`, …) or a marker naming `.`/`..`: ignore.
    Ignore,
}

pub(crate) fn whiteout_of(path: &str) -> Whiteout {
    let name = file_name(path);
    let Some(target) = name.strip_prefix(".wh.") else {
        return Whiteout::No;
    };
    let dir = parent(path);
    if name == ".wh..wh..opq" {
        return Whiteout::Opaque(dir.to_string());
    }
    if target.starts_with(".wh.") || target.is_empty() || target == "." || target == ".." {
        return Whiteout::Ignore;
    }
    Whiteout::Path(join(dir, target))
}

/// Walks the entries of one uncompressed tar layer stream, in one pass, calling `visit` for
/// every accepted entry. Content nobody reads is skipped with forward seeks (a
/// [`LayerStream`] drops those bytes without copying them); `stream` is consumed to its end so
/// that digest checks in it run.
pub fn walk_tar<R: Read + io::Seek, E: From<ImageError>>(
    stream: R,
    layer: usize,
    input: &str,
    limits: &Limits,
    budget: &WalkBudget,
    mut visit: impl FnMut(&mut Entry<'_>) -> Result<(), E>,
) -> Result<(LayerReport, R), E> {
    let mut report = LayerReport::default();
    let mut archive = tar::Archive::new(stream);
    let entries = archive
        .entries_with_seek()
        .map_err(|e| ImageError::from_tar(input, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ImageError::from_tar(input, e))?;
        let header = entry.header();
        let kind_byte = header.entry_type();
        let meta = Metadata {
            size: entry.size(),
            mode: header.mode().unwrap_or(0),
            uid: header.uid().unwrap_or(0),
            gid: header.gid().unwrap_or(0),
            mtime: header.mtime().unwrap_or(0),
        };
        use tar::EntryType as T;
        let is_special = match kind_byte {
            T::Regular | T::Continuous | T::GNUSparse | T::Directory | T::Symlink | T::Link => {
                false
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => continue,
            _ => true,
        };
        if is_special {
            report.skipped_special += 1;
            continue;
        }
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = accept_path(&raw_path, limits, layer, &mut report) else {
            continue;
        };
        let link_raw = entry
            .link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let marker = match whiteout_of(&path) {
            Whiteout::Ignore => continue,
            Whiteout::Path(p) => Some((p, EntryKind::Whiteout)),
            Whiteout::Opaque(d) => Some((d, EntryKind::OpaqueDir)),
            Whiteout::No => None,
        };
        if let Some((target, kind)) = marker {
            deliver_marker(
                &target,
                kind,
                layer,
                limits,
                budget,
                &mut report,
                &mut visit,
            )?;
            continue;
        }
        let hard_target;
        let kind = match kind_byte {
            T::Directory => EntryKind::Dir,
            T::Symlink => EntryKind::Symlink {
                target: link_raw.as_deref().unwrap_or(""),
            },
            T::Link => {
                let raw = link_raw.as_deref().unwrap_or("");
                match clean_path(raw) {
                    Ok(t) => {
                        hard_target = t;
                        EntryKind::HardLink {
                            target: &hard_target,
                        }
                    }
                    Err(_) => {
                        report.notices.push(Notice {
                            layer: Some(layer),
                            path: Some(path.clone()),
                            kind: NoticeKind::PathEscapesRoot,
                        });
                        continue;
                    }
                }
            }
            _ => EntryKind::File,
        };
        if !budget.take(limits, &mut report, layer) {
            continue;
        }
        let truncated = kind == EntryKind::File && meta.size > limits.max_file_read;
        if truncated {
            report.notices.push(Notice {
                layer: Some(layer),
                path: Some(path.clone()),
                kind: NoticeKind::FileTruncated {
                    size: meta.size,
                    limit: limits.max_file_read,
                },
            });
        }
        let mut content = (&mut entry).take(if kind == EntryKind::File {
            limits.max_file_read
        } else {
            0
        });
        report.entries += 1;
        if kind == EntryKind::File {
            report.files += 1;
        }
        let mut e = Entry {
            path: &path,
            kind,
            meta,
            reader: &mut content,
            truncated,
        };
        visit(&mut e)?;
        // A visitor that read only part of the content leaves the rest to the tar reader,
        // which skips it when asked for the next entry; read errors surface there.
    }
    let mut stream = archive.into_inner();
    io::copy(&mut stream, &mut io::sink()).map_err(|e| ImageError::from_tar(input, e))?;
    Ok((report, stream))
}

fn deliver_marker<E: From<ImageError>>(
    path: &str,
    kind: EntryKind<'_>,
    layer: usize,
    limits: &Limits,
    budget: &WalkBudget,
    report: &mut LayerReport,
    visit: &mut impl FnMut(&mut Entry<'_>) -> Result<(), E>,
) -> Result<(), E> {
    if !budget.take(limits, report, layer) {
        return Ok(());
    }
    report.entries += 1;
    let mut empty = io::empty();
    visit(&mut Entry {
        path,
        kind,
        meta: Metadata::default(),
        reader: &mut empty,
        truncated: false,
    })
}
