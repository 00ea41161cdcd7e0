//! What detection has already seen, so that a batch the API server retries, or the bus
//! redelivers, adds nothing: a 128-bit key per event (cluster, audit id, stage) and per batch
//! (cluster, content digest), held in memory in a few generations of bounded size.
//!
//! A round looks its events up here (no database query per event), and stores the keys it
//! adds as one row per cluster in its own transaction, tagged with the generation that holds
//! them, so the keys are durable exactly when the round's findings and cursor are. When the
//! newest generation is full a new one starts; the oldest is dropped (and its rows with it)
//! beyond `GENERATIONS`, or once it is older than the dedupe window. The window is therefore
//! the last `max_keys` keys or the dedupe time, whichever is shorter: with the default, about
//! three minutes of a cluster sending 5,000 events/s, half an hour at 500 — longer than the
//! API server's retries (seconds to a few minutes); a faster stream wants `--dedupe-events`
//! raised.
//!
//! A batch seen before is skipped whole, without decoding; an event seen before (a batch split
//! differently, an event logged twice in one batch) is skipped alone.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use osprey_store::{SEEN_KEY_BYTES, SeenKeys};
use xxhash_rust::xxh3::Xxh3Default;

/// A detected event's or batch's key.
pub type Key = u128;

/// Generations held in memory: dropping the oldest forgets a quarter of the window at once.
const GENERATIONS: usize = 4;

/// Keys remembered by default: four generations of 229,376 keys, in one hash table of 2^20
/// buckets (about 17 MB) and a list per generation (about 3.5 MB each).
pub const DEFAULT_MAX_KEYS: usize = GENERATIONS * 229_376;

/// Keys are xxh3 digests already, so a table of keys takes their low 64 bits as the hash
/// instead of hashing 16 bytes again with SipHash (written here: the hasher crates found do
/// not take `u128` keys as they are). Nothing an outsider sends chooses a key's bits.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u128` keys are hashed with this; anything else still gets a usable hash.
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
}

/// A set of keys hashed by [`KeyHasher`].
pub type KeySet = HashSet<Key, BuildHasherDefault<KeyHasher>>;

/// The key of an event of a cluster: its audit id and stage (an exec is logged at two stages,
/// each detected).
pub fn event_key(cluster_id: &str, audit_id: &str, stage: &str) -> Key {
    let mut h = Xxh3Default::new();
    h.update(b"e\0");
    h.update(cluster_id.as_bytes());
    h.update(b"\0");
    h.update(audit_id.as_bytes());
    h.update(b"\0");
    h.update(stage.as_bytes());
    h.digest128()
}

/// The key of a batch of a cluster: the digest of its body as received.
pub fn batch_key(cluster_id: &str, body: &[u8]) -> Key {
    let mut h = Xxh3Default::new();
    h.update(b"b\0");
    h.update(cluster_id.as_bytes());
    h.update(b"\0");
    h.update(body);
    h.digest128()
}

/// Keys as a stored row holds them.
pub fn to_bytes(keys: &[Key]) -> Vec<u8> {
    keys.iter().flat_map(|k| k.to_le_bytes()).collect()
}

fn from_bytes(bytes: &[u8]) -> impl Iterator<Item = Key> + '_ {
    bytes.chunks_exact(SEEN_KEY_BYTES).map(|c| {
        let mut k = [0u8; SEEN_KEY_BYTES];
        k.copy_from_slice(c);
        u128::from_le_bytes(k)
    })
}

struct Generation {
    id: i64,
    /// The keys this generation added to the window (each key is in one generation).
    keys: Vec<Key>,
    /// When its newest key was seen.
    last_ms: i64,
}

/// The keys detection holds: one table to look them up (one probe per event), and the
/// generations that added them, oldest first.
pub struct SeenWindow {
    keys: KeySet,
    generations: VecDeque<Generation>,
    /// Keys a generation takes before the next one starts.
    per_generation: usize,
    window_ms: i64,
    /// Generations dropped from memory whose rows the next round deletes.
    dropped: Vec<i64>,
}

