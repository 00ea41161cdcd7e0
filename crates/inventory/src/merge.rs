//! From per-layer facts to one inventory: the merged file tree decides which facts are still
//! visible, lower layers decide which layer introduced each package.

use std::collections::{BTreeMap, HashMap, HashSet};

use osprey_image::{FileTree, Image};
use osprey_model::{Package, PackageType};

use crate::analysis::{Fact, LayerAnalysis};
use crate::catalogers::npm::INSTALL_PATH;
use crate::{Inventory, InventoryNotice, os};

pub(crate) fn merge(image: &Image, mut analyses: Vec<LayerAnalysis>) -> Inventory {
    let mut tree = FileTree::new(image.limits().max_link_depth);
    let mut notices = Vec::new();
    for (index, a) in analyses.iter_mut().enumerate() {
        notices.extend(a.notices.drain(..).map(InventoryNotice::Image));
        let diff_id = image.layers.get(index).and_then(|l| l.diff_id.clone());
        notices.extend(
            tree.apply(index, diff_id, std::mem::take(&mut a.changes))
                .into_iter()
                .map(InventoryNotice::Image),
        );
    }
    let layer_diff_id = |layer: usize| {
        image
            .layers
            .get(layer)
            .and_then(|l| l.diff_id.as_ref())
            .map(ToString::to_string)
    };
    let track_layers = image.kind != "dir";

    let facts = Facts::new(&tree, &analyses);
    let os = os::detect(
        |path| match facts.visible(path, |f| matches!(f, Fact::Release { .. })) {
            Some((p, Fact::Release { content })) => Some((p, content.clone())),
            _ => None,
        },
    );

    let mut packages: Vec<Package> = Vec::new();
    let mut paths: Vec<&&str> = facts.by_path.keys().collect();
    paths.sort();
    for path in paths {
        let at_path = &facts.by_path[*path];
        for (layer, fact) in at_path
            .iter()
            .filter(|(l, _)| tree.get(path).is_some_and(|n| n.layer == *l))
        {
            match fact {
                Fact::Packages {
                    cataloger,
                    packages: found,
                } => {
                    for p in found {
                        let mut p = p.clone();
                        if track_layers {
                            let introduced = introducing_layer(at_path, *layer, cataloger, &p);
                            for loc in &mut p.locations {
                                loc.layer = Some(introduced);
                                loc.layer_diff_id = layer_diff_id(introduced);
                            }
                        }
                        packages.push(p);
                    }
                }
                Fact::Unparsed { cataloger, reason } => notices.push(InventoryNotice::Unparsed {
                    path: format!("/{path}"),
                    cataloger: cataloger.clone(),
                    reason: reason.clone(),
                }),
                Fact::Release { .. } | Fact::Licenses { .. } => {}
            }
        }
    }

    attach_dpkg_licenses(&mut packages, &facts);
    drop_installed_lock_entries(&mut packages);
    let mut packages = merge_duplicates(packages);
    for p in &mut packages {
        p.set_purl(os.as_ref());
    }
    packages.sort_by(|a, b| {
        (a.kind, &a.group, &a.name, &a.version, &a.arch)
            .cmp(&(b.kind, &b.group, &b.name, &b.version, &b.arch))
    });
    Inventory {
        os,
        packages,
        notices,
        stats: Default::default(),
    }
}

/// Every layer's facts by path, and which of them the final image still shows.
struct Facts<'a> {
    tree: &'a FileTree,
    by_path: HashMap<&'a str, Vec<(usize, &'a Fact)>>,
}

impl<'a> Facts<'a> {
    fn new(tree: &'a FileTree, analyses: &'a [LayerAnalysis]) -> Facts<'a> {
        let mut by_path: HashMap<&str, Vec<(usize, &Fact)>> = HashMap::new();
        for (layer, a) in analyses.iter().enumerate() {
            for (path, fact) in &a.facts {
                by_path
                    .entry(path.as_str())
                    .or_default()
                    .push((layer, fact));
            }
        }
        Facts { tree, by_path }
    }

    /// The fact of the final image at `path` (links followed) that `pick` accepts, with the
    /// resolved path.
    fn visible(&self, path: &str, pick: impl Fn(&Fact) -> bool) -> Option<(String, &'a Fact)> {
        let resolved = self.tree.resolve(path).ok()?;
        let node = resolved.node?;
        let fact = self
            .by_path
            .get(resolved.path.as_str())?
            .iter()
            .find(|(l, f)| *l == node.layer && pick(f))?
            .1;
        Some((resolved.path, fact))
    }
}

/// The lowest layer, up to `found`, whose fact at the same path already listed this package.
fn introducing_layer(
    facts: &[(usize, &Fact)],
    found: usize,
    cataloger: &str,
    pkg: &Package,
) -> usize {
    let mut layers: Vec<usize> = facts
        .iter()
        .filter(|(l, _)| *l <= found)
        .filter(|(_, f)| match f {
            Fact::Packages {
                cataloger: c,
                packages,
            } => c == cataloger && packages.iter().any(|p| p.identity() == pkg.identity()),
            _ => false,
        })
        .map(|(l, _)| *l)
        .collect();
    layers.sort_unstable();
    layers.first().copied().unwrap_or(found)
}

/// Licences of Debian packages from `/usr/share/doc/<name>/copyright` (links followed: many
/// packages share their source package's documentation directory).
fn attach_dpkg_licenses(packages: &mut [Package], facts: &Facts<'_>) {
    for p in packages
        .iter_mut()
        .filter(|p| p.kind == PackageType::Deb && p.licenses.is_empty())
    {
        let path = format!("usr/share/doc/{}/copyright", p.name);
        if let Some((_, Fact::Licenses { licenses })) =
            facts.visible(&path, |f| matches!(f, Fact::Licenses { .. }))
        {
            p.licenses = licenses.clone();
        }
    }
}

/// A lock-file entry for a package installed where the lock says (`…/node_modules/x`) is the
/// same package as that installed `package.json`: keep the installed one.
fn drop_installed_lock_entries(packages: &mut Vec<Package>) {
    let installed: HashSet<String> = packages
        .iter()
        .filter(|p| p.kind == PackageType::Npm && !p.properties.contains_key(INSTALL_PATH))
        .flat_map(|p| p.locations.iter())
        .filter_map(|l| {
            l.path
                .strip_suffix("/package.json")
                .map(|d| d.trim_start_matches('/').to_string())
        })
        .collect();
    packages.retain(|p| match p.properties.get(INSTALL_PATH) {
        Some(dir) => !installed.contains(dir),
        None => true,
    });
}

/// What makes two findings the same package: type, group, name, version, arch.
type PackageKey = (PackageType, Option<String>, String, String, Option<String>);

/// One package per identity, with every location.
fn merge_duplicates(packages: Vec<Package>) -> Vec<Package> {
    let mut index: BTreeMap<PackageKey, usize> = BTreeMap::new();
    let mut out: Vec<Package> = Vec::new();
    for p in packages {
        let key = (
            p.kind,
            p.group.clone(),
            p.name.clone(),
            p.version.clone(),
            p.arch.clone(),
        );
        match index.get(&key) {
            Some(&i) => {
                let existing = &mut out[i];
                for l in p.locations {
                    if !existing.locations.contains(&l) {
                        existing.locations.push(l);
                    }
                }
                for l in p.licenses {
                    if !existing.licenses.contains(&l) {
                        existing.licenses.push(l);
                    }
                }
            }
            None => {
                index.insert(key, out.len());
                out.push(p);
            }
        }
    }
    for p in &mut out {
        p.locations.sort();
    }
    out
}
