//! The SOURCE syntax of the command line: `docker-archive:PATH[:REF]`, `oci-dir:PATH[:TAG]`,
//! `oci-archive:PATH[:TAG]`, `dir:PATH`, `registry:REF`, or a bare value that is an existing
//! file or directory (kind detected from its content) or else a registry reference.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::ImageError;
use crate::sources::registry::Reference;

/// A parsed SOURCE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Registry(String),
    DockerArchive {
        path: PathBuf,
        reference: Option<String>,
    },
    OciDir {
        path: PathBuf,
        tag: Option<String>,
    },
    OciArchive {
        path: PathBuf,
        tag: Option<String>,
    },
    /// A bare path to a tar archive; docker or OCI is decided when it is opened.
    Archive(PathBuf),
    Dir(PathBuf),
}

fn err(text: &str, reason: impl Into<String>) -> ImageError {
    ImageError::Source {
        source_text: text.to_string(),
        reason: reason.into(),
    }
}

/// `PATH` or `PATH:SUFFIX`, where PATH must exist. The whole value is tried as a path first,
/// so paths containing ':' work.
fn path_and_suffix(text: &str, rest: &str) -> Result<(PathBuf, Option<String>), ImageError> {
    if rest.is_empty() {
        return Err(err(text, "missing path"));
    }
    if Path::new(rest).exists() {
        return Ok((PathBuf::from(rest), None));
    }
    for (i, _) in rest.match_indices(':') {
        let (p, suffix) = (&rest[..i], &rest[i + 1..]);
        if !p.is_empty() && Path::new(p).exists() {
            if suffix.is_empty() {
                return Err(err(text, "empty tag after ':'"));
            }
            return Ok((PathBuf::from(p), Some(suffix.to_string())));
        }
    }
    Err(err(text, "no such file or directory"))
}

impl Source {
    /// Parses a SOURCE; paths must exist, references must be well formed.
    pub fn parse(text: &str) -> Result<Source, ImageError> {
        if let Some((kind, rest)) = text.split_once(':') {
            match kind {
                "registry" => {
                    rest.parse::<Reference>().map_err(|e| err(text, e))?;
                    return Ok(Source::Registry(rest.to_string()));
                }
                "docker-archive" => {
                    let (path, reference) = path_and_suffix(text, rest)?;
                    return Ok(Source::DockerArchive { path, reference });
                }
                "oci-dir" => {
                    let (path, tag) = path_and_suffix(text, rest)?;
                    if !path.is_dir() {
                        return Err(err(text, "not a directory"));
                    }
                    return Ok(Source::OciDir { path, tag });
                }
                "oci-archive" => {
                    let (path, tag) = path_and_suffix(text, rest)?;
                    return Ok(Source::OciArchive { path, tag });
                }
                "dir" => {
                    let path = PathBuf::from(rest);
                    if rest.is_empty() || !path.exists() {
                        return Err(err(text, "no such directory"));
                    }
                    if !path.is_dir() {
                        return Err(err(text, "not a directory"));
                    }
                    return Ok(Source::Dir(path));
                }
                "disk" => {
                    return Err(err(
                        text,
                        "disk images are scanned by `osprey malware scan` only",
                    ));
                }
                _ => {}
            }
        }
        let path = Path::new(text);
        if !text.is_empty() && path.exists() {
            if path.is_dir() {
                if path.join("oci-layout").is_file() {
                    return Ok(Source::OciDir {
                        path: path.to_path_buf(),
                        tag: None,
                    });
                }
                return Ok(Source::Dir(path.to_path_buf()));
            }
            return Ok(Source::Archive(path.to_path_buf()));
        }
        // A bare `LAYOUT:TAG` naming an OCI layout directory.
        if let Ok((path, Some(tag))) = path_and_suffix(text, text)
            && path.join("oci-layout").is_file()
        {
            return Ok(Source::OciDir {
                path,
                tag: Some(tag),
            });
        }
        match text.parse::<Reference>() {
            Ok(_) => Ok(Source::Registry(text.to_string())),
            Err(_) => Err(err(
                text,
                "no such file or directory, and not an image reference",
            )),
        }
    }

