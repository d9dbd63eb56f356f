//! The in-memory map: shards of hash tables whose slots each own one heap
//! block holding the key and the value.
//!
//! Each shard has two locks:
//! - `writer`, held by a writer from the moment it checks the shard's state
//!   (for a CAS) through the journal append (and, under `BlockAndSync`, the
//!   wait for the sync) until memory holds the change. So changes to one
//!   shard reach memory in log order, and a snapshot that holds `writer`
//!   while it copies the shard sees every change logged before it started;
//! - `table`, a read-write lock over the entries, taken by writers only for
//!   the insert itself, so readers never wait for the journal or a sync.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::hash::BuildHasher;
use std::ptr::{self, NonNull};
use std::slice;

use hashbrown::HashTable;
use parking_lot::{Mutex, RwLock};

/// One key and its value in one heap block behind a thin (8-byte) pointer:
/// the key's length and the value's length as LEB128 varints (one byte each
/// below 128), then the key, then the value. A 16-byte key with a 100-byte
/// value takes 118 bytes, one allocator chunk of 128; the table's slot is 8
/// bytes. (A `Box<[u8]>` would need a 16-byte slot; two boxes, as
/// persistent-kv has, two chunks and 48 bytes of `Vec` headers.)
pub(crate) struct Entry(NonNull<u8>);

// SAFETY: an Entry owns its block alone, as a Box<[u8]> would, and the
// block holds plain bytes: moving it to another thread is fine.
unsafe impl Send for Entry {}
// SAFETY: `&Entry` only reads the block; nothing mutates it after `new`.
unsafe impl Sync for Entry {}

/// The longest header: two varints of a u32 each.
const MAX_HEADER: usize = 10;

fn put_varint(out: &mut [u8; MAX_HEADER], at: &mut usize, mut n: u32) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out[*at] = byte;
            *at += 1;
            return;
        }
        out[*at] = byte | 0x80;
        *at += 1;
    }
}

fn layout(total: usize) -> Layout {
    match Layout::from_size_align(total, 1) {
        Ok(layout) => layout,
        // A u32 key and a u32 value never come near isize::MAX.
        Err(_) => handle_alloc_error(Layout::new::<[u8; MAX_HEADER]>()),
    }
}

impl Entry {
    /// `key` and `value` are at most `u32::MAX` bytes each (the journal's
    /// records and the snapshot's fields are shorter still).
    pub(crate) fn new(key: &[u8], value: &[u8]) -> Entry {
        debug_assert!(key.len() <= u32::MAX as usize && value.len() <= u32::MAX as usize);
        let mut header = [0u8; MAX_HEADER];
        let mut len = 0;
        put_varint(&mut header, &mut len, key.len() as u32);
        put_varint(&mut header, &mut len, value.len() as u32);
        let total = len + key.len() + value.len();
        let layout = layout(total);
        // SAFETY: `layout` has a non-zero size (the header is at least 2 bytes).
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        // SAFETY: the block is `total` bytes, freshly allocated, so it
        // overlaps none of the sources, and the three copies fill it exactly.
        unsafe {
            ptr::copy_nonoverlapping(header.as_ptr(), ptr.as_ptr(), len);
            ptr::copy_nonoverlapping(key.as_ptr(), ptr.as_ptr().add(len), key.len());
            ptr::copy_nonoverlapping(
                value.as_ptr(),
                ptr.as_ptr().add(len + key.len()),
                value.len(),
            );
        }
        Entry(ptr)
    }

