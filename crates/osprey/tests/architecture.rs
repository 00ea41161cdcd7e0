//! ARCHITECTURE.md's code map stays true: every crate of the workspace has its section, and
//! every top-level module of a crate (a `src/NAME.rs` or `src/NAME/`) is named in it, so a
//! module that is added, moved or renamed without the map fails here.

use std::collections::BTreeMap;
use std::path::Path;

/// The sections of the code map: the crate folder of each `### `crates/NAME`` heading → its text.
fn sections(map: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in map.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            current = h
                .strip_prefix("`crates/")
                .and_then(|r| r.split('`').next())
                .map(str::to_string);
            if let Some(c) = &current {
                out.insert(c.clone(), String::new());
            }
            continue;
        }
        if line.starts_with("## ") {
            current = None;
        }
        if let Some(c) = &current {
            let text = out.get_mut(c).unwrap();
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// A crate's top-level modules: the files and folders of `src/` other than the crate roots.
fn modules(src: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            if p.is_dir() {
                Some(name)
            } else {
                name.strip_suffix(".rs").map(str::to_string)
            }
        })
        .filter(|n| n != "lib" && n != "main")
        .collect();
    names.sort();
    names
}

#[test]
fn the_code_map_names_every_crate_and_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let sections = sections(&map);
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let Some(text) = sections.get(&name) else {
            missing.push(format!("crates/{name}: no section"));
            continue;
        };
        for m in modules(&dir.join("src")) {
            let named = [
                format!("`{m}`"),
                format!("`{m}.rs`"),
                format!("`{m}/`"),
                format!("`{m}` ("),
            ]
            .iter()
            .any(|n| text.contains(n.as_str()));
            if !named {
                missing.push(format!("crates/{name}/src/{m}: not named in its section"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map is out of date:\n{}",
        missing.join("\n")
    );
}
