//! The merged file-system view of an image: layers applied in order with overlay semantics
//! (whiteouts, opaque directories, a file replacing a directory), each node remembering the
//! layer that last wrote it. Symbolic links are resolved as in a chroot: absolute targets start
//! at the image root and `..` never climbs above it.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::digest::Digest;
use crate::layer::{Entry, EntryKind, Metadata, Notice, NoticeKind};
use crate::path::{file_name, join, parent};

/// A node of the merged view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Node {
    #[serde(flatten)]
    pub kind: NodeKind,
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Index of the layer that last wrote this path.
    pub layer: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "target", rename_all = "snake_case")]
pub enum NodeKind {
    File,
    Dir,
    /// Target as stored in the layer.
    Symlink(String),
    /// Clean path of the file this is a hard link to (same content).
    HardLink(String),
}

/// Changes one layer makes, collected while walking it and applied with [`FileTree::apply`]:
/// deletions first (they only hide lower layers), then additions in archive order.
/// Serializable, so a layer's changes can be cached by its diff-id.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct LayerChanges {
    whiteouts: Vec<String>,
    opaque_dirs: Vec<String>,
    additions: Vec<(String, Node)>,
}

impl LayerChanges {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an entry of layer `layer`.
    pub fn record(&mut self, entry: &Entry<'_>, layer: usize) {
        let node = |kind| node_of(kind, &entry.meta, layer);
        match entry.kind {
            EntryKind::Whiteout => self.whiteouts.push(entry.path.to_string()),
            EntryKind::OpaqueDir => self.opaque_dirs.push(entry.path.to_string()),
            EntryKind::File => self
                .additions
                .push((entry.path.to_string(), node(NodeKind::File))),
            EntryKind::Dir => self
                .additions
                .push((entry.path.to_string(), node(NodeKind::Dir))),
            EntryKind::Symlink { target } => self.additions.push((
                entry.path.to_string(),
                node(NodeKind::Symlink(target.to_string())),
            )),
            EntryKind::HardLink { target } => self.additions.push((
                entry.path.to_string(),
                node(NodeKind::HardLink(target.to_string())),
            )),
        }
    }
}

fn node_of(kind: NodeKind, meta: &Metadata, layer: usize) -> Node {
    Node {
        kind,
        size: meta.size,
        mode: meta.mode,
        uid: meta.uid,
        gid: meta.gid,
        layer,
    }
}

/// A path after symbolic-link resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<'t> {
    /// The clean path the links lead to (`""` is the root).
    pub path: String,
    /// The node there, if anything exists there.
    pub node: Option<&'t Node>,
}

/// The merged view. Invariant: every ancestor of a stored path is either absent (an implicit
/// directory) or a `Dir` node — never a file or a link.
#[derive(Debug, Clone, Default)]
pub struct FileTree {
    nodes: BTreeMap<String, Node>,
    diff_ids: Vec<Option<Digest>>,
    max_link_depth: u32,
}

impl FileTree {
    pub fn new(max_link_depth: u32) -> Self {
        FileTree {
            nodes: BTreeMap::new(),
            diff_ids: Vec::new(),
            max_link_depth,
        }
    }

    /// Applies one layer's changes on top of what is there. `diff_id` is remembered for
    /// attribution. Returns notices for paths that could not be placed.
    pub fn apply(
        &mut self,
        layer: usize,
        diff_id: Option<Digest>,
        changes: LayerChanges,
    ) -> Vec<Notice> {
        if self.diff_ids.len() <= layer {
            self.diff_ids.resize(layer + 1, None);
        }
        self.diff_ids[layer] = diff_id;
        let mut notices = Vec::new();
        let mut placed = |this: &mut Self, path: &str| -> Option<String> {
            match this.place(path) {
                Ok(p) => Some(p),
                Err(limit) => {
                    notices.push(Notice {
                        layer: Some(layer),
                        path: Some(path.to_string()),
                        kind: NoticeKind::LinkDepthExceeded { limit },
                    });
                    None
                }
            }
        };
        for w in &changes.whiteouts {
            if let Some(p) = placed(self, w) {
                self.nodes.remove(&p);
                self.remove_descendants(&p);
            }
        }
        for d in &changes.opaque_dirs {
            if d.is_empty() {
                self.nodes.clear();
            } else if let Some(p) = placed(self, d) {
                self.remove_descendants(&p);
            }
        }
        for (path, node) in changes.additions {
            let Some(p) = placed(self, &path) else {
                continue;
            };
            let replaces_dir_contents = node.kind != NodeKind::Dir;
            if replaces_dir_contents {
                self.remove_descendants(&p);
            }
            self.clear_non_dir_ancestors(&p);
            self.nodes.insert(p, node);
        }
        notices
    }

