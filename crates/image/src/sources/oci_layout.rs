//! OCI image layouts (`oci-dir:`), as a directory or inside a tar (`oci-archive:`):
//! `oci-layout` marker, `index.json`, content-addressed `blobs/<alg>/<hex>`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::archive::TarMembers;
use crate::digest::Digest;
use crate::error::ImageError;
use crate::limits::Limits;
use crate::platform::Platform;
use crate::spec::{self, ManifestDoc};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Where a layout's files live.
pub(crate) enum LayoutStore {
    Dir(PathBuf),
    Archive(TarMembers),
}

impl LayoutStore {
    pub(crate) fn input(&self) -> String {
        match self {
            LayoutStore::Dir(p) => p.display().to_string(),
            LayoutStore::Archive(m) => m.input().to_string(),
        }
    }

    fn read_file(&self, name: &str, limit: u64) -> Result<Vec<u8>, ImageError> {
        match self {
            LayoutStore::Dir(root) => {
                let path = root.join(name);
                let file = File::open(&path).map_err(|e| ImageError::io(&path, e))?;
                let size = file.metadata().map_err(|e| ImageError::io(&path, e))?.len();
                if size > limit {
                    return Err(ImageError::malformed(
                        path.display(),
                        format!("{size} bytes, over the limit of {limit}"),
                    ));
                }
                let mut buf = Vec::with_capacity(size as usize);
                file.take(limit)
                    .read_to_end(&mut buf)
                    .map_err(|e| ImageError::io(&path, e))?;
                Ok(buf)
            }
            LayoutStore::Archive(m) => m.read_member(name, limit),
        }
    }

    fn has_file(&self, name: &str) -> bool {
        match self {
            LayoutStore::Dir(root) => root.join(name).is_file(),
            LayoutStore::Archive(m) => m.contains(name),
        }
    }

    fn blob_name(digest: &Digest) -> String {
        let s = digest.to_string();
        let (alg, hex) = s.split_once(':').expect("digests always have an algorithm");
        format!("blobs/{alg}/{hex}")
    }

    fn missing_blob(&self, digest: &Digest, what: &str) -> ImageError {
        ImageError::malformed(self.input(), format!("missing blob {digest} ({what})"))
    }

    /// Fails unless the blob is present (checked at open time, so a layout with a missing layer
    /// is reported before any work starts).
    pub(crate) fn require_blob(&self, digest: &Digest, what: &str) -> Result<(), ImageError> {
        if self.has_file(&Self::blob_name(digest)) {
            Ok(())
        } else {
            Err(self.missing_blob(digest, what))
        }
    }

