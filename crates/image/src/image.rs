//! [`Image`]: an opened image from any source, with its manifest facts, config and layers,
//! walkable layer by layer or as a merged [`FileTree`].

use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageManifest};

use crate::digest::Digest;
use crate::error::ImageError;
use crate::layer::{self, Entry, LayerInfo, LayerReport, LayerStream, Notice, WalkBudget};
use crate::limits::Limits;
use crate::platform::Platform;
use crate::source::Source;
use crate::sources::archive::TarMembers;
use crate::sources::oci_layout::{self, LayoutStore};
use crate::sources::registry::{Reference, RegistryClient, RegistryOptions};
use crate::sources::{dir, docker_archive};
use crate::spec::{self, ManifestDoc};
use crate::tree::{FileTree, LayerChanges};

/// How to open an image.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Platform to pick from a multi-platform index; `None` = the host's. Also checked against
    /// a single-platform image when given.
    pub platform: Option<Platform>,
    pub registry: RegistryOptions,
    pub limits: Limits,
    /// Where a compressed archive is decompressed for random access (default: system temp).
    pub temp_dir: Option<PathBuf>,
}

enum Backend {
    Layout(LayoutStore),
    Docker {
        members: TarMembers,
        layer_members: Vec<String>,
    },
    Registry(RegistryClient),
    Dir(PathBuf),
}

/// An opened image.
pub struct Image {
    /// The source as given (canonical spelling).
    pub source: String,
    /// `registry`, `docker-archive`, `oci-dir`, `oci-archive` or `dir`.
    pub kind: &'static str,
    /// The normalised registry reference, or the tag/ref name the image was picked by.
    pub reference: Option<String>,
    pub repo_tags: Vec<String>,
    /// Digest of the image manifest (registry and OCI layouts).
    pub manifest_digest: Option<Digest>,
    /// Digest of the index the manifest was picked from, for multi-platform images.
    pub index_digest: Option<Digest>,
    pub manifest_media_type: Option<String>,
    /// Digest of the config blob — the image ID.
    pub config_digest: Option<Digest>,
    pub config: Option<ImageConfiguration>,
    pub platform: Option<Platform>,
    pub layers: Vec<LayerInfo>,
    limits: Limits,
    backend: Backend,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("source", &self.source)
            .field("manifest_digest", &self.manifest_digest)
            .field("config_digest", &self.config_digest)
            .field("layers", &self.layers.len())
            .finish()
    }
}

/// Manifest and config of an image, whatever its source.
struct Parts {
    manifest: ImageManifest,
    manifest_digest: Digest,
    index_digest: Option<Digest>,
    config_bytes: Vec<u8>,
}

impl Image {
    /// Opens an image. Reads manifests and the config; layers are read only when walked.
    pub fn open(source: &Source, options: &OpenOptions) -> Result<Image, ImageError> {
        let limits = &options.limits;
        let wanted = options.platform.clone().unwrap_or_else(Platform::host);
        match source {
            Source::Registry(text) => Self::open_registry(source, text, options, &wanted),
            Source::OciDir { path, tag } => Self::open_layout(
                source,
                "oci-dir",
                LayoutStore::Dir(path.clone()),
                tag.as_deref(),
                options,
                &wanted,
            ),
            Source::OciArchive { path, tag } => {
                let members = TarMembers::open(path, limits, options.temp_dir.as_deref())?;
                Self::open_layout(
                    source,
                    "oci-archive",
                    LayoutStore::Archive(members),
                    tag.as_deref(),
                    options,
                    &wanted,
                )
            }
            Source::DockerArchive { path, reference } => {
                let members = TarMembers::open(path, limits, options.temp_dir.as_deref())?;
                Self::open_docker(source, members, reference.as_deref(), options)
            }
            Source::Archive(path) => {
                let members = TarMembers::open(path, limits, options.temp_dir.as_deref())?;
                if members.contains("manifest.json") {
                    Self::open_docker(source, members, None, options)
                } else if members.contains("oci-layout") {
                    Self::open_layout(
                        source,
                        "oci-archive",
                        LayoutStore::Archive(members),
                        None,
                        options,
                        &wanted,
                    )
                } else {
                    Err(ImageError::malformed(
                        path.display(),
                        "not an image archive: neither manifest.json (docker-archive) nor oci-layout (oci-archive) inside",
                    ))
                }
            }
            Source::Dir(path) => Ok(Image {
                source: source.to_string(),
                kind: "dir",
                reference: None,
                repo_tags: Vec::new(),
                manifest_digest: None,
                index_digest: None,
                manifest_media_type: None,
                config_digest: None,
                config: None,
                platform: None,
                layers: vec![LayerInfo {
                    index: 0,
                    digest: None,
                    diff_id: None,
                    size: None,
                    media_type: None,
                    created_by: None,
                    created: None,
                }],
                limits: limits.clone(),
                backend: Backend::Dir(path.clone()),
            }),
        }
    }

