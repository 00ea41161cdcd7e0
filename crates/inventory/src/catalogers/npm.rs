//! Node.js packages: every `package.json` with a name and version (installed packages under
//! `node_modules`, Debian's `/usr/share/nodejs`, applications), and the lock files
//! `package-lock.json` (v1–v3) and `yarn.lock` (classic and berry). Lock entries whose package
//! is installed where the lock says are merged with the installed `package.json` at merge time.

use osprey_model::{Location, Package, PackageType};
use serde_json::Value;

use super::text::lossy;
use super::{Cataloger, FileRef, packages};
use crate::analysis::Fact;
use crate::limits::InventoryLimits;

/// Property naming where a lock file says a package is installed (clean path of its directory).
pub(crate) const INSTALL_PATH: &str = "npm.install-path";

/// Whether a lock file is an install record of this file system: not one inside an installed
/// package (`node_modules/…`), nor the upstream lock a distribution or global install shipped
/// with a packaged module (`/usr/share/nodejs/<pkg>/npm-shrinkwrap.json` lists dependencies
/// Debian replaced with its own packages).
fn is_install_lock(file: &FileRef<'_>) -> bool {
    const PACKAGED: &[&str] = &[
        "usr/share/nodejs/",
        "usr/lib/node_modules/",
        "usr/local/lib/node_modules/",
        "opt/nodejs/lib/node_modules/",
    ];
    !file.path.contains("node_modules/") && !PACKAGED.iter().any(|p| file.path.starts_with(p))
}

fn lock_dir<'a>(file: &FileRef<'a>) -> &'a str {
    file.path.rsplit_once('/').map_or("", |(d, _)| d)
}

pub(crate) struct PackageJson;

impl Cataloger for PackageJson {
    fn name(&self) -> &'static str {
        "npm-package-json"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        file.name == "package.json"
    }
    fn max_size(&self, _: &InventoryLimits) -> u64 {
        4 << 20
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            // Templates and test fixtures are often not JSON; not a package.
            return Ok(None);
        };
        let (Some(name), Some(version)) = (v["name"].as_str(), v["version"].as_str()) else {
            return Ok(None);
        };
        if name.is_empty() || version.is_empty() {
            return Ok(None);
        }
        let mut p = Package::new(PackageType::Npm, name, version, self.name());
        p.licenses = licenses(&v);
        p.locations.push(Location::at(file.absolute()));
        Ok(packages(self.name(), vec![p]))
    }
}

fn licenses(v: &Value) -> Vec<String> {
    let one = |l: &Value| match l {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("type").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    match (&v["license"], &v["licenses"]) {
        (l @ (Value::String(_) | Value::Object(_)), _) => one(l).into_iter().collect(),
        (Value::Array(a), _) | (_, Value::Array(a)) => a.iter().filter_map(one).collect(),
        (_, l @ Value::String(_)) => one(l).into_iter().collect(),
        _ => Vec::new(),
    }
}

pub(crate) struct PackageLock;

impl Cataloger for PackageLock {
    fn name(&self) -> &'static str {
        "npm-package-lock"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        (file.name == "package-lock.json" || file.name == "npm-shrinkwrap.json")
            && is_install_lock(file)
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        let v: Value = serde_json::from_slice(data).map_err(|e| format!("invalid JSON: {e}"))?;
        let dir = lock_dir(file);
        let mut out = Vec::new();
        let mut add = |name: &str, version: &str, install: String| {
            let mut p = Package::new(PackageType::Npm, name, version, "npm-package-lock");
            p.properties.insert(INSTALL_PATH.into(), install);
            p.locations.push(Location::at(file.absolute()));
            out.push(p);
        };
        if let Some(pkgs) = v["packages"].as_object() {
            for (key, entry) in pkgs {
                let Some(rel) = key
                    .rfind("node_modules/")
                    .map(|i| &key[i + "node_modules/".len()..])
                else {
                    continue; // the root project, or a workspace folder
                };
                if entry["dev"].as_bool() == Some(true) || entry["link"].as_bool() == Some(true) {
                    continue;
                }
                let name = entry["name"].as_str().unwrap_or(rel);
                if let Some(version) = entry["version"].as_str() {
                    add(name, version, super::join(dir, key));
                }
            }
        } else if let Some(deps) = v["dependencies"].as_object() {
            fn walk(
                deps: &serde_json::Map<String, Value>,
                base: &str,
                add: &mut dyn FnMut(&str, &str, String),
            ) {
                for (name, entry) in deps {
                    if entry["dev"].as_bool() == Some(true) {
                        continue;
                    }
                    let here = super::join(base, &format!("node_modules/{name}"));
                    if let Some(version) = entry["version"].as_str() {
                        add(name, version, here.clone());
                    }
                    if let Some(nested) = entry["dependencies"].as_object() {
                        walk(nested, &here, add);
                    }
                }
            }
            walk(deps, dir, &mut add);
        }
        Ok(packages(self.name(), out))
    }
}

