//! The maintained sketch of each context in the `synctree.sketch` table: symbols
//! in chunks of [`CHUNK_SYMBOLS`], keyed `context id ‖ chunk number`, an absent
//! chunk all empty. A batch XORs its changed items into the chunks they map to,
//! read-modify-write once per chunk, in the batch's write transaction; the length
//! is [`sketch_len_for`] the context's entry count (which never shrinks), so the
//! metadata row needs no new field and opening reads nothing.

use std::collections::BTreeMap;

use ::redb::{ReadableTable, Table};
use synctree_primitives::sketch::{
    CodedSymbol, IndexMapping, SYMBOL_BYTES, SketchItem, sketch_len_for,
};
use synctree_primitives::{ContextId, StoreError};

use super::codec::{ContextNum, Malformed};
use super::error::redb_error;

/// Symbols per chunk row (1,536 bytes): a batch of a few items rewrites little,
/// a large batch rewrites each chunk of the prefix once.
pub(super) const CHUNK_SYMBOLS: u32 = 64;

/// Bytes of a chunk key: context id, then chunk number.
const CHUNK_KEY_LEN: usize = 12;

/// `context ‖ chunk` (big-endian).
pub(super) fn chunk_key(context: ContextNum, chunk: u32) -> [u8; CHUNK_KEY_LEN] {
    let mut out = [0u8; CHUNK_KEY_LEN];
    out[..8].copy_from_slice(&context.to_be_bytes());
    out[8..].copy_from_slice(&chunk.to_be_bytes());
    out
}

/// Decodes a chunk row: exactly [`CHUNK_SYMBOLS`] symbols.
pub(super) fn decode_chunk(bytes: &[u8]) -> Result<Vec<CodedSymbol>, Malformed> {
    let want = CHUNK_SYMBOLS as usize * SYMBOL_BYTES;
    Malformed::check_len("sketch chunk", bytes, want)?;
    let symbols = bytes.chunks_exact(SYMBOL_BYTES);
    Ok(symbols.filter_map(CodedSymbol::from_bytes).collect())
}

fn encode_chunk(symbols: &[CodedSymbol]) -> Vec<u8> {
    symbols.iter().flat_map(|s| s.to_bytes()).collect()
}

/// The symbols a batch XORs into the sketch, dense over the chunks `first..`
/// (at most [`SKETCH_MAX_SYMBOLS`](synctree_primitives::limits::SKETCH_MAX_SYMBOLS)
/// symbols, 768 KiB), with the chunks it touched.
#[derive(Debug)]
pub(super) struct ChunkDelta {
    first: u32,
    symbols: Vec<CodedSymbol>,
    touched: Vec<bool>,
}

impl ChunkDelta {
    /// An empty delta of the symbols `start..end` (rounded out to whole chunks).
    pub(super) fn new(start: u32, end: u32) -> Self {
        let first = start / CHUNK_SYMBOLS;
        let chunks = end.div_ceil(CHUNK_SYMBOLS).saturating_sub(first) as usize;
        ChunkDelta {
            first,
            symbols: vec![CodedSymbol::EMPTY; chunks * CHUNK_SYMBOLS as usize],
            touched: vec![false; chunks],
        }
    }

    /// XORs `item` into the delta of every symbol in `start..end` it maps to.
    pub(super) fn toggle(&mut self, item: &SketchItem, start: u32, end: u32) {
        let hash = item.hash();
        let mut mapping = IndexMapping::new(hash);
        while mapping.index() < u64::from(start) {
            mapping.advance();
        }
        let base = u64::from(self.first * CHUNK_SYMBOLS);
        let (symbols, touched) = (&mut self.symbols, &mut self.touched);
        mapping.walk_below(u64::from(end), |i| {
            let at = (i - base) as usize;
            symbols[at].toggle(item, hash);
            touched[at / CHUNK_SYMBOLS as usize] = true;
        });
    }

    /// XORs the delta into the stored chunks of `context`.
    pub(super) fn write(
        self,
        table: &mut Table<'_, &'static [u8], &'static [u8]>,
        context: &ContextId,
        num: ContextNum,
    ) -> Result<(), StoreError> {
        let redb = || redb_error("apply", Some(context));
        let chunks = self.symbols.chunks_exact(CHUNK_SYMBOLS as usize);
        for (offset, delta) in chunks.enumerate().filter(|(c, _)| self.touched[*c]) {
            let key = chunk_key(num, self.first + offset as u32);
            let held = table.get(&key[..]).map_err(redb())?;
            let held = held.map(|v| decode_chunk(v.value()));
            let mut symbols = match held {
                Some(decoded) => decoded.map_err(|m| m.in_context(context))?,
                None => vec![CodedSymbol::EMPTY; CHUNK_SYMBOLS as usize],
            };
            symbols.iter_mut().zip(delta).for_each(|(s, d)| s.xor(d));
            let value = encode_chunk(&symbols);
            table.insert(&key[..], &value[..]).map_err(redb())?;
        }
        Ok(())
    }
}

/// Symbols kept for a context of `entry_count` entries.
pub(super) fn len_for(entry_count: u64) -> u32 {
    sketch_len_for(entry_count)
}

/// Symbols `start..start + count` of context `num` (of `len` maintained).
pub(super) fn read(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    context: &ContextId,
    num: ContextNum,
    len: u32,
    (start, count): (u32, usize),
) -> Result<Vec<CodedSymbol>, StoreError> {
    let end = (u64::from(start) + count as u64).min(u64::from(len)) as u32;
    if start >= end {
        return Ok(Vec::new());
    }
    let (first, last) = (start / CHUNK_SYMBOLS, (end - 1) / CHUNK_SYMBOLS);
    let (low, high) = (chunk_key(num, first), chunk_key(num, last));
    let mut chunks: BTreeMap<u32, Vec<CodedSymbol>> = BTreeMap::new();
    let rows = table
        .range(&low[..]..=&high[..])
        .map_err(redb_error("sketch", Some(context)))?;
    for row in rows {
        let (key, value) = row.map_err(redb_error("sketch", Some(context)))?;
        let key = key.value();
        let chunk = key
            .get(8..CHUNK_KEY_LEN)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| Malformed::new("sketch key", "wrong length").in_context(context))?;
        let symbols = decode_chunk(value.value()).map_err(|m| m.in_context(context))?;
        chunks.insert(chunk, symbols);
    }
    let symbol = |i: u32| {
        chunks
            .get(&(i / CHUNK_SYMBOLS))
            .map_or(CodedSymbol::EMPTY, |c| c[(i % CHUNK_SYMBOLS) as usize])
    };
    Ok((start..end).map(symbol).collect())
}

/// The new tail `old..new` of a grown sketch, from every item of the context
/// (the tail's rows are absent, so this delta is the tail itself).
pub(super) fn tail(items: impl Iterator<Item = SketchItem>, old: u32, new: u32) -> ChunkDelta {
    let mut delta = ChunkDelta::new(old, new);
    for item in items {
        delta.toggle(&item, old, new);
    }
    delta
}
