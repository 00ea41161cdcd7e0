//! Limits on what catalogers read.

/// Bounds for reading package databases and archives from untrusted images.
#[derive(Debug, Clone)]
pub struct InventoryLimits {
    /// Largest package database or manifest read (dpkg status, rpmdb, lock files). Default 256 MiB.
    pub max_metadata_bytes: u64,
    /// Largest binary inspected for Go build info or cargo-auditable data. Default 512 MiB.
    pub max_binary_bytes: u64,
    /// Largest archive (jar, war, egg, wheel) opened. Default 1 GiB.
    pub max_archive_bytes: u64,
    /// Archives inside archives, counting the outer one. Default 16.
    pub max_archive_depth: u32,
    /// Bytes extracted from the nested archives of one outer archive. Default 2 GiB.
    pub max_nested_bytes: u64,
    /// Entries looked at in one archive. Default 100,000.
    pub max_archive_entries: usize,
}

impl Default for InventoryLimits {
    fn default() -> Self {
        InventoryLimits {
            max_metadata_bytes: 256 << 20,
            max_binary_bytes: 512 << 20,
            max_archive_bytes: 1 << 30,
            max_archive_depth: 16,
            max_nested_bytes: 2 << 30,
            max_archive_entries: 100_000,
        }
    }
}
