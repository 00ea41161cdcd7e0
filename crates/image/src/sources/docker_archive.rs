//! `docker save` archives (`docker-archive:`): `manifest.json` naming the config and the layer
//! members of each image, layers plain or gzip tars. Works for the legacy layout
//! (`<id>/layer.tar`), skopeo's (`<digest>.tar`) and Docker 25's (`blobs/sha256/…`, with the
//! legacy names as links).

use super::archive::TarMembers;
use crate::digest::Digest;
use crate::error::ImageError;
use crate::limits::Limits;
use crate::sources::registry::Reference;

/// One image of a docker archive.
pub(crate) struct DockerImage {
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub repo_tags: Vec<String>,
    /// Member name of each layer, base first.
    pub layer_members: Vec<String>,
    /// Digest a member name encodes (`<hex>.tar`, `blobs/sha256/<hex>`), checked when read.
    pub layer_digests: Vec<Option<Digest>>,
    pub layer_sizes: Vec<u64>,
}

/// A digest spelled by a member name, if it spells one.
fn digest_in_name(name: &str) -> Option<Digest> {
    let file = name.rsplit('/').next()?;
    let hex = file
        .strip_suffix(".json")
        .or_else(|| file.strip_suffix(".tar"))
        .unwrap_or(file);
    let alg = if name.starts_with("blobs/sha512/") {
        "sha512"
    } else {
        "sha256"
    };
    format!("{alg}:{hex}").parse().ok()
}

fn same_image_name(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<Reference>(), b.parse::<Reference>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

pub(crate) fn read(
    members: &TarMembers,
    wanted: Option<&str>,
    limits: &Limits,
) -> Result<DockerImage, ImageError> {
    let input = members.input().to_string();
    if !members.contains("manifest.json") {
        return Err(ImageError::malformed(
            &input,
            "not a docker archive: no manifest.json",
        ));
    }
    let raw = members.read_member("manifest.json", limits.max_manifest_bytes)?;
    let entries = crate::spec::parse_docker_manifest(&raw, &format!("{input}: manifest.json"))?;
    let all_tags = || {
        let t: Vec<&str> = entries
            .iter()
            .flat_map(|e| e.repo_tags.iter().flatten().map(String::as_str))
            .collect();
        if t.is_empty() {
            "untagged images".to_string()
        } else {
            t.join(", ")
        }
    };
    let entry = match (wanted, entries.as_slice()) {
        (_, []) => {
            return Err(ImageError::malformed(
                &input,
                "manifest.json lists no images",
            ));
        }
        (None, [one]) => one,
        (None, _) => {
            return Err(ImageError::malformed(
                &input,
                format!(
                    "the archive holds {} images; name one with :REPO:TAG (available: {})",
                    entries.len(),
                    all_tags()
                ),
            ));
        }
        (Some(w), _) => entries
            .iter()
            .find(|e| e.repo_tags.iter().flatten().any(|t| same_image_name(t, w)))
            .ok_or_else(|| ImageError::TagNotFound {
                input: input.clone(),
                tag: w.to_string(),
                available: all_tags(),
            })?,
    };
    if entry.layers.len() > limits.max_layers {
        return Err(ImageError::malformed(
            &input,
            format!(
                "{} layers, over the limit of {}",
                entry.layers.len(),
                limits.max_layers
            ),
        ));
    }
    let config = members.read_member(&entry.config, limits.max_config_bytes)?;
    let config_digest = match digest_in_name(&entry.config) {
        Some(d) => {
            d.verify(&format!("{input}: {}", entry.config), &config)?;
            d
        }
        None => Digest::sha256_of(&config),
    };
    let mut sizes = Vec::new();
    for l in &entry.layers {
        if !members.contains(l) {
            return Err(ImageError::malformed(
                &input,
                format!("missing layer member {l:?}"),
            ));
        }
        sizes.push(members.member_size(l)?);
    }
    Ok(DockerImage {
        config,
        config_digest,
        repo_tags: entry.repo_tags.clone().unwrap_or_default(),
        layer_digests: entry.layers.iter().map(|l| digest_in_name(l)).collect(),
        layer_members: entry.layers.clone(),
        layer_sizes: sizes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_from_member_names() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for n in [
            format!("{hex}.json"),
            format!("{hex}.tar"),
            format!("blobs/sha256/{hex}"),
        ] {
            assert_eq!(digest_in_name(&n).unwrap().hex(), hex, "{n}");
        }
        assert_eq!(digest_in_name("abc123/layer.tar"), None);
        assert!(same_image_name(
            "alpine:3.10",
            "docker.io/library/alpine:3.10"
        ));
        assert!(!same_image_name("alpine:3.10", "alpine:3.11"));
    }
}
