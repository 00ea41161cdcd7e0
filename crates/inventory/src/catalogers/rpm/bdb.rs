//! Berkeley DB hash files (`/var/lib/rpm/Packages`, RHEL ≤ 8, older SUSE and Amazon Linux):
//! the values of the hash pages that live on overflow pages are the rpm headers.
//! Layouts from Berkeley DB's `db_page.h`; either byte order.

const HASH_MAGIC: u32 = 0x0006_1561;
const HASH_META_PAGE: u8 = 8;
const HASH_PAGE: u8 = 13;
const HASH_UNSORTED_PAGE: u8 = 2;
const OVERFLOW_PAGE: u8 = 7;
const H_OFFPAGE: u8 = 3;
const PAGE_HEADER: usize = 26;

pub(crate) fn is_bdb_hash(db: &[u8]) -> bool {
    db.len() >= 512 && {
        let m = u32::from_le_bytes(db[12..16].try_into().expect("4 bytes"));
        m == HASH_MAGIC || m.swap_bytes() == HASH_MAGIC
    }
}

pub(crate) fn values(db: &[u8], max_total: usize) -> Result<Vec<Vec<u8>>, String> {
    if !is_bdb_hash(db) {
        return Err("not a Berkeley DB hash file".into());
    }
    let swapped = u32::from_le_bytes(db[12..16].try_into().expect("4 bytes")) != HASH_MAGIC;
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        let v = u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?);
        Some(if swapped { v.swap_bytes() } else { v })
    };
    let u16_at = |b: &[u8], at: usize| -> Option<u16> {
        let v = u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?);
        Some(if swapped { v.swap_bytes() } else { v })
    };
    let page_size = u32_at(db, 20).ok_or("short metadata")? as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(format!("unexpected page size {page_size}"));
    }
    if db[24] != 0 {
        return Err("encrypted Berkeley DB files are not supported".into());
    }
    if db[25] != HASH_META_PAGE {
        return Err(format!("not a hash database (page type {})", db[25]));
    }
    let last = u32_at(db, 32).ok_or("short metadata")? as usize;
    let page = |n: usize| db.get(n * page_size..(n + 1) * page_size);
    let mut out = Vec::new();
    let mut total = 0usize;
    for n in 0..=last {
        let Some(p) = page(n) else { break }; // a file shorter than its metadata says
        if p[25] != HASH_PAGE && p[25] != HASH_UNSORTED_PAGE {
            continue;
        }
        let entries = u16_at(p, 20).ok_or("short page")? as usize;
        // Items come in key/value pairs; the values are the odd ones.
        for i in (1..entries).step_by(2) {
            let Some(off) = u16_at(p, PAGE_HEADER + 2 * i).map(usize::from) else {
                break;
            };
            if p.get(off) != Some(&H_OFFPAGE) {
                continue;
            }
            let (Some(first), Some(len)) = (u32_at(p, off + 4), u32_at(p, off + 8)) else {
                continue;
            };
            let value =
                overflow_chain(first as usize, len as usize, &page, &u32_at, &u16_at, last)?;
            total += value.len();
            if total > max_total {
                return Err(format!("more than {max_total} bytes of package headers"));
            }
            out.push(value);
        }
    }
    Ok(out)
}

/// Concatenates an overflow chain, refusing loops, wrong page types and over-long chains.
fn overflow_chain<'d>(
    first: usize,
    len: usize,
    page: &dyn Fn(usize) -> Option<&'d [u8]>,
    u32_at: &dyn Fn(&[u8], usize) -> Option<u32>,
    u16_at: &dyn Fn(&[u8], usize) -> Option<u16>,
    last: usize,
) -> Result<Vec<u8>, String> {
    let mut value = Vec::with_capacity(len.min(1 << 24));
    let mut current = first;
    let mut hops = 0usize;
    while current != 0 {
        hops += 1;
        if hops > last + 1 {
            return Err("overflow page chain loops".into());
        }
        let p = page(current)
            .ok_or_else(|| format!("overflow page {current} beyond the end of the file"))?;
        if p[25] != OVERFLOW_PAGE {
            return Err(format!(
                "page {current} in an overflow chain has type {}",
                p[25]
            ));
        }
        let next = u32_at(p, 16).ok_or("short page")? as usize;
        let chunk = if next == 0 {
            let used = u16_at(p, 22).ok_or("short page")? as usize;
            p.get(PAGE_HEADER..PAGE_HEADER + used)
                .ok_or("overflow length beyond the page")?
        } else {
            &p[PAGE_HEADER..]
        };
        value.extend_from_slice(chunk);
        if value.len() > len.max(1) + p.len() {
            return Err("overflow chain longer than its value".into());
        }
        current = next;
    }
    value.truncate(len);
    Ok(value)
}