pub(crate) struct YarnLock;

impl Cataloger for YarnLock {
    fn name(&self) -> &'static str {
        "yarn-lock"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        file.name == "yarn.lock" && is_install_lock(file)
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        let text = lossy(data);
        let mut out: Vec<Package> = Vec::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if !line.starts_with(' ') {
                current = line
                    .trim_end_matches(':')
                    .split(',')
                    .next()
                    .and_then(spec_name);
                continue;
            }
            let t = line.trim();
            let version = t
                .strip_prefix("version ")
                .or_else(|| t.strip_prefix("version: "))
                .map(|v| v.trim().trim_matches('"'));
            if let (Some(name), Some(version)) = (&current, version) {
                if version.starts_with("0.0.0-use.local") {
                    continue;
                }
                let mut p = Package::new(PackageType::Npm, name.clone(), version, self.name());
                p.properties.insert(
                    INSTALL_PATH.into(),
                    super::join(lock_dir(file), &format!("node_modules/{name}")),
                );
                p.locations.push(Location::at(file.absolute()));
                out.push(p);
                current = None;
            }
        }
        Ok(packages(self.name(), out))
    }
}

/// `"@scope/name@^1.0.0"` or `name@npm:^1.0.0` → the package name.
fn spec_name(spec: &str) -> Option<String> {
    let s = spec.trim().trim_matches('"');
    if s == "__metadata" {
        return None;
    }
    let at = if let Some(rest) = s.strip_prefix('@') {
        rest.find('@').map(|i| i + 1)
    } else {
        s.find('@')
    }?;
    let name = &s[..at];
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_install_records_count_as_locks() {
        let lock = |p: &'static str| PackageLock.wants(&FileRef::new(p, 10, 0o644));
        assert!(lock("app/package-lock.json"));
        assert!(lock("srv/web/npm-shrinkwrap.json"));
        assert!(!lock("app/node_modules/x/package-lock.json"));
        assert!(!lock("usr/share/nodejs/lodash-cli/npm-shrinkwrap.json"));
        assert!(!lock("usr/lib/node_modules/npm/package-lock.json"));
    }

    #[test]
    fn yarn_specs() {
        assert_eq!(
            spec_name("\"@babel/core@^7.0.0\"").as_deref(),
            Some("@babel/core")
        );
        assert_eq!(spec_name("lodash@4.17.15").as_deref(), Some("lodash"));
        assert_eq!(
            spec_name("\"lodash@npm:^4.17.0\"").as_deref(),
            Some("lodash")
        );
        assert_eq!(spec_name("__metadata"), None);
        let lock = b"# yarn lockfile v1\n\n\"@babel/code-frame@^7.0.0\":\n  version \"7.12.13\"\n  resolved \"x\"\n\nlodash@^4.17.15, lodash@^4.17.19:\n  version \"4.17.21\"\n";
        let f = FileRef::new("app/yarn.lock", lock.len() as u64, 0o644);
        let Some(Fact::Packages { packages, .. }) = YarnLock
            .parse(&f, lock, &InventoryLimits::default())
            .unwrap()
        else {
            panic!()
        };
        let got: Vec<_> = packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.properties[INSTALL_PATH].as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "@babel/code-frame",
                    "7.12.13",
                    "app/node_modules/@babel/code-frame"
                ),
                ("lodash", "4.17.21", "app/node_modules/lodash")
            ]
        );
    }
}
