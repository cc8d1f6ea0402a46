//! The HPACK indexing tables (RFC 7541 §2.3): the static table (Appendix A) and a dynamic
//! table per direction (§2.3.2, §4) — FIFO, newest entry at the lowest dynamic index, entry
//! size = name + value + 32 (§4.1), eviction from the oldest end (§4.4).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use bytes::Bytes;

use super::tables::STATIC_TABLE;

/// Number of entries in the static table.
pub const STATIC_LEN: usize = STATIC_TABLE.len();

/// The static table as shared `Bytes` (built once).
pub fn static_entry(index: usize) -> Option<&'static (Bytes, Bytes)> {
    static ENTRIES: OnceLock<Vec<(Bytes, Bytes)>> = OnceLock::new();
    let entries = ENTRIES.get_or_init(|| {
        STATIC_TABLE
            .iter()
            .map(|(n, v)| {
                (
                    Bytes::from_static(n.as_bytes()),
                    Bytes::from_static(v.as_bytes()),
                )
            })
            .collect()
    });
    entries.get(index.checked_sub(1)?)
}

/// What the static table knows of a field: an exact match, or just the name.
pub fn static_lookup(name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
    let Some((first, last)) = static_name_range(name) else {
        return (None, None);
    };
    let exact = (first..=last).find(|&i| {
        STATIC_TABLE
            .get(i - 1)
            .is_some_and(|(_, v)| v.as_bytes() == value)
    });
    (exact, Some(exact.unwrap_or(first)))
}

/// The (first, last) static indices with this name (the entries of one name are adjacent in
/// Appendix A). A `match` on the name compiles to a dispatch on length, then comparisons.
fn static_name_range(name: &[u8]) -> Option<(usize, usize)> {
    Some(match name {
        b":authority" => (1, 1),
        b":method" => (2, 3),
        b":path" => (4, 5),
        b":scheme" => (6, 7),
        b":status" => (8, 14),
        b"accept-charset" => (15, 15),
        b"accept-encoding" => (16, 16),
        b"accept-language" => (17, 17),
        b"accept-ranges" => (18, 18),
        b"accept" => (19, 19),
        b"access-control-allow-origin" => (20, 20),
        b"age" => (21, 21),
        b"allow" => (22, 22),
        b"authorization" => (23, 23),
        b"cache-control" => (24, 24),
        b"content-disposition" => (25, 25),
        b"content-encoding" => (26, 26),
        b"content-language" => (27, 27),
        b"content-length" => (28, 28),
        b"content-location" => (29, 29),
        b"content-range" => (30, 30),
        b"content-type" => (31, 31),
        b"cookie" => (32, 32),
        b"date" => (33, 33),
        b"etag" => (34, 34),
        b"expect" => (35, 35),
        b"expires" => (36, 36),
        b"from" => (37, 37),
        b"host" => (38, 38),
        b"if-match" => (39, 39),
        b"if-modified-since" => (40, 40),
        b"if-none-match" => (41, 41),
        b"if-range" => (42, 42),
        b"if-unmodified-since" => (43, 43),
        b"last-modified" => (44, 44),
        b"link" => (45, 45),
        b"location" => (46, 46),
        b"max-forwards" => (47, 47),
        b"proxy-authenticate" => (48, 48),
        b"proxy-authorization" => (49, 49),
        b"range" => (50, 50),
        b"referer" => (51, 51),
        b"refresh" => (52, 52),
        b"retry-after" => (53, 53),
        b"server" => (54, 54),
        b"set-cookie" => (55, 55),
        b"strict-transport-security" => (56, 56),
        b"transfer-encoding" => (57, 57),
        b"user-agent" => (58, 58),
        b"vary" => (59, 59),
        b"via" => (60, 60),
        b"www-authenticate" => (61, 61),
        _ => return None,
    })
}

