//! Random access to the members of a tar archive (a docker-archive or an oci-archive).
//! A plain tar is indexed in place, seeking over member data; a compressed one is first
//! decompressed once into a temporary file, because gzip and zstd cannot seek.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use crate::error::ImageError;
use crate::layer::Compression;
use crate::limits::Limits;
use crate::path::{clean_path, join, parent};

#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Link(String),
}

/// The members of one tar archive, addressable by clean path.
#[derive(Debug)]
pub(crate) struct TarMembers {
    input: String,
    tar_path: PathBuf,
    members: HashMap<String, Member>,
    _spool: Option<tempfile::TempPath>,
}

impl TarMembers {
    pub(crate) fn open(
        path: &Path,
        limits: &Limits,
        temp_dir: Option<&Path>,
    ) -> Result<TarMembers, ImageError> {
        let input = path.display().to_string();
        let file = File::open(path).map_err(|e| ImageError::io(path, e))?;
        if file
            .metadata()
            .map_err(|e| ImageError::io(path, e))?
            .is_dir()
        {
            return Err(ImageError::malformed(
                &input,
                "is a directory, expected a tar archive",
            ));
        }
        let mut reader = BufReader::new(file);
        let head = reader.fill_buf().map_err(|e| ImageError::io(path, e))?;
        let compression =
            Compression::detect(head).map_err(|r| ImageError::malformed(&input, r))?;
        let (tar_path, spool) = match compression {
            Compression::None => (path.to_path_buf(), None),
            c => {
                let spool = spool(reader, c, &input, temp_dir)?;
                (spool.to_path_buf(), Some(spool))
            }
        };
        let members = index(&tar_path, &input, limits)?;
        Ok(TarMembers {
            input,
            tar_path,
            members,
            _spool: spool,
        })
    }

    pub(crate) fn input(&self) -> &str {
        &self.input
    }

    /// Whether a member exists (after following links).
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.locate(name).is_ok()
    }

    fn locate(&self, name: &str) -> Result<(u64, u64), ImageError> {
        let mut name = clean_path(name)
            .map_err(|_| ImageError::malformed(&self.input, format!("bad member name {name:?}")))?;
        for _ in 0..16 {
            match self.members.get(&name) {
                Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                Some(Member::Link(target)) => name = target.clone(),
                None => {
                    return Err(ImageError::malformed(
                        &self.input,
                        format!("archive has no member {name:?}"),
                    ));
                }
            }
        }
        Err(ImageError::malformed(
            &self.input,
            format!("member {name:?}: too many links"),
        ))
    }

    /// The size of a member (after following links).
    pub(crate) fn member_size(&self, name: &str) -> Result<u64, ImageError> {
        Ok(self.locate(name)?.1)
    }

    /// Opens a member for reading; returns the reader and the member's size.
    pub(crate) fn open_member(
        &self,
        name: &str,
    ) -> Result<(Box<dyn Read + Send>, u64), ImageError> {
        let (offset, size) = self.locate(name)?;
        let mut f = File::open(&self.tar_path).map_err(|e| ImageError::io(&self.tar_path, e))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| ImageError::io(&self.tar_path, e))?;
        Ok((
            Box::new(BufReader::with_capacity(256 * 1024, f.take(size))),
            size,
        ))
    }

    /// Reads a small member whole, refusing members over `limit` bytes.
    pub(crate) fn read_member(&self, name: &str, limit: u64) -> Result<Vec<u8>, ImageError> {
        let (mut r, size) = self.open_member(name)?;
        if size > limit {
            return Err(ImageError::malformed(
                format!("{}: {name}", self.input),
                format!("{size} bytes, over the limit of {limit}"),
            ));
        }
        let mut buf = Vec::with_capacity(size as usize);
        r.read_to_end(&mut buf)
            .map_err(|e| ImageError::from_io(&format!("{}: {name}", self.input), e))?;
        Ok(buf)
    }
}

fn spool(
    reader: BufReader<File>,
    compression: Compression,
    input: &str,
    temp_dir: Option<&Path>,
) -> Result<tempfile::TempPath, ImageError> {
    let tmp = match temp_dir {
        Some(d) => tempfile::NamedTempFile::new_in(d),
        None => tempfile::NamedTempFile::new(),
    }
    .map_err(|e| ImageError::Internal(format!("cannot create a temporary file: {e}")))?;
    let (file, path) = tmp.into_parts();
    let mut out = io::BufWriter::new(file);
    let copied = match compression {
        Compression::Gzip => io::copy(&mut MultiGzDecoder::new(reader), &mut out),
        Compression::Zstd => {
            zstd::Decoder::with_buffer(reader).and_then(|mut d| io::copy(&mut d, &mut out))
        }
        Compression::None => unreachable!("only compressed archives are spooled"),
    };
    copied.map_err(|e| ImageError::from_io(input, e))?;
    io::Write::flush(&mut out).map_err(|e| ImageError::Internal(format!("temporary file: {e}")))?;
    Ok(path)
}

fn index(
    tar_path: &Path,
    input: &str,
    limits: &Limits,
) -> Result<HashMap<String, Member>, ImageError> {
    let file = File::open(tar_path).map_err(|e| ImageError::io(tar_path, e))?;
    let mut archive = tar::Archive::new(file);
    let entries = archive
        .entries_with_seek()
        .map_err(|e| ImageError::from_tar(input, e))?;
    let mut members = HashMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| ImageError::from_tar(input, e))?;
        if members.len() as u64 >= limits.max_archive_members {
            return Err(ImageError::malformed(
                input,
                format!("more than {} archive members", limits.max_archive_members),
            ));
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Ok(name) = clean_path(&raw) else { continue };
        let link = entry
            .link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let member = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Member::File {
                offset: entry.raw_file_position(),
                size: entry.size(),
            },
            // docker save (25+) links legacy names to blobs/: `<id>/layer.tar -> ../../blobs/…`.
            tar::EntryType::Symlink => match link.map(|l| resolve_link(&name, &l)) {
                Some(Some(target)) => Member::Link(target),
                _ => continue,
            },
            tar::EntryType::Link => match link.map(|l| clean_path(&l)) {
                Some(Ok(target)) => Member::Link(target),
                _ => continue,
            },
            _ => continue,
        };
        members.insert(name, member);
    }
    if members.is_empty() {
        return Err(ImageError::malformed(
            input,
            "not a tar archive, or an empty one",
        ));
    }
    Ok(members)
}

fn resolve_link(member: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        clean_path(target).ok()
    } else {
        clean_path(&join(parent(member), target)).ok()
    }
}
