//! Images built in memory: tar layers with any entries (also ones no tool would write),
//! written out as OCI layouts, docker archives or tars of layouts.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// How a layer blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn apply(self, data: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(data, 3).unwrap(),
        }
    }

    fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// A tar layer built entry by entry. Names are written raw (up to 100 bytes), so tests can
/// put `../`, absolute paths and whiteout markers in them; longer names use GNU long names.
#[derive(Default)]
pub struct TarLayer {
    builder: Option<tar::Builder<Vec<u8>>>,
}

impl TarLayer {
    pub fn new() -> TarLayer {
        TarLayer {
            builder: Some(tar::Builder::new(Vec::new())),
        }
    }

    fn raw(
        mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        link: Option<&str>,
        data: &[u8],
    ) -> TarLayer {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        let b = self.builder.as_mut().unwrap();
        if name.len() <= 100 {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name = [0; 100];
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                assert!(l.len() <= 100, "link targets up to 100 bytes");
                gnu.linkname = [0; 100];
                gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            b.append(&h, data).unwrap();
        } else {
            assert!(link.is_none(), "long names only for files");
            b.append_data(&mut h, name, data).unwrap();
        }
        self
    }

    pub fn dir(self, name: &str) -> TarLayer {
        self.raw(name, tar::EntryType::Directory, 0o755, None, b"")
    }
    pub fn file(self, name: &str, data: &[u8]) -> TarLayer {
        self.raw(name, tar::EntryType::Regular, 0o644, None, data)
    }
    pub fn executable(self, name: &str, data: &[u8]) -> TarLayer {
        self.raw(name, tar::EntryType::Regular, 0o755, None, data)
    }
    pub fn symlink(self, name: &str, target: &str) -> TarLayer {
        self.raw(name, tar::EntryType::Symlink, 0o777, Some(target), b"")
    }
    pub fn hardlink(self, name: &str, target: &str) -> TarLayer {
        self.raw(name, tar::EntryType::Link, 0o644, Some(target), b"")
    }
    /// `.wh.NAME` next to `path`.
    pub fn whiteout(self, path: &str) -> TarLayer {
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        let marker = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&marker, b"")
    }
    /// `.wh..wh..opq` inside `dir`.
    pub fn opaque(self, dir: &str) -> TarLayer {
        self.file(&format!("{dir}/.wh..wh..opq"), b"")
    }
    pub fn char_device(self, name: &str) -> TarLayer {
        self.raw(name, tar::EntryType::Char, 0o666, None, b"")
    }
    pub fn fifo(self, name: &str) -> TarLayer {
        self.raw(name, tar::EntryType::Fifo, 0o644, None, b"")
    }

    pub fn into_bytes(mut self) -> Vec<u8> {
        self.builder.take().unwrap().into_inner().unwrap()
    }
}

/// An image: layers and the config facts tests look at.
#[derive(Clone)]
pub struct ImageSpec {
    pub layers: Vec<(Vec<u8>, Compression, String)>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub user: String,
    /// Diff-ids to write into the config instead of the true ones (forged images).
    pub forged_diff_ids: Option<Vec<String>>,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            layers: Vec::new(),
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
            env: vec!["PATH=/usr/bin:/bin".into()],
            entrypoint: Vec::new(),
            labels: Vec::new(),
            user: String::new(),
            forged_diff_ids: None,
        }
    }
}

impl ImageSpec {
    pub fn new() -> ImageSpec {
        ImageSpec::default()
    }

    /// Adds a layer (uncompressed tar bytes) with the history line that made it.
    pub fn layer(mut self, tar: Vec<u8>, compression: Compression, created_by: &str) -> ImageSpec {
        self.layers.push((tar, compression, created_by.into()));
        self
    }

    pub fn platform(mut self, os: &str, arch: &str, variant: Option<&str>) -> ImageSpec {
        self.os = os.into();
        self.architecture = arch.into();
        self.variant = variant.map(str::to_string);
        self
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|(t, _, _)| sha256(t)).collect()
    }

    pub fn config_json(&self) -> Vec<u8> {
        let labels: serde_json::Map<String, serde_json::Value> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        let mut cfg = serde_json::json!({
            "created": "2026-01-02T03:04:05Z",
            "architecture": self.architecture,
            "os": self.os,
            "config": {"Env": self.env, "Entrypoint": self.entrypoint, "Labels": labels, "User": self.user},
            "rootfs": {"type": "layers", "diff_ids": self.forged_diff_ids.clone().unwrap_or_else(|| self.diff_ids())},
            "history": self.layers.iter().map(|(_, _, c)| serde_json::json!({"created_by": c})).collect::<Vec<_>>(),
        });
        if let Some(v) = &self.variant {
            cfg["variant"] = v.clone().into();
        }
        serde_json::to_vec(&cfg).unwrap()
    }
}

