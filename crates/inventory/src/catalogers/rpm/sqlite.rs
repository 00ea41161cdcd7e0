//! A read-only reader of SQLite database files, enough to list the rows of one table
//! (`rpmdb.sqlite`'s `Packages`, RHEL ≥ 9, Fedora ≥ 33, CBL-Mariner, Amazon Linux 2023).
//!
//! Written here rather than linking SQLite: the file is untrusted, only read, and only one
//! table of two columns is needed; walking B-tree pages of an in-memory copy is small, cannot
//! execute anything the file says, and keeps the only libsqlite3 in the binary for the store.
//! Layout from the SQLite file format document: 100-byte header, B-tree pages, record format.

use std::collections::HashSet;

const MAGIC: &[u8] = b"SQLite format 3\0";
const LEAF_TABLE: u8 = 0x0d;
const INTERIOR_TABLE: u8 = 0x05;

pub(crate) fn is_sqlite(db: &[u8]) -> bool {
    db.starts_with(MAGIC)
}

struct File<'d> {
    db: &'d [u8],
    page_size: usize,
    usable: usize,
    max_total: usize,
}

/// A column value.
#[derive(Debug, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
    Other,
}

/// The values of column `column` of every row of table `table`.
pub(crate) fn table_column(
    db: &[u8],
    table: &str,
    column: usize,
    max_total: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let file = File::open(db, max_total)?;
    let mut root = None;
    file.scan(1, &mut |payload| {
        let cols = record(payload)?;
        if matches!(cols.first(), Some(Value::Text(b"table")))
            && matches!(cols.get(1), Some(Value::Text(n)) if *n == table.as_bytes())
            && let Some(Value::Int(r)) = cols.get(3)
        {
            root = Some(*r);
        }
        Ok(())
    })?;
    let root = root.ok_or_else(|| format!("no table {table:?}"))?;
    let root = usize::try_from(root).map_err(|_| "bad root page".to_string())?;
    let mut out = Vec::new();
    let mut total = 0usize;
    file.scan(root, &mut |payload| {
        let cols = record(payload)?;
        if let Some(Value::Blob(b) | Value::Text(b)) = cols.get(column) {
            total += b.len();
            if total > max_total {
                return Err(format!("table larger than {max_total} bytes"));
            }
            out.push(b.to_vec());
        }
        Ok(())
    })?;
    Ok(out)
}

impl<'d> File<'d> {
    fn open(db: &'d [u8], max_total: usize) -> Result<File<'d>, String> {
        if db.len() < 100 || !is_sqlite(db) {
            return Err("not a SQLite database".into());
        }
        let raw = u16::from_be_bytes([db[16], db[17]]) as usize;
        let page_size = if raw == 1 { 65536 } else { raw };
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(format!("bad page size {raw}"));
        }
        let usable = page_size - db[20] as usize;
        if usable < 480 {
            return Err("bad reserved space".into());
        }
        Ok(File {
            db,
            page_size,
            usable,
            max_total,
        })
    }