    /// A short name of the source kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Registry(_) => "registry",
            Source::DockerArchive { .. } => "docker-archive",
            Source::OciDir { .. } => "oci-dir",
            Source::OciArchive { .. } => "oci-archive",
            Source::Archive(_) => "archive",
            Source::Dir(_) => "dir",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = |s: &Option<String>| s.as_ref().map(|t| format!(":{t}")).unwrap_or_default();
        match self {
            Source::Registry(r) => write!(f, "registry:{r}"),
            Source::DockerArchive { path, reference } => {
                write!(f, "docker-archive:{}{}", path.display(), suffix(reference))
            }
            Source::OciDir { path, tag } => write!(f, "oci-dir:{}{}", path.display(), suffix(tag)),
            Source::OciArchive { path, tag } => {
                write!(f, "oci-archive:{}{}", path.display(), suffix(tag))
            }
            Source::Archive(p) => write!(f, "{}", p.display()),
            Source::Dir(p) => write!(f, "dir:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().display().to_string();
        let file = tmp.path().join("img.tar");
        std::fs::write(&file, b"x").unwrap();
        let f = file.display().to_string();

        assert_eq!(
            Source::parse(&format!("dir:{d}")).unwrap(),
            Source::Dir(tmp.path().into())
        );
        assert_eq!(Source::parse(&d).unwrap(), Source::Dir(tmp.path().into()));
        assert_eq!(Source::parse(&f).unwrap(), Source::Archive(file.clone()));
        assert_eq!(
            Source::parse(&format!("oci-dir:{d}:v1")).unwrap(),
            Source::OciDir {
                path: tmp.path().into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            Source::parse(&format!("docker-archive:{f}:bench/app:v1")).unwrap(),
            Source::DockerArchive {
                path: file.clone(),
                reference: Some("bench/app:v1".into())
            }
        );
        assert_eq!(
            Source::parse(&format!("oci-archive:{f}")).unwrap(),
            Source::OciArchive {
                path: file.clone(),
                tag: None
            }
        );
        std::fs::write(tmp.path().join("oci-layout"), b"{}").unwrap();
        assert_eq!(
            Source::parse(&d).unwrap(),
            Source::OciDir {
                path: tmp.path().into(),
                tag: None
            }
        );
        assert_eq!(
            Source::parse(&format!("{d}:v2")).unwrap(),
            Source::OciDir {
                path: tmp.path().into(),
                tag: Some("v2".into())
            }
        );
        assert_eq!(
            Source::parse("alpine:3.18").unwrap(),
            Source::Registry("alpine:3.18".into())
        );
        assert_eq!(
            Source::parse("registry:127.0.0.1:5000/bench/app:v1").unwrap(),
            Source::Registry("127.0.0.1:5000/bench/app:v1".into())
        );
    }

    #[test]
    fn errors_name_the_source() {
        for (s, want) in [
            (
                "./missing.tar",
                "source \"./missing.tar\": no such file or directory, and not an image reference",
            ),
            (
                "docker-archive:/nonexistent/x.tar",
                "source \"docker-archive:/nonexistent/x.tar\": no such file or directory",
            ),
            (
                "dir:/etc/hostname",
                "source \"dir:/etc/hostname\": not a directory",
            ),
            (
                "registry:Bad Ref",
                "source \"registry:Bad Ref\": image reference \"Bad Ref\": invalid repository name (lowercase letters, digits, '.', '_', '-')",
            ),
            (
                "disk:/x.img",
                "source \"disk:/x.img\": disk images are scanned by `osprey malware scan` only",
            ),
        ] {
            assert_eq!(Source::parse(s).unwrap_err().to_string(), want);
        }
    }
}