    /// Reads a small blob whole and checks its digest.
    pub(crate) fn read_blob(
        &self,
        digest: &Digest,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, ImageError> {
        let name = Self::blob_name(digest);
        if !self.has_file(&name) {
            return Err(self.missing_blob(digest, what));
        }
        let bytes = self.read_file(&name, limit)?;
        digest.verify(&format!("{}: {name}", self.input()), &bytes)?;
        Ok(bytes)
    }

    /// Opens a blob for streaming (the layer pipeline checks its digest).
    pub(crate) fn open_blob(
        &self,
        digest: &Digest,
        what: &str,
    ) -> Result<Box<dyn Read + Send>, ImageError> {
        let name = Self::blob_name(digest);
        match self {
            LayoutStore::Dir(root) => {
                let path = root.join(&name);
                match File::open(&path) {
                    Ok(f) => Ok(Box::new(BufReader::with_capacity(256 * 1024, f))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Err(self.missing_blob(digest, what))
                    }
                    Err(e) => Err(ImageError::io(path, e)),
                }
            }
            LayoutStore::Archive(m) => {
                if !m.contains(&name) {
                    return Err(self.missing_blob(digest, what));
                }
                Ok(m.open_member(&name)?.0)
            }
        }
    }
}

/// What opening a layout resolved to.
pub(crate) struct Resolved {
    pub manifest: ImageManifest,
    pub manifest_digest: Digest,
    pub index_digest: Option<Digest>,
    pub ref_name: Option<String>,
}

pub(crate) fn descriptor_digest(d: &Descriptor, input: &str) -> Result<Digest, ImageError> {
    d.digest()
        .to_string()
        .parse()
        .map_err(|e: String| ImageError::malformed(input, e))
}

/// Finds the manifest for `tag` (or the only image) and `platform` in a layout.
pub(crate) fn resolve(
    store: &LayoutStore,
    tag: Option<&str>,
    platform: &Platform,
    limits: &Limits,
) -> Result<Resolved, ImageError> {
    let input = store.input();
    if !store.has_file("oci-layout") {
        return Err(ImageError::malformed(
            &input,
            "not an OCI image layout: no oci-layout file",
        ));
    }
    let index_bytes = store.read_file("index.json", limits.max_manifest_bytes)?;
    let index_input = format!("{input}: index.json");
    let index: ImageIndex = serde_json::from_slice(&index_bytes)
        .map_err(|e| ImageError::malformed(&index_input, format!("invalid index: {e}")))?;

    let names = |d: &Descriptor| -> Vec<String> {
        let a = d.annotations().as_ref();
        [REF_NAME, CONTAINERD_NAME]
            .iter()
            .filter_map(|k| a.and_then(|a| a.get(*k)).cloned())
            .collect()
    };
    let candidates: Vec<&Descriptor> = match tag {
        Some(t) => index
            .manifests()
            .iter()
            .filter(|d| {
                names(d).iter().any(|n| {
                    n == t
                        || n.rsplit_once(':')
                            .is_some_and(|(_, tail)| tail == t && !tail.contains('/'))
                })
            })
            .collect(),
        None => index.manifests().iter().collect(),
    };
    let available = || {
        let mut all: Vec<String> = index.manifests().iter().flat_map(names).collect();
        all.dedup();
        if all.is_empty() {
            "no tags".into()
        } else {
            all.join(", ")
        }
    };
    let chosen: &Descriptor = match candidates.as_slice() {
        [] => {
            return Err(match tag {
                Some(t) => ImageError::TagNotFound {
                    input: input.clone(),
                    tag: t.to_string(),
                    available: available(),
                },
                None => ImageError::malformed(&index_input, "the layout holds no images"),
            });
        }
        [one] => one,
        many if many.iter().all(|d| d.platform().is_some()) => {
            let sub = oci_spec::image::ImageIndexBuilder::default()
                .schema_version(2u32)
                .manifests(many.iter().map(|d| (*d).clone()).collect::<Vec<_>>())
                .build()
                .map_err(|e| ImageError::Internal(e.to_string()))?;
            let d = spec::select_platform(&sub, platform, &input)?;
            return follow(
                store,
                d,
                None,
                names(d).into_iter().next(),
                platform,
                limits,
                0,
            );
        }
        _ => {
            return Err(ImageError::malformed(
                &input,
                format!(
                    "the layout holds several images; name one with :TAG (available: {})",
                    available()
                ),
            ));
        }
    };
    let ref_name = names(chosen).into_iter().next();
    follow(store, chosen, None, ref_name, platform, limits, 0)
}

fn follow(
    store: &LayoutStore,
    d: &Descriptor,
    index_digest: Option<Digest>,
    ref_name: Option<String>,
    platform: &Platform,
    limits: &Limits,
    depth: u32,
) -> Result<Resolved, ImageError> {
    let input = store.input();
    let digest = descriptor_digest(d, &input)?;
    let bytes = store.read_blob(&digest, limits.max_manifest_bytes, "manifest")?;
    match spec::parse_manifest_doc(&bytes, &format!("{input}: manifest {digest}"))? {
        ManifestDoc::Image(m) => Ok(Resolved {
            manifest: *m,
            manifest_digest: digest,
            index_digest,
            ref_name,
        }),
        ManifestDoc::Index(idx) => {
            if depth >= limits.max_index_depth {
                return Err(ImageError::malformed(
                    &input,
                    "image indexes nested too deep",
                ));
            }
            let child = spec::select_platform(&idx, platform, &input)?;
            follow(
                store,
                child,
                index_digest.or(Some(digest)),
                ref_name,
                platform,
                limits,
                depth + 1,
            )
        }
    }
}
