//! The HPACK indexing tables (RFC 7541 §2.3): the static table (Appendix A) and a dynamic
//! table per direction (§2.3.2, §4) — FIFO, newest entry at the lowest dynamic index, entry
//! size = name + value + 32 (§4.1), eviction from the oldest end (§4.4).

use std::collections::VecDeque;
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
    let mut name_index = None;
    for (i, (n, v)) in STATIC_TABLE.iter().enumerate() {
        if n.as_bytes() == name {
            if v.as_bytes() == value {
                return (Some(i + 1), Some(i + 1));
            }
            name_index.get_or_insert(i + 1);
        }
    }
    (None, name_index)
}

/// Size of an entry as §4.1 counts it.
pub fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// A dynamic table.
#[derive(Debug, Clone)]
pub struct DynamicTable {
    entries: VecDeque<(Bytes, Bytes)>,
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    /// An empty table holding at most `max_size` octets.
    pub fn new(max_size: usize) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
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
        self.size = 0;
    }

    /// Inserts an entry, evicting older ones first; an entry larger than the maximum size
    /// empties the table and is not inserted (§4.4).
    pub fn insert(&mut self, name: Bytes, value: Bytes) {
        let size = entry_size(&name, &value);
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.entries.push_front((name, value));
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
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