    fn page(&self, n: usize) -> Result<&'d [u8], String> {
        if n == 0 {
            return Err("page 0 referenced".into());
        }
        self.db
            .get((n - 1) * self.page_size..n * self.page_size)
            .ok_or_else(|| format!("page {n} beyond the end of the file"))
    }

    /// Visits every row payload of the table B-tree rooted at `root`.
    fn scan(
        &self,
        root: usize,
        visit: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut stack = vec![root];
        let mut seen = HashSet::new();
        while let Some(n) = stack.pop() {
            if !seen.insert(n) || seen.len() > self.db.len() / self.page_size + 1 {
                return Err(format!("B-tree page {n} visited twice"));
            }
            let page = self.page(n)?;
            let hdr = if n == 1 { 100 } else { 0 };
            let kind = *page.get(hdr).ok_or("short page")?;
            let cells = be16(page, hdr + 3)? as usize;
            match kind {
                INTERIOR_TABLE => {
                    // Children left to right, pushed in reverse so rows come out in rowid order.
                    let mut children = Vec::with_capacity(cells + 1);
                    for i in 0..cells {
                        let ptr = be16(page, hdr + 12 + 2 * i)? as usize;
                        children.push(be32(page, ptr)? as usize);
                    }
                    children.push(be32(page, hdr + 8)? as usize);
                    stack.extend(children.into_iter().rev());
                }
                LEAF_TABLE => {
                    for i in 0..cells {
                        let ptr = be16(page, hdr + 8 + 2 * i)? as usize;
                        let payload = self.cell_payload(page, ptr)?;
                        visit(&payload)?;
                    }
                }
                other => {
                    return Err(format!(
                        "page {n}: not a table B-tree page (type {other:#x})"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The payload of a leaf table cell, following overflow pages.
    fn cell_payload(&self, page: &[u8], at: usize) -> Result<Vec<u8>, String> {
        let (len, n1) = varint(page.get(at..).ok_or("cell beyond the page")?)?;
        let (_rowid, n2) = varint(page.get(at + n1..).ok_or("cell beyond the page")?)?;
        let len = usize::try_from(len).map_err(|_| "bad payload length")?;
        if len > self.max_total {
            return Err(format!("payload of {len} bytes"));
        }
        let start = at + n1 + n2;
        let u = self.usable;
        let x = u - 35;
        let local = if len <= x {
            len
        } else {
            let m = ((u - 12) * 32 / 255) - 23;
            let k = m + ((len - m) % (u - 4));
            if k <= x { k } else { m }
        };
        let mut out = page
            .get(start..start + local)
            .ok_or("cell payload beyond the page")?
            .to_vec();
        if local < len {
            let mut next = be32(page, start + local)? as usize;
            let mut hops = 0;
            while out.len() < len {
                hops += 1;
                if next == 0 || hops > self.db.len() / self.page_size {
                    return Err("broken overflow chain".into());
                }
                let p = self.page(next)?;
                let take = (len - out.len()).min(u - 4);
                out.extend_from_slice(p.get(4..4 + take).ok_or("short overflow page")?);
                next = be32(p, 0)? as usize;
            }
        }
        Ok(out)
    }
}

fn be16(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| "offset beyond the page".into())
}

fn be32(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "offset beyond the page".into())
}

/// SQLite's variable-length integer: 1–9 bytes, big-endian groups of 7 bits (8 in the 9th).
fn varint(b: &[u8]) -> Result<(u64, usize), String> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(i).ok_or("truncated varint")?;
        if i == 8 {
            return Ok(((v << 8) | u64::from(byte), 9));
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    unreachable!("the loop returns by the 9th byte")
}

/// The columns of a record.
pub(crate) fn record(payload: &[u8]) -> Result<Vec<Value<'_>>, String> {
    let (header_len, mut pos) = varint(payload)?;
    let header_len = usize::try_from(header_len).map_err(|_| "bad record header")?;
    if header_len > payload.len() {
        return Err("record header beyond the payload".into());
    }
    let mut types = Vec::new();
    while pos < header_len {
        let (t, n) = varint(&payload[pos..header_len])?;
        types.push(t);
        pos += n;
    }
    let mut body = header_len;
    let mut out = Vec::with_capacity(types.len());
    for t in types {
        let size = match t {
            0 | 8 | 9 => 0,
            1..=4 => t as usize,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return Err("reserved serial type".into()),
            n => ((n - 12) / 2) as usize,
        };
        let bytes = payload
            .get(body..body + size)
            .ok_or("record value beyond the payload")?;
        body += size;
        out.push(match t {
            0 => Value::Null,
            1..=6 => {
                let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
                for &b in bytes {
                    v = (v << 8) | i64::from(b);
                }
                Value::Int(v)
            }
            8 => Value::Int(0),
            9 => Value::Int(1),
            n if n >= 12 && n % 2 == 0 => Value::Blob(bytes),
            n if n >= 13 => Value::Text(bytes),
            _ => Value::Other,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interior_pages_and_overflow_chains() {
        let db = include_bytes!("tests/overflow.sqlite");
        let blobs = table_column(db, "Packages", 1, 1 << 20).unwrap();
        assert_eq!(blobs.len(), 121);
        let names: Vec<String> = blobs
            .iter()
            .map(|b| {
                super::super::header::parse(b)
                    .unwrap()
                    .string(super::super::header::NAME)
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(names[0], "pkg000");
        assert_eq!(names[119], "pkg119");
        assert_eq!(names[120], "big");
        assert!(blobs[120].len() > 3000);
        assert_eq!(
            table_column(db, "Missing", 1, 1 << 20).unwrap_err(),
            "no table \"Missing\""
        );
        // Truncation and loops are errors, never panics or hangs.
        for cut in [100, 600, 1500, db.len() / 2, db.len() - 1] {
            let _ = table_column(&db[..cut], "Packages", 1, 1 << 20);
        }
        // An interior page whose right-most child is itself: a loop, reported as an error.
        let interior = (2..=db.len() / 512)
            .find(|n| db[(n - 1) * 512] == INTERIOR_TABLE)
            .expect("the table has interior pages");
        let mut looped = db.to_vec();
        let at = (interior - 1) * 512 + 8;
        looped[at..at + 4].copy_from_slice(&(interior as u32).to_be_bytes());
        assert!(
            table_column(&looped, "Packages", 1, 1 << 20)
                .unwrap_err()
                .contains("visited twice")
        );
        assert!(
            table_column(db, "Packages", 1, 1000).is_err(),
            "the size limit holds"
        );
    }

    #[test]
    fn varints_and_records() {
        assert_eq!(varint(&[0x05]).unwrap(), (5, 1));
        assert_eq!(varint(&[0x81, 0x00]).unwrap(), (128, 2));
        assert!(varint(&[0x81]).is_err());
        // header: len 3, types [1 (int8), 17 (text of 2)]; body: -2, "hi"
        let rec = [3u8, 1, 17, 0xfe, b'h', b'i'];
        assert_eq!(record(&rec).unwrap(), [Value::Int(-2), Value::Text(b"hi")]);
        assert!(record(&[5, 1]).is_err());
        assert!(table_column(b"not sqlite", "Packages", 1, 1 << 20).is_err());
    }
}
