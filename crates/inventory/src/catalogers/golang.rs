//! Go binaries: the build information the Go linker embeds (`go version -m`): toolchain,
//! main module, dependencies with versions and replacements, build settings.
//!
//! Read here because no crate does: the `\xff Go buildinf:` header is found by its magic (the
//! same for ELF, PE and Mach-O), then either the inline strings of Go ≥ 1.18 or, for older
//! binaries, pointers into the data segment resolved through the object file's segments.

use object::{Object, ObjectSegment};
use osprey_model::{Location, Package, PackageType};

use super::{Cataloger, FileRef, packages};
use crate::analysis::Fact;
use crate::limits::InventoryLimits;

const MAGIC: &[u8] = b"\xff Go buildinf:";

/// Whether a file may be a compiled program worth opening: executable and not tiny.
pub(crate) fn is_program_candidate(file: &FileRef<'_>) -> bool {
    file.is_executable() && file.size >= 4096
}

/// Whether bytes start like an executable format Go and Rust produce.
pub(crate) fn is_binary(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
        || data.starts_with(b"MZ")
        || data.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
        || data.starts_with(&[0xce, 0xfa, 0xed, 0xfe])
        || data.starts_with(&[0xca, 0xfe, 0xba, 0xbe])
}

pub(crate) struct GoBinary;

impl Cataloger for GoBinary {
    fn name(&self) -> &'static str {
        "go-binary"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        is_program_candidate(file)
    }
    fn max_size(&self, limits: &InventoryLimits) -> u64 {
        limits.max_binary_bytes
    }
    fn heavy(&self) -> bool {
        true
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        if !is_binary(data) {
            return Ok(None);
        }
        let Some(info) = build_info(data)? else {
            return Ok(None);
        };
        Ok(packages(self.name(), info.packages(&file.absolute())))
    }
}

/// The decoded build information.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct BuildInfo {
    pub go_version: String,
    /// The main package's import path (the only identity of binaries built in GOPATH mode,
    /// as Debian builds them).
    pub path: Option<String>,
    pub main: Option<(String, String)>,
    /// (path, version, replaced module path)
    pub deps: Vec<(String, String, Option<String>)>,
    pub settings: Vec<(String, String)>,
}

pub(crate) fn build_info(data: &[u8]) -> Result<Option<BuildInfo>, String> {
    let Some(start) = find_header(data) else {
        return Ok(None);
    };
    let header = &data[start..];
    if header.len() < 32 {
        return Err("truncated Go build info header".into());
    }
    let ptr_size = header[14] as usize;
    let flags = header[15];
    let (version, modinfo) = if flags & 2 != 0 {
        let mut rest = &header[32..];
        let version = read_varint_bytes(&mut rest).ok_or("bad Go version string")?;
        let modinfo = read_varint_bytes(&mut rest).ok_or("bad Go module info")?;
        (version, modinfo)
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(format!("Go build info: pointer size {ptr_size}"));
        }
        let big_endian = flags & 1 != 0;
        let file = object::File::parse(data).map_err(|e| format!("Go binary: {e}"))?;
        let read_ptr = |b: &[u8]| -> u64 {
            match (ptr_size, big_endian) {
                (4, false) => u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as u64,
                (4, true) => u32::from_be_bytes(b[..4].try_into().expect("4 bytes")) as u64,
                (_, false) => u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
                (_, true) => u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
            }
        };
        let read_string = |addr: u64| -> Option<Vec<u8>> {
            let hdr = read_at(&file, data, addr, 2 * ptr_size as u64)?;
            let (ptr, len) = (read_ptr(hdr), read_ptr(&hdr[ptr_size..]));
            if len > 1 << 24 {
                return None;
            }
            read_at(&file, data, ptr, len).map(<[u8]>::to_vec)
        };
        let version = read_string(read_ptr(&header[16..])).unwrap_or_default();
        let modinfo = read_string(read_ptr(&header[16 + ptr_size..])).unwrap_or_default();
        (version, modinfo)
    };
    Ok(Some(parse_modinfo(
        &String::from_utf8_lossy(&version),
        &modinfo,
    )))
}