impl SeenWindow {
    /// A window of at most about `max_keys` keys no older than `window_ms`.
    pub fn new(max_keys: usize, window_ms: i64) -> SeenWindow {
        SeenWindow {
            keys: KeySet::with_capacity_and_hasher(max_keys.max(1), Default::default()),
            generations: VecDeque::new(),
            per_generation: (max_keys / GENERATIONS).max(1),
            window_ms,
            dropped: Vec::new(),
        }
    }

    pub fn contains(&self, key: Key) -> bool {
        self.keys.contains(&key)
    }

    /// Keys held in memory.
    pub fn keys_held(&self) -> usize {
        self.keys.len()
    }

    /// The generation the next round's keys go to (its rows are tagged with it).
    pub fn generation(&mut self) -> i64 {
        if self.generations.is_empty() {
            self.start_generation(new_generation_id());
        }
        self.generations.back().expect("one generation").id
    }

    /// Generations dropped whose rows are still to be deleted (by the next round).
    pub fn dropped(&self) -> &[i64] {
        &self.dropped
    }

    /// After a round committed: its keys join the current generation (the one
    /// [`SeenWindow::generation`] named), and the rows of the `deleted` dropped generations
    /// are gone.
    pub fn commit(&mut self, keys: impl IntoIterator<Item = Key>, deleted: usize, now_ms: i64) {
        self.dropped.drain(..deleted.min(self.dropped.len()));
        let id = self.generation();
        let current = self.generations.back_mut().expect("one generation");
        debug_assert_eq!(current.id, id);
        add(&mut self.keys, current, keys);
        current.last_ms = current.last_ms.max(now_ms);
        // A round's keys may pass the size a little; a typical round fits in the slack the
        // table was sized with, so it does not grow.
        if current.keys.len() >= self.per_generation - self.per_generation / 16 {
            self.start_generation(new_generation_id());
        }
        self.expire(now_ms);
    }

    /// Drops the generations whose newest key is older than the window.
    pub fn expire(&mut self, now_ms: i64) {
        while self.generations.len() > 1
            && self
                .generations
                .front()
                .is_some_and(|g| g.last_ms < now_ms - self.window_ms)
        {
            self.drop_oldest();
        }
    }

    /// Takes stored rows (oldest first) as their generations, the way this server wrote them
    /// before a restart; the newest goes on taking keys.
    pub fn load(&mut self, rows: Vec<SeenKeys>) {
        for row in rows {
            if self
                .generations
                .back()
                .is_none_or(|g| g.id != row.generation)
            {
                self.start_generation(row.generation);
            }
            let g = self.generations.back_mut().expect("one generation");
            add(&mut self.keys, g, from_bytes(&row.keys));
            g.last_ms = g.last_ms.max(row.seen_ms);
        }
    }

    /// Takes stored rows written by another server (a partition taken over) into the current
    /// generation; their rows stay under the generation that wrote them.
    pub fn adopt(&mut self, rows: Vec<SeenKeys>) {
        self.generation();
        let g = self.generations.back_mut().expect("one generation");
        for row in rows {
            add(&mut self.keys, g, from_bytes(&row.keys));
        }
    }