/// Size of an entry as §4.1 counts it.
pub fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// A dynamic table.
#[derive(Debug, Clone)]
pub struct DynamicTable {
    entries: VecDeque<(Bytes, Bytes)>,
    /// With `hashed` (the encoder's side): (name hash, name-and-value hash) of each entry,
    /// same order, and maps from those hashes to the id of the newest entry that has them,
    /// so that [`DynamicTable::lookup`] takes two map probes instead of a scan. An entry's id
    /// is its insertion count; its position is `inserted - 1 - id`.
    hashes: VecDeque<(u64, u64)>,
    hashed: bool,
    by_name: IdMap,
    by_field: IdMap,
    inserted: u64,
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    /// An empty table holding at most `max_size` octets.
    pub fn new(max_size: usize) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            hashes: VecDeque::new(),
            hashed: false,
            by_name: IdMap::default(),
            by_field: IdMap::default(),
            inserted: 0,
            size: 0,
            max_size,
        }
    }

    /// An empty table that keeps entry hashes for fast [`DynamicTable::lookup`].
    pub fn with_lookup(max_size: usize) -> DynamicTable {
        DynamicTable {
            hashed: true,
            ..DynamicTable::new(max_size)
        }
    }

    /// Current size (§4.1).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Current maximum size.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entry at dynamic position `i` (0 = newest).
    pub fn get(&self, i: usize) -> Option<&(Bytes, Bytes)> {
        self.entries.get(i)
    }

    /// Changes the maximum size, evicting as needed (§4.3).
    pub fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// Empties the table (what inserting an entry larger than the table does, §4.4).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.hashes.clear();
        self.by_name.clear();
        self.by_field.clear();
        self.size = 0;
    }

    /// Inserts an entry, evicting older ones first; an entry larger than the maximum size
    /// empties the table and is not inserted (§4.4).
    pub fn insert(&mut self, name: Bytes, value: Bytes) {
        let size = entry_size(&name, &value);
        if size > self.max_size {
            self.clear();
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        if self.hashed {
            let (name_hash, full_hash) = hash_pair(&name, &value);
            self.hashes.push_front((name_hash, full_hash));
            self.by_name.insert(name_hash, self.inserted);
            self.by_field.insert(full_hash, self.inserted);
        }
        self.inserted = self.inserted.wrapping_add(1);
        self.entries.push_front((name, value));
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let oldest = self.inserted.wrapping_sub(self.entries.len() as u64);
            if let Some((name_hash, full_hash)) = self.hashes.pop_back() {
                // Unmap the hashes only if no newer entry took them over.
                if self.by_name.get(&name_hash) == Some(&oldest) {
                    self.by_name.remove(&name_hash);
                }
                if self.by_field.get(&full_hash) == Some(&oldest) {
                    self.by_field.remove(&full_hash);
                }
            }
            match self.entries.pop_back() {
                Some((n, v)) => self.size -= entry_size(&n, &v),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// Positions (0 = newest) of an exact match and of a name-only match.
    pub fn lookup(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let mut name_pos = None;
        if self.hashed {
            // A hash collision between different fields only costs a missed match: the
            // octets are always compared.
            let (name_hash, full_hash) = hash_pair(name, value);
            let position = |map: &IdMap, hash| {
                let id = *map.get(&hash)?;
                let pos = usize::try_from(self.inserted.wrapping_sub(id).wrapping_sub(1)).ok()?;
                Some((pos, self.entries.get(pos)?))
            };
            if let Some((pos, (n, v))) = position(&self.by_field, full_hash) {
                if n == name && v == value {
                    return (Some(pos), Some(pos));
                }
            }
            let name_pos = position(&self.by_name, name_hash)
                .and_then(|(pos, (n, _))| (n == name).then_some(pos));
            return (None, name_pos);
        }
        for (i, (n, v)) in self.entries.iter().enumerate() {
            if n == name {
                if v == value {
                    return (Some(i), Some(i));
                }
                name_pos.get_or_insert(i);
            }
        }
        (None, name_pos)
    }
}

/// A map keyed by our own (already mixed) hashes.
type IdMap = HashMap<u64, u64, BuildHasherDefault<PassThrough>>;

/// Hashes a `u64` key to itself, folded so the low bits (the bucket index) see the high ones.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// (hash of the name, hash of name and value): a fast multiplicative hash, eight octets at a
/// time. Only an index for lookups; equality is always confirmed on the octets.
fn hash_pair(name: &[u8], value: &[u8]) -> (u64, u64) {
    let name_hash = hash(0x9e37_79b9_7f4a_7c15, name);
    (name_hash, hash(name_hash, value))
}

fn hash(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = seed ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let mut word = [0u8; 8];
    let rest = chunks.remainder();
    word[..rest.len()].copy_from_slice(rest);
    (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_table_matches_appendix_a_at_its_edges() {
        assert_eq!(static_entry(1).map(|e| &e.0[..]), Some(&b":authority"[..]));
        assert_eq!(
            static_entry(2).map(|e| (&e.0[..], &e.1[..])),
            Some((&b":method"[..], &b"GET"[..]))
        );
        assert_eq!(
            static_entry(61).map(|e| &e.0[..]),
            Some(&b"www-authenticate"[..])
        );
        assert!(static_entry(0).is_none() && static_entry(62).is_none());
        assert_eq!(static_lookup(b":method", b"POST"), (Some(3), Some(3)));
        assert_eq!(static_lookup(b":method", b"PUT"), (None, Some(2)));
        assert_eq!(static_lookup(b":status", b"500"), (Some(14), Some(14)));
        assert_eq!(static_lookup(b":status", b"201"), (None, Some(8)));
        assert_eq!(static_lookup(b"x-unknown", b""), (None, None));
        // Every entry of Appendix A is found at its own index (its name at the first one).
        for (i, (n, v)) in STATIC_TABLE.iter().enumerate() {
            let (exact, name) = static_lookup(n.as_bytes(), v.as_bytes());
            assert_eq!(exact, Some(i + 1), "{n}: {v}");
            let first = STATIC_TABLE.iter().position(|(m, _)| m == n).map(|p| p + 1);
            assert_eq!(static_lookup(n.as_bytes(), b"\xff-no-such-value").1, first);
            assert!(name.is_some());
        }
    }

    #[test]
    fn hashed_lookup_agrees_with_the_plain_scan() {
        let mut plain = DynamicTable::new(400);
        let mut hashed = DynamicTable::with_lookup(400);
        let fields: Vec<(&[u8], &[u8])> = vec![
            (b"a", b"1"),
            (b"b", b"12345678901234567890"),
            (b"a", b"2"),
            (b"x-long-header-name", b"v"),
            (b"a", b"1"),
            (b"c", b""),
            (b"b", b"12345678901234567891"),
            (b"x-long-header-name", b"w"),
        ];
        for (n, v) in &fields {
            plain.insert(Bytes::copy_from_slice(n), Bytes::copy_from_slice(v));
            hashed.insert(Bytes::copy_from_slice(n), Bytes::copy_from_slice(v));
            assert_eq!((plain.len(), plain.size()), (hashed.len(), hashed.size()));
            for (m, w) in fields.iter().chain([(&b"zz"[..], &b"1"[..])].iter()) {
                assert_eq!(plain.lookup(m, w), hashed.lookup(m, w));
            }
        }
        hashed.set_max_size(0);
        assert_eq!(hashed.lookup(b"a", b"1"), (None, None));
    }

    #[test]
    fn eviction_follows_section_4_4() {
        let mut t = DynamicTable::new(100);
        t.insert(Bytes::from_static(b"a"), Bytes::from_static(b"1234567890")); // 43
        t.insert(Bytes::from_static(b"b"), Bytes::from_static(b"1234567890")); // 86
        t.insert(Bytes::from_static(b"c"), Bytes::from_static(b"1")); // 34: evicts "a"
        assert_eq!(t.len(), 2);
        assert_eq!(t.size(), 43 + 34);
        assert_eq!(&t.get(0).unwrap().0[..], b"c");
        t.insert(Bytes::from_static(b"big"), Bytes::from(vec![b'x'; 100]));
        assert_eq!((t.len(), t.size()), (0, 0));
        t.insert(Bytes::from_static(b"d"), Bytes::from_static(b"1"));
        t.set_max_size(10);
        assert_eq!((t.len(), t.size()), (0, 0));
    }
}
