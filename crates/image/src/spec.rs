//! Manifest, index and config documents (OCI image spec and Docker schema 2), parsed from
//! untrusted bytes with size limits and tolerant of the variations real registries serve.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::Deserialize;

use crate::error::ImageError;
use crate::layer::LayerInfo;
use crate::platform::Platform;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Media types asked for when fetching a manifest.
pub const MANIFEST_ACCEPT: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

const IMAGE_CONFIGS: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// A manifest-like document: one image, or an index of several.
#[derive(Debug)]
pub enum ManifestDoc {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<i64>,
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
}

/// Parses a manifest or index. `input` names it in errors.
pub fn parse_manifest_doc(bytes: &[u8], input: &str) -> Result<ManifestDoc, ImageError> {
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::malformed(input, format!("not a manifest: invalid JSON: {e}")))?;
    if probe.schema_version == Some(1) || probe.media_type.as_deref() == Some(DOCKER_SCHEMA1) {
        return Err(ImageError::malformed(
            input,
            "Docker schema 1 manifests are not supported (deprecated since 2017; re-push the image)",
        ));
    }
    if probe.schema_version != Some(2) {
        return Err(ImageError::malformed(
            input,
            format!(
                "not a manifest: schemaVersion {:?}, expected 2",
                probe.schema_version
            ),
        ));
    }
    let is_index = match probe.media_type.as_deref() {
        Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        _ => probe.manifests.is_some(),
    };
    if is_index {
        let index: ImageIndex = serde_json::from_slice(bytes)
            .map_err(|e| ImageError::malformed(input, format!("invalid image index: {e}")))?;
        Ok(ManifestDoc::Index(Box::new(index)))
    } else {
        let manifest: ImageManifest = serde_json::from_slice(bytes)
            .map_err(|e| ImageError::malformed(input, format!("invalid image manifest: {e}")))?;
        Ok(ManifestDoc::Image(Box::new(manifest)))
    }
}

/// One image of a `docker save` archive's `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerManifestEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// Parses a docker archive's `manifest.json`.
pub fn parse_docker_manifest(
    bytes: &[u8],
    input: &str,
) -> Result<Vec<DockerManifestEntry>, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::malformed(input, format!("invalid: {e}")))
}

/// Parses an image configuration blob.
pub fn parse_config(bytes: &[u8], input: &str) -> Result<ImageConfiguration, ImageError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ImageError::malformed(input, format!("invalid image config: {e}")))
}

/// Checks that a manifest describes a container image (not a Helm chart, WASM module or other
/// OCI artifact) within the layer limit.
pub fn check_image_manifest(
    manifest: &ImageManifest,
    input: &str,
    max_layers: usize,
) -> Result<(), ImageError> {
    let config_type = manifest.config().media_type().to_string();
    if !IMAGE_CONFIGS.contains(&config_type.as_str()) {
        return Err(ImageError::malformed(
            input,
            format!("not a container image: config media type {config_type}"),
        ));
    }
    if manifest.layers().len() > max_layers {
        return Err(ImageError::malformed(
            input,
            format!(
                "{} layers, over the limit of {max_layers}",
                manifest.layers().len()
            ),
        ));
    }
    for l in manifest.layers() {
        let t = l.media_type().to_string();
        let is_layer = t.starts_with("application/vnd.oci.image.layer.")
            || t.starts_with("application/vnd.docker.image.rootfs.");
        if !is_layer {
            return Err(ImageError::malformed(
                input,
                format!("not a container image: layer media type {t}"),
            ));
        }
    }
    Ok(())
}

/// The platform an index entry declares, if any.
pub fn descriptor_platform(d: &Descriptor) -> Option<Platform> {
    d.platform().as_ref().map(|p| {
        Platform::new(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref(),
        )
    })
}

/// Picks the entry for `wanted` from an index. Attestation manifests (`unknown/unknown`) and
/// entries without a platform are never picked.
pub fn select_platform<'a>(
    index: &'a ImageIndex,
    wanted: &Platform,
    input: &str,
) -> Result<&'a Descriptor, ImageError> {
    let mut available = Vec::new();
    for d in index.manifests() {
        if let Some(p) = descriptor_platform(d) {
            if wanted.matches(&p) {
                return Ok(d);
            }
            if p.os != "unknown" {
                available.push(p.to_string());
            }
        }
    }
    Err(ImageError::NoMatchingPlatform {
        input: input.to_string(),
        wanted: wanted.to_string(),
        available: if available.is_empty() {
            "none".into()
        } else {
            available.join(", ")
        },
    })
}

