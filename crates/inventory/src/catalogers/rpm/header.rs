//! rpm header blobs, as stored in every rpmdb: a big-endian index count and data length,
//! then 16-byte index entries (tag, type, offset, count), then the data store. Every offset
//! and length is checked against the blob; unknown tags and types are skipped.

use std::collections::HashMap;

pub(crate) const NAME: i32 = 1000;
pub(crate) const VERSION: i32 = 1001;
pub(crate) const RELEASE: i32 = 1002;
pub(crate) const EPOCH: i32 = 1003;
pub(crate) const VENDOR: i32 = 1011;
pub(crate) const LICENSE: i32 = 1014;
pub(crate) const ARCH: i32 = 1022;
pub(crate) const SOURCERPM: i32 = 1044;
pub(crate) const MODULARITYLABEL: i32 = 5096;

const STRING: u32 = 6;
const STRING_ARRAY: u32 = 8;
const I18NSTRING: u32 = 9;
const INT32: u32 = 4;

/// The largest header rpm itself accepts.
const MAX_HEADER: usize = 256 << 20;

/// The tags of one header that Osprey reads.
#[derive(Debug, Default)]
pub(crate) struct Header {
    strings: HashMap<i32, String>,
    ints: HashMap<i32, i64>,
}

impl Header {
    pub(crate) fn string(&self, tag: i32) -> Option<&str> {
        self.strings
            .get(&tag)
            .map(String::as_str)
            .filter(|s| !s.is_empty() && *s != "(none)")
    }
    pub(crate) fn int(&self, tag: i32) -> Option<i64> {
        self.ints.get(&tag).copied()
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

const WANTED: [i32; 9] = [
    NAME,
    VERSION,
    RELEASE,
    EPOCH,
    VENDOR,
    LICENSE,
    ARCH,
    SOURCERPM,
    MODULARITYLABEL,
];

pub(crate) fn parse(blob: &[u8]) -> Result<Header, String> {
    let il = be32(blob, 0).ok_or("header too short")? as usize;
    let dl = be32(blob, 4).ok_or("header too short")? as usize;
    if il == 0 || il > 0xffff || dl > MAX_HEADER {
        return Err(format!("implausible header: {il} entries, {dl} data bytes"));
    }
    let data_start = 8 + il * 16;
    let data = blob
        .get(data_start..data_start + dl)
        .ok_or("header shorter than its data length")?;
    let mut h = Header::default();
    for i in 0..il {
        let e = 8 + i * 16;
        let (tag, kind, offset, count) = (
            be32(blob, e).ok_or("truncated index")? as i32,
            be32(blob, e + 4).ok_or("truncated index")?,
            be32(blob, e + 8).ok_or("truncated index")? as usize,
            be32(blob, e + 12).ok_or("truncated index")? as usize,
        );
        if !WANTED.contains(&tag) || offset >= dl {
            continue;
        }
        let at = &data[offset..];
        match kind {
            STRING | I18NSTRING | STRING_ARRAY => {
                // The first string is the one that matters for every tag read here.
                let end = at
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or("unterminated string")?;
                h.strings
                    .insert(tag, String::from_utf8_lossy(&at[..end]).into_owned());
            }
            INT32 if count >= 1 => {
                if let Some(v) = be32(at, 0) {
                    h.ints.insert(tag, i64::from(v as i32));
                }
            }
            _ => {}
        }
    }
    Ok(h)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a header blob from (tag, type, payload) entries.
    pub(crate) fn blob(entries: &[(i32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, payload) in entries {
            while *kind == INT32 && data.len() % 4 != 0 {
                data.push(0);
            }
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&kind.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            data.extend_from_slice(payload);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    pub(crate) fn s(v: &str) -> Vec<u8> {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        b
    }

    #[test]
    fn reads_tags_and_refuses_bad_offsets() {
        let b = blob(&[
            (NAME, STRING, s("curl")),
            (EPOCH, INT32, 1i32.to_be_bytes().to_vec()),
            (LICENSE, STRING, s("(none)")),
        ]);
        let h = parse(&b).unwrap();
        assert_eq!(h.string(NAME), Some("curl"));
        assert_eq!(h.int(EPOCH), Some(1));
        assert_eq!(h.string(LICENSE), None);
        let mut bad = b.clone();
        bad.truncate(bad.len() - 3);
        assert!(parse(&bad).is_err());
        assert!(parse(&[0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        let mut unterminated = blob(&[(NAME, STRING, b"curl".to_vec())]);
        unterminated.truncate(unterminated.len());
        assert!(parse(&unterminated).is_err());
    }
}