    /// Where an entry written at `path` lands: its parent resolved through symbolic links
    /// (as containerd's applier does), then its own name. Fast path: the parent is a stored
    /// directory, so by the invariant nothing above it is a link.
    fn place(&self, path: &str) -> Result<String, u32> {
        let dir = parent(path);
        if dir.is_empty() || matches!(self.nodes.get(dir), Some(n) if n.kind == NodeKind::Dir) {
            return Ok(path.to_string());
        }
        let resolved = self.resolve(dir)?;
        Ok(join(&resolved.path, file_name(path)))
    }

    fn remove_descendants(&mut self, dir: &str) {
        let lo = format!("{dir}/");
        // '0' is the byte after '/', so this range is exactly the paths under `dir/`.
        let hi = format!("{dir}0");
        let doomed: Vec<String> = self
            .nodes
            .range::<str, _>((Bound::Included(lo.as_str()), Bound::Excluded(hi.as_str())))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.nodes.remove(&k);
        }
    }

    fn clear_non_dir_ancestors(&mut self, path: &str) {
        let mut dir = parent(path);
        while !dir.is_empty() {
            match self.nodes.get(dir) {
                Some(n) if n.kind == NodeKind::Dir => return,
                Some(_) => {
                    self.nodes.remove(dir);
                }
                None => {}
            }
            dir = parent(dir);
        }
    }

    /// The node stored at a clean path, without following links.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Resolves every symbolic link on the way to `path` (the last component too), inside the
    /// image root. Fails with the link-depth limit when the chain is too long or loops.
    pub fn resolve(&self, path: &str) -> Result<Resolved<'_>, u32> {
        let mut pending: Vec<String> = components(path).rev().map(str::to_string).collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0u32;
        while let Some(c) = pending.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            done.push(c);
            let here = done.join("/");
            if let Some(Node {
                kind: NodeKind::Symlink(target),
                ..
            }) = self.nodes.get(&here)
            {
                links += 1;
                if links > self.max_link_depth {
                    return Err(self.max_link_depth);
                }
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                pending.extend(components(target).rev().map(str::to_string));
            }
        }
        let path = done.join("/");
        let node = self.nodes.get(&path);
        Ok(Resolved { path, node })
    }

    /// All stored paths in order, with their nodes.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The diff-id of the layer that last wrote `node`.
    pub fn diff_id_of(&self, node: &Node) -> Option<&Digest> {
        self.diff_ids.get(node.layer).and_then(Option::as_ref)
    }
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn change(changes: &mut LayerChanges, layer: usize, path: &str, kind: EntryKind<'_>) {
        let mut empty = io::empty();
        let entry = Entry {
            path,
            kind,
            meta: Metadata {
                size: 1,
                ..Metadata::default()
            },
            reader: &mut empty,
            truncated: false,
        };
        changes.record(&entry, layer);
    }

    fn tree(layers: &[&[(&str, EntryKind<'_>)]]) -> FileTree {
        let mut t = FileTree::new(40);
        for (i, entries) in layers.iter().enumerate() {
            let mut c = LayerChanges::new();
            for (p, k) in entries.iter() {
                change(&mut c, i, p, *k);
            }
            assert!(t.apply(i, None, c).is_empty());
        }
        t
    }

    fn paths(t: &FileTree) -> Vec<String> {
        t.iter().map(|(p, n)| format!("{p}@{}", n.layer)).collect()
    }

    #[test]
    fn whiteout_removes_path_and_children() {
        let t = tree(&[
            &[
                ("etc", EntryKind::Dir),
                ("etc/a", EntryKind::File),
                ("etc/sub", EntryKind::Dir),
                ("etc/sub/b", EntryKind::File),
                ("etc/sub0", EntryKind::File),
            ],
            &[
                ("etc/sub", EntryKind::Whiteout),
                ("etc/a", EntryKind::Whiteout),
            ],
        ]);
        assert_eq!(paths(&t), ["etc@0", "etc/sub0@0"]);
    }

    #[test]
    fn opaque_dir_hides_lower_but_keeps_same_layer_entries() {
        // The marker often comes after the directory's new children in the archive.
        let t = tree(&[
            &[
                ("d", EntryKind::Dir),
                ("d/old", EntryKind::File),
                ("e", EntryKind::File),
            ],
            &[
                ("d", EntryKind::Dir),
                ("d/new", EntryKind::File),
                ("d", EntryKind::OpaqueDir),
            ],
        ]);
        assert_eq!(paths(&t), ["d@1", "d/new@1", "e@0"]);
    }

    #[test]
    fn file_replaces_directory_and_directory_replaces_file() {
        let t = tree(&[
            &[
                ("a", EntryKind::Dir),
                ("a/x", EntryKind::File),
                ("b", EntryKind::File),
            ],
            &[("a", EntryKind::File), ("b/y", EntryKind::File)],
        ]);
        assert_eq!(paths(&t), ["a@1", "b/y@1"]);
    }

    #[test]
    fn later_layer_attribution() {
        let t = tree(&[
            &[
                ("etc/os-release", EntryKind::File),
                ("bin/sh", EntryKind::File),
            ],
            &[("etc/os-release", EntryKind::File)],
        ]);
        assert_eq!(t.get("etc/os-release").unwrap().layer, 1);
        assert_eq!(t.get("bin/sh").unwrap().layer, 0);
    }

    #[test]
    fn symlinks_resolve_inside_root() {
        let t = tree(&[&[
            ("usr/lib/os-release", EntryKind::File),
            (
                "etc/os-release",
                EntryKind::Symlink {
                    target: "../usr/lib/os-release",
                },
            ),
            ("lib", EntryKind::Symlink { target: "usr/lib" }),
            (
                "escape",
                EntryKind::Symlink {
                    target: "../../../../usr/lib",
                },
            ),
            (
                "abs",
                EntryKind::Symlink {
                    target: "/../../usr/lib/os-release",
                },
            ),
            ("loop1", EntryKind::Symlink { target: "loop2" }),
            ("loop2", EntryKind::Symlink { target: "/loop1" }),
        ]]);
        let r = t.resolve("etc/os-release").unwrap();
        assert_eq!(r.path, "usr/lib/os-release");
        assert_eq!(r.node.unwrap().kind, NodeKind::File);
        assert_eq!(
            t.resolve("lib/os-release").unwrap().path,
            "usr/lib/os-release"
        );
        assert_eq!(
            t.resolve("escape/os-release").unwrap().path,
            "usr/lib/os-release"
        );
        assert_eq!(t.resolve("abs").unwrap().path, "usr/lib/os-release");
        assert_eq!(t.resolve("../../etc/passwd").unwrap().path, "etc/passwd");
        assert!(t.resolve("etc/passwd").unwrap().node.is_none());
        assert_eq!(t.resolve("loop1"), Err(40));
    }

    #[test]
    fn entries_under_a_symlinked_directory_land_at_its_target() {
        let t = tree(&[
            &[
                ("usr/lib", EntryKind::Dir),
                ("lib", EntryKind::Symlink { target: "usr/lib" }),
            ],
            &[
                ("lib/libc.so", EntryKind::File),
                ("lib/gone", EntryKind::Whiteout),
            ],
        ]);
        assert_eq!(paths(&t), ["lib@0", "usr/lib@0", "usr/lib/libc.so@1"]);
    }

    #[test]
    fn implicit_parent_replaces_lower_file() {
        let t = tree(&[&[("a", EntryKind::File)], &[("a/b", EntryKind::File)]]);
        assert_eq!(paths(&t), ["a/b@1"]);
    }

    #[test]
    fn root_opaque_clears_everything() {
        let t = tree(&[
            &[("a", EntryKind::File)],
            &[("", EntryKind::OpaqueDir), ("b", EntryKind::File)],
        ]);
        assert_eq!(paths(&t), ["b@1"]);
    }
}