    /// (header length, key length, value length).
    fn lens(&self) -> (usize, usize, usize) {
        let mut at = 0;
        let mut read = || {
            let mut n = 0u32;
            let mut shift = 0;
            loop {
                // SAFETY: `new` wrote a complete header of two varints at the
                // start of the block; `at` stays inside it.
                let byte = unsafe { *self.0.as_ptr().add(at) };
                at += 1;
                n |= u32::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return n as usize;
                }
                shift += 7;
            }
        };
        let k = read();
        let v = read();
        (at, k, v)
    }

    fn key_value(&self) -> (&[u8], &[u8]) {
        let (h, k, v) = self.lens();
        // SAFETY: the block holds `h + k + v` initialised bytes, owned by
        // `self` and never written after `new`, for as long as `self` lives.
        let bytes = unsafe { slice::from_raw_parts(self.0.as_ptr().add(h), k + v) };
        bytes.split_at(k)
    }

    pub(crate) fn key(&self) -> &[u8] {
        self.key_value().0
    }

    pub(crate) fn value(&self) -> &[u8] {
        self.key_value().1
    }

    /// The value's bytes, to overwrite in place with one of the same
    /// length.
    fn value_mut(&mut self) -> &mut [u8] {
        let (h, k, v) = self.lens();
        // SAFETY: as in `key_value`, and `&mut self` makes this the only
        // borrow of the block.
        unsafe { slice::from_raw_parts_mut(self.0.as_ptr().add(h + k), v) }
    }

    /// Key and value bytes (what `Debug` and `stats` count as size).
    pub(crate) fn payload_len(&self) -> usize {
        let (_, k, v) = self.lens();
        k + v
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let (h, k, v) = self.lens();
        // SAFETY: the block was allocated in `new` with exactly this layout
        // (its size is the header plus the lengths the header holds).
        unsafe { dealloc(self.0.as_ptr(), layout(h + k + v)) }
    }
}

/// A shard's entries, and the sum of their key and value bytes.
#[derive(Default)]
pub(crate) struct Table {
    entries: HashTable<Entry>,
    bytes: usize,
}

impl Table {
    pub(crate) fn get(&self, hash: u64, key: &[u8]) -> Option<&Entry> {
        self.entries.find(hash, |e| e.key() == key)
    }

