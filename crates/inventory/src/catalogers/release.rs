//! OS release files, kept whole for OS detection at merge time (when links like
//! `/etc/os-release -> ../usr/lib/os-release` can be resolved across layers).

use super::{Cataloger, FileRef};
use crate::analysis::Fact;
use crate::limits::InventoryLimits;

pub(crate) const RELEASE_FILES: &[&str] = &[
    "etc/os-release",
    "usr/lib/os-release",
    "etc/alpine-release",
    "etc/debian_version",
    "etc/redhat-release",
    "etc/centos-release",
    "etc/fedora-release",
    "etc/system-release",
    "etc/oracle-release",
    "etc/rocky-release",
    "etc/almalinux-release",
    "etc/photon-release",
    "etc/mariner-release",
    "etc/SuSE-release",
    "etc/lsb-release",
];

pub(crate) struct Release;

impl Cataloger for Release {
    fn name(&self) -> &'static str {
        "os-release"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        RELEASE_FILES.contains(&file.path)
    }
    fn max_size(&self, _: &InventoryLimits) -> u64 {
        64 * 1024
    }
    fn parse(
        &self,
        _: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        Ok(Some(Fact::Release {
            content: String::from_utf8_lossy(data).into_owned(),
        }))
    }
}
