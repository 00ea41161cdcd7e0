//! One error type for the crate. Every variant names the input it is about, so the binary can
//! print it as a one-line reason without adding context.

use std::path::PathBuf;

/// Errors opening or reading an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A SOURCE string that does not name a usable source.
    #[error("source {source_text:?}: {reason}")]
    Source { source_text: String, reason: String },

    /// Reading a local file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The input exists but is not what it claims to be (bad JSON, not a tar, missing member …).
    #[error("{input}: {reason}")]
    Malformed { input: String, reason: String },

    /// Content whose digest is not the one it was addressed by.
    #[error("{input}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        input: String,
        expected: String,
        actual: String,
    },

    /// A multi-platform image without the requested platform.
    #[error("{input}: no image for platform {wanted} (available: {available})")]
    NoMatchingPlatform {
        input: String,
        wanted: String,
        available: String,
    },

    /// A tag or reference name that the layout or archive does not hold.
    #[error("{input}: no image tagged {tag:?} (available: {available})")]
    TagNotFound {
        input: String,
        tag: String,
        available: String,
    },

    /// The registry refused our credentials, or wants credentials we do not have.
    #[error("registry {registry}: {reason}")]
    Unauthorized { registry: String, reason: String },

    /// The registry answered with an error (after retries where retrying makes sense).
    #[error("registry {registry}: {reason}")]
    Registry { registry: String, reason: String },

    /// A layer index outside the image.
    #[error("{input}: image has {count} layers, no layer {index}")]
    NoSuchLayer {
        input: String,
        index: usize,
        count: usize,
    },

    /// A bug or an environment failure, not a problem with the input.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ImageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImageError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(input: impl std::fmt::Display, reason: impl std::fmt::Display) -> Self {
        ImageError::Malformed {
            input: input.to_string(),
            reason: reason.to_string(),
        }
    }

    /// True when the error is about the input (usage or data), false for internal failures.
    /// The binary maps the first to exit code 2 and the second to 3.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, ImageError::Internal(_))
    }

    /// Wraps this error so it can travel through `std::io::Read` and be recovered intact by
    /// [`ImageError::from_io`].
    pub(crate) fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    /// Recovers an `ImageError` that travelled through an `io::Error` (possibly wrapped again
    /// by a library on the way, as the tar crate does), or describes the I/O failure as a
    /// malformed input named `input`.
    pub fn from_io(input: &str, err: std::io::Error) -> ImageError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = err.get_ref().map(|e| e as _);
        while let Some(c) = cause {
            if let Some(inner) = c.downcast_ref::<ImageError>() {
                return inner.duplicate();
            }
            cause = c.source();
        }
        match err.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                ImageError::malformed(input, "unexpected end of data (truncated?)")
            }
            _ => ImageError::malformed(input, err),
        }
    }

    /// A copy of this error (an `io::Error` source is copied by kind and message).
    fn duplicate(&self) -> ImageError {
        match self {
            ImageError::Source {
                source_text,
                reason,
            } => ImageError::Source {
                source_text: source_text.clone(),
                reason: reason.clone(),
            },
            ImageError::Io { path, source } => ImageError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            ImageError::Malformed { input, reason } => ImageError::Malformed {
                input: input.clone(),
                reason: reason.clone(),
            },
            ImageError::DigestMismatch {
                input,
                expected,
                actual,
            } => ImageError::DigestMismatch {
                input: input.clone(),
                expected: expected.clone(),
                actual: actual.clone(),
            },
            ImageError::NoMatchingPlatform {
                input,
                wanted,
                available,
            } => ImageError::NoMatchingPlatform {
                input: input.clone(),
                wanted: wanted.clone(),
                available: available.clone(),
            },
            ImageError::TagNotFound {
                input,
                tag,
                available,
            } => ImageError::TagNotFound {
                input: input.clone(),
                tag: tag.clone(),
                available: available.clone(),
            },
            ImageError::Unauthorized { registry, reason } => ImageError::Unauthorized {
                registry: registry.clone(),
                reason: reason.clone(),
            },
            ImageError::Registry { registry, reason } => ImageError::Registry {
                registry: registry.clone(),
                reason: reason.clone(),
            },
            ImageError::NoSuchLayer {
                input,
                index,
                count,
            } => ImageError::NoSuchLayer {
                input: input.clone(),
                index: *index,
                count: *count,
            },
            ImageError::Internal(m) => ImageError::Internal(m.clone()),
        }
    }

    /// An error from the tar crate, as a reason that never quotes archive content (its header
    /// errors embed the bytes they failed to parse).
    pub(crate) fn from_tar(input: &str, err: std::io::Error) -> ImageError {
        let recovered = ImageError::from_io(input, err);
        let ImageError::Malformed { input, reason } = recovered else {
            return recovered;
        };
        let lower = reason.to_ascii_lowercase();
        let reason = if lower.contains("truncated")
            || lower.contains("entire block")
            || lower.contains("eof")
        {
            "truncated tar archive".to_string()
        } else if reason.contains("cksum")
            || reason.contains("checksum")
            || reason.contains("numeric field")
        {
            "not a valid tar archive (bad header)".to_string()
        } else {
            let short: String = reason
                .chars()
                .filter(|c| !c.is_control())
                .take(120)
                .collect();
            format!("not a valid tar archive ({short})")
        };
        ImageError::Malformed { input, reason }
    }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;