    /// Sets `key` to `value`; returns the entry it replaced.
    pub(crate) fn insert(
        &mut self,
        map: &Map,
        hash: u64,
        key: &[u8],
        value: &[u8],
    ) -> Option<Entry> {
        let entry = Entry::new(key, value);
        self.bytes += entry.payload_len();
        match self
            .entries
            .entry(hash, |e| e.key() == key, |e| map.hash(e.key()))
        {
            hashbrown::hash_table::Entry::Occupied(mut slot) => {
                let old = std::mem::replace(slot.get_mut(), entry);
                self.bytes -= old.payload_len();
                Some(old)
            }
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(entry);
                None
            }
        }
    }

    /// Sets `key` to `value`, dropping the old value. A value of the same
    /// length as the old one is copied over it: no allocation (overwrites
    /// and log replay are mostly that).
    pub(crate) fn set(&mut self, map: &Map, hash: u64, key: &[u8], value: &[u8]) {
        if let Some(old) = self.entries.find_mut(hash, |e| e.key() == key) {
            if old.value().len() == value.len() {
                old.value_mut().copy_from_slice(value);
                return;
            }
        }
        self.insert(map, hash, key, value);
    }

    pub(crate) fn remove(&mut self, hash: u64, key: &[u8]) -> Option<Entry> {
        match self.entries.find_entry(hash, |e| e.key() == key) {
            Ok(slot) => {
                let (old, _) = slot.remove();
                self.bytes -= old.payload_len();
                Some(old)
            }
            Err(_) => None,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries = HashTable::new();
        self.bytes = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Moves the entries out, leaving the table empty.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Entry> + use<> {
        self.bytes = 0;
        std::mem::take(&mut self.entries).into_iter()
    }
}

pub(crate) struct Shard {
    pub(crate) writer: Mutex<()>,
    pub(crate) table: RwLock<Table>,
}

/// The shards and the hasher.
pub(crate) struct Map {
    shards: Box<[Shard]>,
    hasher: foldhash::fast::RandomState,
}

impl Map {
    /// `shards` must be a power of two.
    pub(crate) fn new(shards: usize) -> Map {
        debug_assert!(shards.is_power_of_two());
        Map {
            shards: (0..shards)
                .map(|_| Shard {
                    writer: Mutex::new(()),
                    table: RwLock::new(Table::default()),
                })
                .collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard of a hash (its bits 32.., which the table's own slot choice
    /// and tag bits do not lean on).
    pub(crate) fn shard_index(&self, hash: u64) -> usize {
        (hash >> 32) as usize & (self.shards.len() - 1)
    }

    pub(crate) fn shard(&self, index: usize) -> &Shard {
        &self.shards[index]
    }

    pub(crate) fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Entry count and key+value bytes, summed shard by shard.
    pub(crate) fn size(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(n, b), s| {
            let t = s.table.read();
            (n + t.len(), b + t.bytes())
        })
    }

    /// Applies a change while its shard's table lock is held by the caller.
    pub(crate) fn apply(&self, table: &mut Table, hash: u64, key: &[u8], value: Option<&[u8]>) {
        match value {
            Some(v) => table.set(self, hash, key, v),
            None => {
                table.remove(hash, key);
            }
        }
    }

    /// Applies a change taking the shard's table lock (recovery, which is
    /// alone).
    pub(crate) fn apply_locked(&self, key: &[u8], value: Option<&[u8]>) {
        let hash = self.hash(key);
        let mut table = self.shards[self.shard_index(hash)].table.write();
        self.apply(&mut table, hash, key, value);
    }

    /// Makes room for `entries` spread evenly over the shards (restoring a
    /// snapshot of known size), so the tables do not grow step by step.
    pub(crate) fn reserve(&self, entries: usize) {
        let per_shard = entries / self.shards.len() + 1;
        for s in self.shards.iter() {
            let mut t = s.table.write();
            t.entries.reserve(per_shard, |e| self.hash(e.key()));
        }
    }

    pub(crate) fn clear_all(&self) {
        for s in self.shards.iter() {
            s.table.write().clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_hold_key_and_value_in_one_block() {
        // Lengths around each varint width (1, 2 and 3 bytes).
        let long = vec![9u8; 300];
        let longer = vec![3u8; 20_000];
        for (k, v) in [
            (&b""[..], &b""[..]),
            (b"k", b""),
            (b"", b"v"),
            (b"key", b"value"),
            (&long[..127], &long[..128]),
            (&long[..], &longer[..]),
            (&longer[..], &long[..16]),
        ] {
            let e = Entry::new(k, v);
            assert_eq!(e.key(), k);
            assert_eq!(e.value(), v);
            assert_eq!(e.payload_len(), k.len() + v.len());
        }
    }

    #[test]
    fn insert_replace_remove_keep_the_byte_count() {
        let map = Map::new(256);
        let k = b"k";
        let h = map.hash(k);
        let shard = map.shard(map.shard_index(h));
        let mut t = shard.table.write();
        assert!(t.insert(&map, h, k, b"12345").is_none());
        assert_eq!((t.len(), t.bytes()), (1, 6));
        assert_eq!(size_of::<Entry>(), 8);
        let old = t.insert(&map, h, k, b"").unwrap();
        assert_eq!(old.value(), b"12345");
        assert_eq!((t.len(), t.bytes()), (1, 1));
        assert_eq!(t.get(h, k).unwrap().value(), b"");
        t.set(&map, h, k, b"ab");
        t.set(&map, h, k, b"cd");
        assert_eq!(t.get(h, k).unwrap().value(), b"cd");
        assert_eq!((t.len(), t.bytes()), (1, 3));
        assert!(t.remove(h, k).is_some());
        assert!(t.remove(h, k).is_none());
        assert_eq!((t.len(), t.bytes()), (0, 0));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // 256 shards and 5000 keys: too slow there
    fn many_keys_spread_and_survive_growth() {
        let map = Map::new(256);
        for i in 0u32..5000 {
            map.apply_locked(&i.to_le_bytes(), Some(&i.to_be_bytes()));
        }
        assert_eq!(map.size(), (5000, 5000 * 8));
        let used = map
            .shards()
            .iter()
            .filter(|s| s.table.read().len() > 0)
            .count();
        assert_eq!(used, 256);
        for i in 0u32..5000 {
            let k = i.to_le_bytes();
            let h = map.hash(&k);
            let t = map.shard(map.shard_index(h)).table.read();
            assert_eq!(t.get(h, &k).unwrap().value(), i.to_be_bytes());
        }
        map.clear_all();
        assert_eq!(map.size(), (0, 0));
    }
}