/// The platform of an image from its config.
pub fn config_platform(config: &ImageConfiguration) -> Platform {
    Platform::new(
        &config.os().to_string(),
        &config.architecture().to_string(),
        config.variant().as_deref(),
    )
}

/// Layer descriptions from a manifest and its config: digests and sizes from the manifest,
/// diff-ids from the config, history entries matched to the layers that are not empty.
pub fn layers_from(
    manifest_layers: &[Descriptor],
    config: &ImageConfiguration,
    input: &str,
) -> Result<Vec<LayerInfo>, ImageError> {
    let diff_ids = parse_diff_ids(config, manifest_layers.len(), input)?;
    let mut layers: Vec<LayerInfo> = manifest_layers
        .iter()
        .zip(diff_ids)
        .enumerate()
        .map(|(index, (d, diff_id))| {
            let digest = d.digest().to_string().parse().map_err(|e: String| {
                ImageError::malformed(input, format!("layer {}: {e}", index + 1))
            })?;
            Ok(LayerInfo {
                index,
                digest: Some(digest),
                diff_id: Some(diff_id),
                size: Some(d.size()),
                media_type: Some(d.media_type().to_string()),
                created_by: None,
                created: None,
            })
        })
        .collect::<Result<_, ImageError>>()?;
    attach_history(&mut layers, config);
    Ok(layers)
}

/// The config's `rootfs.diff_ids`, which must be one per layer.
pub fn parse_diff_ids(
    config: &ImageConfiguration,
    layer_count: usize,
    input: &str,
) -> Result<Vec<crate::Digest>, ImageError> {
    let raw = config.rootfs().diff_ids();
    if raw.len() != layer_count {
        return Err(ImageError::malformed(
            input,
            format!(
                "config lists {} diff-ids for {} layers",
                raw.len(),
                layer_count
            ),
        ));
    }
    raw.iter()
        .map(|s| {
            s.parse()
                .map_err(|e: String| ImageError::malformed(input, format!("config diff-id: {e}")))
        })
        .collect()
}

pub(crate) fn attach_history(layers: &mut [LayerInfo], config: &ImageConfiguration) {
    let Some(history) = config.history() else {
        return;
    };
    let real = history.iter().filter(|h| !h.empty_layer().unwrap_or(false));
    for (layer, h) in layers.iter_mut().zip(real) {
        layer.created_by = h.created_by().clone();
        layer.created = h.created().clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_and_oci_shapes() {
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
          "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,"digest":"sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"},
          "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":32654,"digest":"sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f"}]}"#;
        match parse_manifest_doc(docker, "m").unwrap() {
            ManifestDoc::Image(m) => {
                check_image_manifest(&m, "m", 10).unwrap();
                assert_eq!(m.layers().len(), 1);
            }
            _ => panic!("expected an image manifest"),
        }
        let list = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
          "manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":7143,"digest":"sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f","platform":{"architecture":"ppc64le","os":"linux"}},
                       {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":7682,"digest":"sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270","platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#;
        let ManifestDoc::Index(idx) = parse_manifest_doc(list, "l").unwrap() else {
            panic!("expected an index")
        };
        let d = select_platform(&idx, &"linux/arm64".parse().unwrap(), "l").unwrap();
        assert!(d.digest().to_string().starts_with("sha256:5b0b"));
        let err = select_platform(&idx, &"linux/amd64".parse().unwrap(), "l").unwrap_err();
        assert_eq!(
            err.to_string(),
            "l: no image for platform linux/amd64 (available: linux/ppc64le, linux/arm64/v8)"
        );
    }

    #[test]
    fn refuses_schema1_artifacts_and_garbage() {
        let s1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(
            parse_manifest_doc(s1, "m")
                .unwrap_err()
                .to_string()
                .contains("schema 1")
        );
        assert!(
            parse_manifest_doc(b"hello", "m")
                .unwrap_err()
                .to_string()
                .starts_with("m: not a manifest")
        );
        assert!(parse_manifest_doc(b"{}", "m").is_err());
        let helm = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","size":1,"digest":"sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f"},"layers":[]}"#;
        let ManifestDoc::Image(m) = parse_manifest_doc(helm, "m").unwrap() else {
            panic!()
        };
        assert!(
            check_image_manifest(&m, "m", 10)
                .unwrap_err()
                .to_string()
                .contains("not a container image")
        );
    }
}
