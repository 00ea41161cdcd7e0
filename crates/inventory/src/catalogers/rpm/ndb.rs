//! rpm's own "ndb" format (`/usr/lib/sysimage/rpm/Packages.db`, SUSE): a header, pages of
//! 16-byte slots naming each package's block, and blocks holding a blob header and the rpm
//! header. Little-endian; layout from rpm's `lib/backend/ndb/rpmpkg.c`.

const HEADER_MAGIC: &[u8; 4] = b"RpmP";
const SLOT_MAGIC: &[u8; 4] = b"Slot";
const BLOB_MAGIC: &[u8; 4] = b"BlbS";
const SLOTS_PER_PAGE: usize = 4096 / 16;
const MAX_SLOT_PAGES: usize = 2048;

pub(crate) fn is_ndb(db: &[u8]) -> bool {
    db.starts_with(HEADER_MAGIC)
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn blobs(db: &[u8], max_total: usize) -> Result<Vec<Vec<u8>>, String> {
    if !is_ndb(db) {
        return Err("not an rpm ndb database".into());
    }
    let version = le32(db, 4).ok_or("short header")?;
    let slot_pages = le32(db, 12).ok_or("short header")? as usize;
    if version != 0 || slot_pages == 0 || slot_pages > MAX_SLOT_PAGES {
        return Err(format!(
            "unsupported ndb header (version {version}, {slot_pages} slot pages)"
        ));
    }
    // The header takes the room of the first two slots.
    let slots = slot_pages * SLOTS_PER_PAGE - 2;
    let mut out = Vec::new();
    let mut total = 0usize;
    for i in 0..slots {
        let at = 32 + i * 16;
        let slot = db
            .get(at..at + 16)
            .ok_or("slot pages beyond the end of the file")?;
        if &slot[0..4] != SLOT_MAGIC {
            return Err(format!("bad magic in slot {i}"));
        }
        let pkg = le32(slot, 4).expect("16-byte slot");
        if pkg == 0 {
            continue;
        }
        let block = le32(slot, 8).expect("16-byte slot") as usize * 16;
        let head = db
            .get(block..block + 16)
            .ok_or_else(|| format!("package {pkg}: block beyond the end of the file"))?;
        if &head[0..4] != BLOB_MAGIC || le32(head, 4) != Some(pkg) {
            return Err(format!("package {pkg}: bad blob header"));
        }
        let len = le32(head, 12).expect("16 bytes") as usize;
        total += len;
        if total > max_total {
            return Err(format!("more than {max_total} bytes of package headers"));
        }
        let blob = db
            .get(block + 16..block + 16 + len)
            .ok_or_else(|| format!("package {pkg}: blob beyond the end of the file"))?;
        out.push(blob.to_vec());
    }
    Ok(out)
}