    fn open_registry(
        source: &Source,
        text: &str,
        options: &OpenOptions,
        wanted: &Platform,
    ) -> Result<Image, ImageError> {
        let reference: Reference = text.parse().map_err(|e: String| ImageError::Source {
            source_text: source.to_string(),
            reason: e,
        })?;
        let client = RegistryClient::new(reference.clone(), options.registry.clone())?;
        let limits = &options.limits;
        let input = reference.to_string();
        let (mut bytes, mut digest, _) =
            client.manifest(&reference.manifest_ref(), limits.max_manifest_bytes)?;
        let mut index_digest = None;
        let mut depth = 0;
        let manifest = loop {
            match spec::parse_manifest_doc(&bytes, &format!("{input}: manifest"))? {
                ManifestDoc::Image(m) => break *m,
                ManifestDoc::Index(idx) => {
                    depth += 1;
                    if depth > limits.max_index_depth {
                        return Err(ImageError::malformed(
                            &input,
                            "image indexes nested too deep",
                        ));
                    }
                    index_digest.get_or_insert(digest.clone());
                    let d = spec::select_platform(&idx, wanted, &input)?;
                    let child = oci_layout::descriptor_digest(d, &input)?;
                    (bytes, digest, _) =
                        client.manifest(&child.to_string(), limits.max_manifest_bytes)?;
                    if digest != child {
                        return Err(ImageError::DigestMismatch {
                            input: format!("{input}: manifest"),
                            expected: child.to_string(),
                            actual: digest.to_string(),
                        });
                    }
                }
            }
        };
        let config_digest = oci_layout::descriptor_digest(manifest.config(), &input)?;
        let config_bytes = client.blob_bytes(&config_digest, limits.max_config_bytes)?;
        let parts = Parts {
            manifest,
            manifest_digest: digest,
            index_digest,
            config_bytes,
        };
        Self::from_parts(
            source,
            "registry",
            Some(reference.to_string()),
            parts,
            options,
            Backend::Registry(client),
        )
    }

    fn open_layout(
        source: &Source,
        kind: &'static str,
        store: LayoutStore,
        tag: Option<&str>,
        options: &OpenOptions,
        wanted: &Platform,
    ) -> Result<Image, ImageError> {
        let resolved = oci_layout::resolve(&store, tag, wanted, &options.limits)?;
        let input = store.input();
        let config_digest = oci_layout::descriptor_digest(resolved.manifest.config(), &input)?;
        let config_bytes =
            store.read_blob(&config_digest, options.limits.max_config_bytes, "config")?;
        let parts = Parts {
            manifest: resolved.manifest,
            manifest_digest: resolved.manifest_digest,
            index_digest: resolved.index_digest,
            config_bytes,
        };
        let image = Self::from_parts(
            source,
            kind,
            resolved.ref_name,
            parts,
            options,
            Backend::Layout(store),
        )?;
        if let Backend::Layout(store) = &image.backend {
            for layer in &image.layers {
                if let Some(d) = &layer.digest {
                    store.require_blob(d, &format!("layer {}", layer.index + 1))?;
                }
            }
        }
        Ok(image)
    }