/// The header is 16-byte aligned in the data section; the first aligned match wins.
fn find_header(data: &[u8]) -> Option<usize> {
    memchr::memmem::find_iter(data, MAGIC)
        .find(|off| off % 16 == 0)
        .or_else(|| memchr::memmem::find(data, MAGIC))
}

/// Bytes at a virtual address, through the segment that maps it.
fn read_at<'d>(file: &object::File<'d>, data: &'d [u8], addr: u64, len: u64) -> Option<&'d [u8]> {
    for seg in file.segments() {
        let (start, size) = (seg.address(), seg.size());
        if addr >= start && addr.checked_add(len)? <= start.checked_add(size)? {
            let (file_off, file_size) = seg.file_range();
            let rel = addr - start;
            if rel.checked_add(len)? > file_size {
                return None;
            }
            let from = usize::try_from(file_off.checked_add(rel)?).ok()?;
            let to = from.checked_add(usize::try_from(len).ok()?)?;
            return data.get(from..to);
        }
    }
    None
}

fn read_varint_bytes(buf: &mut &[u8]) -> Option<Vec<u8>> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    if len > buf.len() {
        return None;
    }
    let (s, rest) = buf.split_at(len);
    *buf = rest;
    Some(s.to_vec())
}

/// Parses the module information (`path`, `mod`, `dep`, `=>`, `build` lines).
fn parse_modinfo(go_version: &str, modinfo: &[u8]) -> BuildInfo {
    // Go ≥ 1.18 wraps the text in 16-byte binary sentinels: strip them before decoding.
    let raw = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        modinfo
    };
    let text = String::from_utf8_lossy(raw);
    let mut info = BuildInfo {
        go_version: go_version.to_string(),
        ..BuildInfo::default()
    };
    for line in text.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        match parts.as_slice() {
            ["path", path] => info.path = Some(path.to_string()),
            ["mod", path, version, ..] => info.main = Some((path.to_string(), version.to_string())),
            ["dep", path, version, ..] => {
                info.deps
                    .push((path.to_string(), version.to_string(), None))
            }
            ["=>", path, version, ..] => {
                if let Some(last) = info.deps.last_mut() {
                    let original = std::mem::replace(&mut last.0, path.to_string());
                    last.1 = version.to_string();
                    last.2 = Some(original);
                } else if let Some(main) = info.main.as_mut() {
                    main.1 = version.to_string();
                }
            }
            ["build", setting] => {
                if let Some((k, v)) = setting.split_once('=') {
                    info.settings
                        .push((k.to_string(), v.trim_matches('"').to_string()));
                }
            }
            _ => {}
        }
    }
    info
}

impl BuildInfo {
    /// A main-module version set with `-ldflags "-X main.version=v1.2.3"` (or
    /// `<module path>/…​.Version`), for binaries built outside a tagged checkout.
    fn ldflags_version(&self, main_path: &str) -> Option<String> {
        let flags = self
            .settings
            .iter()
            .find(|(k, _)| k == "-ldflags")?
            .1
            .as_str();
        let mut tokens = flags.split_whitespace();
        while let Some(t) = tokens.next() {
            let assignment = if t == "-X" {
                tokens.next()?
            } else {
                t.strip_prefix("-X=").unwrap_or("")
            };
            let Some((key, value)) = assignment.split_once('=') else {
                continue;
            };
            let (prefix, last) = key.rsplit_once('.').unwrap_or(("", key));
            let is_version = matches!(
                last.to_ascii_lowercase().as_str(),
                "version" | "gitversion" | "buildversion"
            );
            if is_version
                && (prefix == "main" || prefix.starts_with(main_path))
                && !value.is_empty()
            {
                return Some(value.trim_matches(['\'', '"']).to_string());
            }
        }
        None
    }

