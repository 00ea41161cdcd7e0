//! The operating system, from release files only: `/etc/os-release` (or
//! `/usr/lib/os-release`), refined by `/etc/debian_version` and `/etc/alpine-release`, and the
//! older `*-release` files when there is no os-release. Never guessed from a package database.

use std::collections::BTreeMap;

use osprey_model::Os;

/// `KEY=value` pairs of an os-release file, quotes and escapes removed.
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        out.insert(
            k.trim().to_string(),
            v.replace("\\\"", "\"")
                .replace("\\$", "$")
                .replace("\\\\", "\\"),
        );
    }
    out
}

fn first_version_token(text: &str) -> Option<String> {
    text.split_whitespace()
        .find(|t| {
            t.starts_with(|c: char| c.is_ascii_digit())
                && t.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
        .map(str::to_string)
}

/// `CentOS release 6.10 (Final)`, `Red Hat Enterprise Linux release 8.9 (Ootpa)`, …
fn parse_legacy_release(text: &str) -> Option<(String, String)> {
    let line = text.lines().next()?.trim().to_ascii_lowercase();
    let id = [
        ("centos", "centos"),
        ("red hat enterprise linux", "rhel"),
        ("fedora", "fedora"),
        ("rocky", "rocky"),
        ("almalinux", "almalinux"),
        ("oracle linux", "ol"),
        ("amazon linux", "amzn"),
        ("vmware photon", "photon"),
        ("cbl-mariner", "mariner"),
        ("suse", "sles"),
    ]
    .iter()
    .find(|(needle, _)| line.contains(needle))
    .map(|(_, id)| id.to_string())?;
    Some((id, first_version_token(&line)?))
}

/// Detects the OS. `read(path)` returns the resolved path and content of a release file that is
/// visible in the final image, following symbolic links.
pub(crate) fn detect(read: impl Fn(&str) -> Option<(String, String)>) -> Option<Os> {
    let refine = |os: &mut Os| {
        let extra = match os.id.as_str() {
            "debian" => read("etc/debian_version"),
            "alpine" => read("etc/alpine-release"),
            _ => None,
        };
        if let Some((path, text)) = extra {
            let v = text.lines().next().unwrap_or("").trim().to_string();
            if v.starts_with(|c: char| c.is_ascii_digit()) {
                os.version = Some(v);
                os.sources.push(format!("/{path}"));
            }
        }
        if os.version.is_none() {
            os.version = os.version_id.clone();
        }
    };
    if let Some((path, text)) = read("etc/os-release").or_else(|| read("usr/lib/os-release")) {
        let kv = parse_os_release(&text);
        if let Some(id) = kv
            .get("ID")
            .map(|s| s.to_ascii_lowercase())
            .filter(|s| !s.is_empty())
        {
            let mut os = Os {
                id,
                version_id: kv.get("VERSION_ID").cloned().filter(|v| !v.is_empty()),
                version: None,
                codename: kv
                    .get("VERSION_CODENAME")
                    .cloned()
                    .filter(|v| !v.is_empty()),
                pretty_name: kv.get("PRETTY_NAME").cloned().filter(|v| !v.is_empty()),
                id_like: kv
                    .get("ID_LIKE")
                    .map(|v| v.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default(),
                sources: vec![format!("/{path}")],
            };
            refine(&mut os);
            return Some(os);
        }
    }
    if let Some((path, text)) = read("etc/alpine-release") {
        let v = text.trim().to_string();
        return Some(Os {
            id: "alpine".into(),
            version_id: Some(v.clone()),
            version: Some(v),
            sources: vec![format!("/{path}")],
            ..Os::default()
        });
    }
    if let Some((path, text)) = read("etc/debian_version") {
        let v = text.lines().next().unwrap_or("").trim().to_string();
        let numeric = v.starts_with(|c: char| c.is_ascii_digit());
        return Some(Os {
            id: "debian".into(),
            version_id: numeric.then(|| v.split('.').next().unwrap_or(&v).to_string()),
            version: numeric.then(|| v.clone()),
            codename: (!numeric && !v.is_empty()).then(|| v.clone()),
            sources: vec![format!("/{path}")],
            ..Os::default()
        });
    }
    for file in [
        "etc/redhat-release",
        "etc/centos-release",
        "etc/fedora-release",
        "etc/rocky-release",
        "etc/almalinux-release",
        "etc/oracle-release",
        "etc/system-release",
        "etc/photon-release",
        "etc/mariner-release",
        "etc/SuSE-release",
    ] {
        if let Some((path, text)) = read(file)
            && let Some((id, version)) = parse_legacy_release(&text)
        {
            let major = version.split('.').next().unwrap_or(&version).to_string();
            return Some(Os {
                id,
                version_id: Some(if file == "etc/SuSE-release" {
                    version.clone()
                } else {
                    major
                }),
                version: Some(version),
                sources: vec![format!("/{path}")],
                ..Os::default()
            });
        }
    }
    if let Some((path, text)) = read("etc/lsb-release") {
        let kv = parse_os_release(&text);
        if let Some(id) = kv.get("DISTRIB_ID").map(|s| s.to_ascii_lowercase()) {
            return Some(Os {
                id,
                version_id: kv.get("DISTRIB_RELEASE").cloned(),
                version: kv.get("DISTRIB_RELEASE").cloned(),
                codename: kv.get("DISTRIB_CODENAME").cloned(),
                pretty_name: kv.get("DISTRIB_DESCRIPTION").cloned(),
                sources: vec![format!("/{path}")],
                ..Os::default()
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> impl Fn(&str) -> Option<(String, String)> + use<> {
        let owned: Vec<(String, String)> = list
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        move |p: &str| owned.iter().find(|(k, _)| k == p).cloned()
    }

    #[test]
    fn debian_with_point_release() {
        let os = detect(files(&[
            ("etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n"),
            ("etc/debian_version", "12.11\n"),
        ]))
        .unwrap();
        assert_eq!(
            (
                os.id.as_str(),
                os.version_id.as_deref(),
                os.version.as_deref()
            ),
            ("debian", Some("12"), Some("12.11"))
        );
        assert_eq!(os.purl_distro(), "debian-12");
    }

    #[test]
    fn fallbacks() {
        let a = detect(files(&[("etc/alpine-release", "3.10.4\n")])).unwrap();
        assert_eq!(
            (a.id.as_str(), a.version_id.as_deref()),
            ("alpine", Some("3.10.4"))
        );
        let c = detect(files(&[(
            "etc/centos-release",
            "CentOS release 6.10 (Final)\n",
        )]))
        .unwrap();
        assert_eq!(
            (c.id.as_str(), c.version_id.as_deref(), c.version.as_deref()),
            ("centos", Some("6"), Some("6.10"))
        );
        let d = detect(files(&[("etc/debian_version", "bookworm/sid\n")])).unwrap();
        assert_eq!(
            (d.id.as_str(), d.version_id, d.codename.as_deref()),
            ("debian", None, Some("bookworm/sid"))
        );
        assert!(detect(files(&[])).is_none());
    }
}
