//! Limits on everything read from an untrusted image. Exceeding a per-file or per-image limit
//! is reported as a [`crate::Notice`] and the rest of the image is still read; exceeding a
//! structural limit (a manifest larger than any real one) is an error about that input.

/// Limits applied while opening and walking an image. `Default` values are documented per field.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes of one file handed to analysis; the rest of a larger file is skipped and the file
    /// reported as truncated. Default 256 MiB.
    pub max_file_read: u64,
    /// Entries read across all layers of one walk; later entries are skipped and reported.
    /// Default 2,000,000.
    pub max_files: u64,
    /// Bytes in one path; longer paths are skipped and reported. Default 4,096 (PATH_MAX).
    pub max_path_len: usize,
    /// Symbolic links followed while resolving one path. Default 40 (Linux's MAXSYMLINKS).
    pub max_link_depth: u32,
    /// Bytes of a manifest, index, `index.json` or docker `manifest.json`. Default 4 MiB.
    pub max_manifest_bytes: u64,
    /// Bytes of an image configuration blob. Default 32 MiB.
    pub max_config_bytes: u64,
    /// Layers in one image. Default 1,000.
    pub max_layers: usize,
    /// Nested image indexes followed. Default 4.
    pub max_index_depth: u32,
    /// Members of a docker-archive or oci-archive tar. Default 100,000.
    pub max_archive_members: u64,
    /// Bytes of one layer once decompressed (a decompression bomb is an error about the
    /// layer, not hours of work). Default 64 GiB.
    pub max_layer_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_read: 256 << 20,
            max_files: 2_000_000,
            max_path_len: 4096,
            max_link_depth: 40,
            max_manifest_bytes: 4 << 20,
            max_config_bytes: 32 << 20,
            max_layers: 1000,
            max_index_depth: 4,
            max_archive_members: 100_000,
            max_layer_bytes: 64 << 30,
        }
    }
}
