//! Cleaning paths taken from untrusted archives. Every path the crate hands out is relative to
//! the image root, uses `/`, has no `.`/`..`/empty components, and never names anything outside
//! the root.

/// Why a raw archive path was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// The path is the root itself (`./`, `/`): nothing to record.
    Root,
    /// `..` components climb above the root (`../etc/passwd`, `a/../../x`).
    EscapesRoot,
}

/// Cleans a path from an archive: strips leading `/` and `./`, drops `.` and empty components,
/// applies `..` lexically, and refuses paths that climb above the root.
pub fn clean_path(raw: &str) -> Result<String, PathProblem> {
    let mut parts: Vec<&str> = Vec::new();
    for component in raw.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathProblem::EscapesRoot);
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(PathProblem::Root);
    }
    Ok(parts.join("/"))
}

/// The parent directory of a clean path (`""` for a top-level entry).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

/// The last component of a clean path.
pub fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, n)| n)
}

/// Joins a clean directory and a clean relative path.
pub fn join(dir: &str, rest: &str) -> String {
    if dir.is_empty() {
        rest.to_string()
    } else {
        format!("{dir}/{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans() {
        assert_eq!(clean_path("./etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(clean_path("/etc//passwd").unwrap(), "etc/passwd");
        assert_eq!(clean_path("etc/./x/../passwd").unwrap(), "etc/passwd");
        assert_eq!(clean_path("usr/lib/").unwrap(), "usr/lib");
        assert_eq!(clean_path("./"), Err(PathProblem::Root));
        assert_eq!(clean_path("/"), Err(PathProblem::Root));
        assert_eq!(clean_path("a/.."), Err(PathProblem::Root));
        assert_eq!(clean_path("../etc/passwd"), Err(PathProblem::EscapesRoot));
        assert_eq!(clean_path("a/../../etc"), Err(PathProblem::EscapesRoot));
        assert_eq!(
            clean_path("/../../etc/shadow"),
            Err(PathProblem::EscapesRoot)
        );
    }

    #[test]
    fn parts() {
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("a"), "");
        assert_eq!(file_name("a/b/c"), "c");
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("a/b", "x"), "a/b/x");
    }

    proptest::proptest! {
        #[test]
        fn clean_paths_never_escape(raw in "[a./]{0,24}") {
            if let Ok(p) = clean_path(&raw) {
                proptest::prop_assert!(!p.starts_with('/'));
                proptest::prop_assert!(p.split('/').all(|c| !c.is_empty() && c != "." && c != ".."));
            }
        }
    }
}