    fn start_generation(&mut self, id: i64) {
        self.generations.push_back(Generation {
            id,
            keys: Vec::with_capacity(self.per_generation),
            last_ms: 0,
        });
        while self.generations.len() > GENERATIONS {
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(g) = self.generations.pop_front() {
            for k in &g.keys {
                self.keys.remove(k);
            }
            self.dropped.push(g.id);
        }
    }
}

/// Adds the keys the window does not hold yet to `generation`.
fn add(table: &mut KeySet, generation: &mut Generation, keys: impl IntoIterator<Item = Key>) {
    for k in keys {
        if table.insert(k) {
            generation.keys.push(k);
        }
    }
}

/// Generation ids only need to differ between the servers sharing a database and across
/// restarts: random, or the clock when the system's generator fails.
fn new_generation_id() -> i64 {
    let n = getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    });
    (n >> 1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(generation: i64, seen_ms: i64, keys: &[Key]) -> SeenKeys {
        SeenKeys {
            generation,
            cluster_id: "c".into(),
            seen_ms,
            keys: to_bytes(keys),
        }
    }

    #[test]
    fn keys_separate_clusters_stages_and_kinds() {
        let a = event_key("c1", "id", "ResponseComplete");
        assert_eq!(a, event_key("c1", "id", "ResponseComplete"));
        assert_ne!(a, event_key("c2", "id", "ResponseComplete"));
        assert_ne!(a, event_key("c1", "id", "ResponseStarted"));
        // No field can run into the next.
        assert_ne!(event_key("c1", "ab", "c"), event_key("c1", "a", "bc"));
        assert_ne!(batch_key("c1", b"x"), batch_key("c2", b"x"));
        assert_ne!(batch_key("c1", b"id"), event_key("c1", "id", ""));
    }

    #[test]
    fn generations_fill_rotate_and_drop_the_oldest_with_its_rows() {
        let mut w = SeenWindow::new(4 * 16, i64::MAX);
        let first = w.generation();
        w.commit(0..15, 0, 1);
        assert!(w.contains(3) && !w.contains(15));
        let second = w.generation();
        assert_ne!(first, second, "15 of 16 keys fill a generation");
        for round in 1..3u128 {
            w.commit(round * 100..round * 100 + 15, 0, 1);
        }
        assert!(w.contains(3), "four generations held");
        assert!(w.dropped().is_empty());
        w.commit(1000..1015, 0, 1);
        assert!(!w.contains(3), "the oldest generation dropped");
        assert!(w.contains(100) && w.contains(1000));
        assert_eq!(w.dropped(), [first]);
        // The next round deleted its rows.
        w.commit([5000], 1, 1);
        assert!(w.dropped().is_empty());
        assert!(w.keys_held() <= 4 * 16);
    }

    #[test]
    fn generations_older_than_the_window_expire() {
        let mut w = SeenWindow::new(1000, 100);
        let old = w.generation();
        w.commit(0..240, 0, 10);
        w.commit([9999], 0, 50);
        assert!(w.contains(1));
        w.expire(120);
        assert!(!w.contains(1), "last seen at 10, the window ended at 20");
        assert!(w.contains(9999));
        assert_eq!(w.dropped(), [old]);
        w.expire(1000);
        assert!(w.contains(9999), "the newest generation stays");
    }

    #[test]
    fn stored_rows_come_back_as_their_generations() {
        let mut w = SeenWindow::new(4 * 16, i64::MAX);
        w.load(vec![
            row(7, 1, &[1, 2]),
            row(7, 2, &[3]),
            row(8, 3, &[4]),
            row(9, 4, &[5]),
            row(10, 5, &[6]),
            row(11, 6, &[7]),
        ]);
        assert_eq!(w.dropped(), [7], "at most four generations");
        assert!(!w.contains(1) && w.contains(4) && w.contains(7));
        assert_eq!(w.generation(), 11, "the newest goes on");
        w.adopt(vec![row(99, 7, &[42])]);
        assert!(w.contains(42));
        assert_eq!(w.generation(), 11);
        // A key held already stays with the generation that has it: counted once.
        let held = w.keys_held();
        w.adopt(vec![row(98, 8, &[42, 7, 43])]);
        assert_eq!(w.keys_held(), held + 1);
        assert_eq!(to_bytes(&[1, 2]).len(), 2 * SEEN_KEY_BYTES);
        assert_eq!(
            from_bytes(&to_bytes(&[u128::MAX, 5])).collect::<Vec<_>>(),
            [u128::MAX, 5]
        );
    }
}