    fn from_parts(
        source: &Source,
        kind: &'static str,
        reference: Option<String>,
        parts: Parts,
        options: &OpenOptions,
        backend: Backend,
    ) -> Result<Image, ImageError> {
        let input = source.to_string();
        spec::check_image_manifest(&parts.manifest, &input, options.limits.max_layers)?;
        let config = spec::parse_config(&parts.config_bytes, &format!("{input}: config"))?;
        let platform = spec::config_platform(&config);
        check_platform(
            &input,
            options.platform.as_ref(),
            &platform,
            parts.index_digest.is_some(),
        )?;
        let layers = spec::layers_from(parts.manifest.layers(), &config, &input)?;
        let config_digest = oci_layout::descriptor_digest(parts.manifest.config(), &input)?;
        Ok(Image {
            source: input,
            kind,
            reference,
            repo_tags: Vec::new(),
            manifest_digest: Some(parts.manifest_digest),
            index_digest: parts.index_digest,
            manifest_media_type: parts.manifest.media_type().as_ref().map(|m| m.to_string()),
            config_digest: Some(config_digest),
            config: Some(config),
            platform: Some(platform),
            layers,
            limits: options.limits.clone(),
            backend,
        })
    }

    fn open_docker(
        source: &Source,
        members: TarMembers,
        wanted: Option<&str>,
        options: &OpenOptions,
    ) -> Result<Image, ImageError> {
        let input = source.to_string();
        let d = docker_archive::read(&members, wanted, &options.limits)?;
        let config = spec::parse_config(&d.config, &format!("{input}: config"))?;
        let platform = spec::config_platform(&config);
        check_platform(&input, options.platform.as_ref(), &platform, false)?;
        let diff_ids = spec::parse_diff_ids(&config, d.layer_members.len(), &input)?;
        let mut layers: Vec<LayerInfo> = diff_ids
            .into_iter()
            .enumerate()
            .map(|(index, diff_id)| LayerInfo {
                index,
                digest: d.layer_digests[index].clone(),
                diff_id: Some(diff_id),
                size: Some(d.layer_sizes[index]),
                media_type: None,
                created_by: None,
                created: None,
            })
            .collect();
        spec::attach_history(&mut layers, &config);
        Ok(Image {
            source: input,
            kind: "docker-archive",
            reference: wanted
                .map(str::to_string)
                .or_else(|| d.repo_tags.first().cloned()),
            repo_tags: d.repo_tags,
            manifest_digest: None,
            index_digest: None,
            manifest_media_type: None,
            config_digest: Some(d.config_digest),
            config: Some(config),
            platform: Some(platform),
            layers,
            limits: options.limits.clone(),
            backend: Backend::Docker {
                members,
                layer_members: d.layer_members,
            },
        })
    }