/// Writes an OCI image layout.
pub struct LayoutBuilder {
    pub dir: PathBuf,
    entries: Vec<serde_json::Value>,
}

impl LayoutBuilder {
    pub fn new(dir: &Path) -> LayoutBuilder {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        LayoutBuilder {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
        }
    }

    pub fn blob(&self, data: &[u8]) -> (String, u64) {
        let digest = sha256(data);
        let hex = digest.trim_start_matches("sha256:");
        std::fs::write(self.dir.join("blobs/sha256").join(hex), data).unwrap();
        (digest, data.len() as u64)
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// Writes the blobs of one image; returns the manifest descriptor (without annotations).
    pub fn write_image(&self, image: &ImageSpec) -> serde_json::Value {
        let (cfg_digest, cfg_size) = self.blob(&image.config_json());
        let layers: Vec<serde_json::Value> = image
            .layers
            .iter()
            .map(|(tar, c, _)| {
                let (d, s) = self.blob(&c.apply(tar));
                serde_json::json!({"mediaType": c.media_type(), "digest": d, "size": s})
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": cfg_size},
            "layers": layers,
        });
        let (d, s) = self.blob(&serde_json::to_vec(&manifest).unwrap());
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": s})
    }

    /// Adds an image under `tag`; returns its manifest digest.
    pub fn add_image(&mut self, tag: Option<&str>, image: &ImageSpec) -> String {
        let mut desc = self.write_image(image);
        let digest = desc["digest"].as_str().unwrap().to_string();
        if let Some(t) = tag {
            desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": t});
        }
        self.entries.push(desc);
        digest
    }

    /// Adds a multi-platform index under `tag`; returns the index digest.
    pub fn add_index(&mut self, tag: Option<&str>, images: &[ImageSpec]) -> String {
        let manifests: Vec<serde_json::Value> = images
            .iter()
            .map(|img| {
                let mut d = self.write_image(img);
                let mut p = serde_json::json!({"os": img.os, "architecture": img.architecture});
                if let Some(v) = &img.variant {
                    p["variant"] = v.clone().into();
                }
                d["platform"] = p;
                d
            })
            .collect();
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        let (d, s) = self.blob(&serde_json::to_vec(&index).unwrap());
        let mut desc = serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": s});
        if let Some(t) = tag {
            desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": t});
        }
        self.entries.push(desc);
        d
    }

    /// Writes index.json.
    pub fn finish(self) -> PathBuf {
        let index = serde_json::json!({"schemaVersion": 2, "manifests": self.entries});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        self.dir
    }
}

/// Writes a legacy `docker save` archive (`<id>/layer.tar`, `<hex>.json`, manifest.json).
pub fn docker_archive(out: &Path, repo_tag: &str, image: &ImageSpec, gzip_layers: bool) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    let config = image.config_json();
    let config_name = format!("{}.json", sha256(&config).trim_start_matches("sha256:"));
    let mut layer_names = Vec::new();
    for (i, (tar, _, _)) in image.layers.iter().enumerate() {
        let name = format!("{:064x}/layer.tar", i + 1);
        let data = if gzip_layers {
            Compression::Gzip.apply(tar)
        } else {
            tar.clone()
        };
        append(&mut b, &name, &data);
        layer_names.push(name);
    }
    append(&mut b, &config_name, &config);
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_names}]);
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.finish().unwrap();
}

/// Tars a directory (an OCI layout becomes an oci-archive), optionally gzip-compressed.
pub fn tar_dir(dir: &Path, out: &Path, gzip: bool) {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    let bytes = b.into_inner().unwrap();
    let bytes = if gzip {
        Compression::Gzip.apply(&bytes)
    } else {
        bytes
    };
    std::fs::write(out, bytes).unwrap();
}

fn append(b: &mut tar::Builder<std::fs::File>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).unwrap();
}

/// An image with Alpine's release file and requests 2.19.1 (two vulnerabilities in the bundled
/// example advisories, `examples/vulndb/osv`) in its first layer, and EICAR added at
/// `eicar_path` by its second: what the server's scan tests pull.
pub fn requests_and_eicar(eicar_path: &str) -> ImageSpec {
    ImageSpec::new()
        .layer(
            TarLayer::new()
                .file(
                    "etc/os-release",
                    b"ID=alpine\nVERSION_ID=3.20.3\nNAME=\"Alpine Linux\"\n",
                )
                .file(
                    "usr/lib/python3.12/site-packages/requests-2.19.1.dist-info/METADATA",
                    b"Metadata-Version: 2.1\nName: requests\nVersion: 2.19.1\n",
                )
                .into_bytes(),
            Compression::Gzip,
            "base",
        )
        .layer(
            TarLayer::new().file(eicar_path, crate::EICAR).into_bytes(),
            Compression::Gzip,
            "ADD payload",
        )
}