    pub(crate) fn packages(&self, location: &str) -> Vec<Package> {
        let here = Location::at(location.to_string());
        let toolchain = self.go_version.split_whitespace().next().unwrap_or("");
        let mut out = Vec::new();
        let mut push = |name: &str, version: &str, extra: Option<(&str, String)>| {
            let mut p = Package::new(PackageType::GoModule, name, version, "go-binary");
            if !toolchain.is_empty() {
                p.properties
                    .insert("go.toolchain".into(), toolchain.to_string());
            }
            if let Some((k, v)) = extra {
                p.properties.insert(k.into(), v);
            }
            p.locations.push(here.clone());
            out.push(p);
        };
        if let Some((path, version)) = &self.main {
            let version = match version.as_str() {
                "(devel)" | "" => self.ldflags_version(path).unwrap_or_default(),
                v => v.to_string(),
            };
            push(path, &version, Some(("go.main-module", "true".into())));
        } else if let Some(path) = &self.path {
            // No module information (a GOPATH build, as Debian makes them): the binary's own
            // package, named by its repository root where the host's layout is known, and no
            // version — none is recorded, and Osprey does not guess one from strings.
            push(
                repository_root(path),
                "",
                Some(("go.main-package", path.clone())),
            );
        }
        for (path, version, replaced) in &self.deps {
            push(path, version, replaced.clone().map(|r| ("go.replaces", r)));
        }
        if let Some(v) = toolchain
            .strip_prefix("go")
            .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        {
            push("stdlib", &format!("v{v}"), None);
        }
        out
    }
}

/// The repository root of an import path on hosts with a fixed layout
/// (`github.com/docker/distribution/cmd/registry` → `github.com/docker/distribution`);
/// other paths are returned whole.
fn repository_root(path: &str) -> &str {
    const THREE: &[&str] = &[
        "github.com/",
        "gitlab.com/",
        "bitbucket.org/",
        "gitee.com/",
        "golang.org/x/",
        "codeberg.org/",
    ];
    if THREE.iter().any(|h| path.starts_with(h)) {
        let mut slashes = path.match_indices('/').map(|(i, _)| i);
        if let Some(end) = slashes.nth(2) {
            return &path[..end];
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_roots() {
        assert_eq!(
            repository_root("github.com/docker/distribution/cmd/registry"),
            "github.com/docker/distribution"
        );
        assert_eq!(
            repository_root("golang.org/x/tools/cmd/stringer"),
            "golang.org/x/tools"
        );
        assert_eq!(repository_root("github.com/x/y"), "github.com/x/y");
        assert_eq!(
            repository_root("k8s.io/kubernetes/cmd/kubelet"),
            "k8s.io/kubernetes/cmd/kubelet"
        );
    }

    #[test]
    fn modinfo_with_replacement_and_ldflags() {
        let text = "path\tgithub.com/x/app\nmod\tgithub.com/x/app\t(devel)\t\ndep\tgolang.org/x/xerrors\tv0.0.0-2020\th1:abc\n=>\tgithub.com/golang/xerrors\tv0.0.0-2022\th1:def\nbuild\t-ldflags=\"-s -X main.version=v1.0.0\"\n";
        let info = parse_modinfo("go1.22.1", text.as_bytes());
        let pkgs = info.packages("/app");
        let got: Vec<_> = pkgs
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("github.com/x/app", "v1.0.0"),
                ("github.com/golang/xerrors", "v0.0.0-2022"),
                ("stdlib", "v1.22.1")
            ]
        );
        assert_eq!(pkgs[1].properties["go.replaces"], "golang.org/x/xerrors");
    }

    #[test]
    fn sentinels_are_stripped_as_bytes() {
        let mut wrapped = vec![
            0x30, 0x77, 0xaf, 0x0c, 0x92, 0x74, 0x08, 0x02, 0x41, 0xe1, 0xc1, 0x07, 0xe6, 0xd6,
            0x18, 0xe6,
        ];
        wrapped.extend_from_slice(
            b"path\tgithub.com/docker/distribution/cmd/registry\nbuild\tGOOS=linux\n",
        );
        wrapped.extend_from_slice(&[
            0xf9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72, 0x00, 0x82, 0x42, 0x10, 0x41, 0x16,
            0xd8, 0xf2,
        ]);
        let info = parse_modinfo("go1.19.8", &wrapped);
        assert_eq!(
            info.path.as_deref(),
            Some("github.com/docker/distribution/cmd/registry")
        );
    }

    #[test]
    fn varints() {
        let mut b: &[u8] = &[3, b'a', b'b', b'c', 0x80, 0x01];
        assert_eq!(read_varint_bytes(&mut b).as_deref(), Some(&b"abc"[..]));
        assert_eq!(read_varint_bytes(&mut b), None);
    }
}