    /// The limits the image was opened with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The directory of a `dir:` source.
    pub fn root_dir(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Dir(p) => Some(p),
            _ => None,
        }
    }

    fn layer_input(&self, index: usize) -> String {
        let l = &self.layers[index];
        match l.digest.as_ref().or(l.diff_id.as_ref()) {
            Some(d) => format!("{} layer {} ({})", self.source, index + 1, d.short()),
            None => format!("{} layer {}", self.source, index + 1),
        }
    }

    fn check_index(&self, index: usize) -> Result<(), ImageError> {
        if index >= self.layers.len() {
            return Err(ImageError::NoSuchLayer {
                input: self.source.clone(),
                index,
                count: self.layers.len(),
            });
        }
        Ok(())
    }

    /// Opens layer `index` as an uncompressed tar stream, checked against its blob digest and
    /// diff-id as it is read. Not available for `dir:` sources (use [`Image::walk_layer`]).
    pub fn layer_stream(&self, index: usize) -> Result<LayerStream, ImageError> {
        self.check_index(index)?;
        let info = &self.layers[index];
        let raw: Box<dyn std::io::Read + Send> =
            match &self.backend {
                Backend::Layout(store) => {
                    let digest = info.digest.as_ref().ok_or_else(|| {
                        ImageError::Internal("layout layer without digest".into())
                    })?;
                    store.open_blob(digest, &format!("layer {}", index + 1))?
                }
                Backend::Docker {
                    members,
                    layer_members,
                } => members.open_member(&layer_members[index])?.0,
                Backend::Registry(client) => {
                    let digest = info.digest.as_ref().ok_or_else(|| {
                        ImageError::Internal("registry layer without digest".into())
                    })?;
                    client.blob_stream(digest)?
                }
                Backend::Dir(_) => {
                    return Err(ImageError::Internal(
                        "a dir: source has no layer stream; walk it instead".into(),
                    ));
                }
            };
        LayerStream::new(
            raw,
            info.digest.clone(),
            info.diff_id.clone(),
            self.layer_input(index),
            self.limits.max_layer_bytes,
        )
    }

    /// Walks the entries of layer `index` in one streaming pass. `budget` carries the
    /// `max_files` count across the layers of one walk.
    pub fn walk_layer<E: From<ImageError>>(
        &self,
        index: usize,
        budget: &WalkBudget,
        visit: impl FnMut(&mut Entry<'_>) -> Result<(), E>,
    ) -> Result<LayerReport, E> {
        self.check_index(index)?;
        if let Backend::Dir(root) = &self.backend {
            return dir::walk(root, &self.limits, budget, visit);
        }
        let stream = self.layer_stream(index)?;
        let input = self.layer_input(index);
        let (mut report, stream) =
            layer::walk_tar(stream, index, &input, &self.limits, budget, visit)?;
        report.digests = stream.digests().cloned();
        Ok(report)
    }

    /// Builds the merged file-system view by walking every layer (metadata only).
    pub fn file_tree(&self) -> Result<(FileTree, Vec<Notice>), ImageError> {
        self.file_tree_with(|_, _| {})
    }

    /// As [`Image::file_tree`], calling `progress(layer, report)` as each layer is read.
    /// Layers are walked in parallel (one worker per core) and applied in order.
    pub fn file_tree_with(
        &self,
        progress: impl Fn(usize, &LayerReport) + Sync,
    ) -> Result<(FileTree, Vec<Notice>), ImageError> {
        let budget = WalkBudget::new();
        let walked = self.map_layers(|index| {
            let mut changes = LayerChanges::new();
            let report = self.walk_layer::<ImageError>(index, &budget, |e| {
                changes.record(e, index);
                Ok(())
            })?;
            progress(index, &report);
            Ok((changes, report))
        });
        let mut tree = FileTree::new(self.limits.max_link_depth);
        let mut notices = Vec::new();
        for (index, result) in walked.into_iter().enumerate() {
            let (changes, report) = result?;
            notices.extend(report.notices);
            notices.extend(tree.apply(index, self.layers[index].diff_id.clone(), changes));
        }
        Ok((tree, notices))
    }

    /// Runs `work` for every layer index on up to one thread per core; results in layer order.
    pub fn map_layers<T: Send>(
        &self,
        work: impl Fn(usize) -> Result<T, ImageError> + Sync,
    ) -> Vec<Result<T, ImageError>> {
        let count = self.layers.len();
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(count)
            .max(1);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<Result<T, ImageError>>>> =
            (0..count).map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if index >= count {
                            return;
                        }
                        let result = work(index);
                        *slots[index].lock().expect("no panics while holding") = Some(result);
                    }
                });
            }
        });
        slots
            .into_iter()
            .map(|slot| {
                slot.into_inner()
                    .expect("no panics while holding")
                    .unwrap_or_else(|| {
                        Err(ImageError::Internal("a layer worker stopped early".into()))
                    })
            })
            .collect()
    }
}

fn check_platform(
    input: &str,
    wanted: Option<&Platform>,
    actual: &Platform,
    from_index: bool,
) -> Result<(), ImageError> {
    match wanted {
        Some(w) if !from_index && !w.matches(actual) => Err(ImageError::NoMatchingPlatform {
            input: input.to_string(),
            wanted: w.to_string(),
            available: actual.to_string(),
        }),
        _ => Ok(()),
    }
}
