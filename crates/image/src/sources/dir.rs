//! `dir:` sources: a root file system on disk, walked as a single layer. Links are never
//! followed (a symlink is reported as one, resolution happens in the merged view), special
//! files are skipped, and files sharing an inode are reported once with hard links to the first.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::ImageError;
use crate::layer::{
    Entry, EntryKind, LayerReport, Metadata, Notice, NoticeKind, WalkBudget, accept_path,
};
use crate::limits::Limits;

pub(crate) fn walk<E: From<ImageError>>(
    root: &Path,
    limits: &Limits,
    budget: &WalkBudget,
    mut visit: impl FnMut(&mut Entry<'_>) -> Result<(), E>,
) -> Result<LayerReport, E> {
    let mut report = LayerReport::default();
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name();
    for item in walker {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                let path = e
                    .path()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .map(|p| p.to_string_lossy().into_owned());
                report.notices.push(Notice {
                    layer: Some(0),
                    path,
                    kind: NoticeKind::Unreadable {
                        reason: e.to_string(),
                    },
                });
                continue;
            }
        };
        let rel = item
            .path()
            .strip_prefix(root)
            .unwrap_or(item.path())
            .to_string_lossy()
            .into_owned();
        let Some(path) = accept_path(&rel, limits, 0, &mut report) else {
            continue;
        };
        let md = match item.metadata() {
            Ok(m) => m,
            Err(e) => {
                report.notices.push(unreadable(&path, &e.to_string()));
                continue;
            }
        };
        let meta = Metadata {
            size: if md.is_file() { md.len() } else { 0 },
            mode: md.mode() & 0o7777,
            uid: md.uid().into(),
            gid: md.gid().into(),
            mtime: md.mtime().max(0) as u64,
        };
        let ft = item.file_type();
        let link_target;
        let hard_target;
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            link_target = match std::fs::read_link(item.path()) {
                Ok(t) => t.to_string_lossy().into_owned(),
                Err(e) => {
                    report.notices.push(unreadable(&path, &e.to_string()));
                    continue;
                }
            };
            EntryKind::Symlink {
                target: &link_target,
            }
        } else if ft.is_file() {
            match (md.nlink() > 1)
                .then(|| inodes.get(&(md.dev(), md.ino())))
                .flatten()
            {
                Some(first) => {
                    hard_target = first.clone();
                    EntryKind::HardLink {
                        target: &hard_target,
                    }
                }
                None => {
                    if md.nlink() > 1 {
                        inodes.insert((md.dev(), md.ino()), path.clone());
                    }
                    EntryKind::File
                }
            }
        } else {
            report.skipped_special += 1;
            continue;
        };
        if !budget.take(limits, &mut report, 0) {
            continue;
        }
        let truncated = kind == EntryKind::File && meta.size > limits.max_file_read;
        if truncated {
            report.notices.push(Notice {
                layer: Some(0),
                path: Some(path.clone()),
                kind: NoticeKind::FileTruncated {
                    size: meta.size,
                    limit: limits.max_file_read,
                },
            });
        }
        let mut content: Box<dyn Read> = if kind == EntryKind::File {
            match File::open(item.path()) {
                Ok(f) => Box::new(BufReader::new(f).take(limits.max_file_read)),
                Err(e) => {
                    report.notices.push(unreadable(&path, &e.to_string()));
                    continue;
                }
            }
        } else {
            Box::new(io::empty())
        };
        report.entries += 1;
        if kind == EntryKind::File {
            report.files += 1;
        }
        visit(&mut Entry {
            path: &path,
            kind,
            meta,
            reader: &mut content,
            truncated,
        })?;
    }
    Ok(report)
}

fn unreadable(path: &str, reason: &str) -> Notice {
    Notice {
        layer: Some(0),
        path: Some(path.to_string()),
        kind: NoticeKind::Unreadable {
            reason: reason.to_string(),
        },
    }
}
