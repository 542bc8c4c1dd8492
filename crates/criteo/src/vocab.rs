//! Counting categorical values and ranking them into vocabularies.
//!
//! Counting hashes each value once: Criteo's 8-hex-digit values are parsed
//! into `u32` keys of an open-addressing table of packed 8-byte slots (key
//! and a `u32` count; the rare count that would reach 2^32 - 1 escapes to a
//! side map); the rare other values go to a map of their bytes, copied only
//! when first seen. Ranking reuses the counting table: each slot's count is
//! replaced in place by the value's rank, so the vocabulary's lookup table
//! costs no second allocation.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::OnceLock;

use rayon::slice::ParallelSliceMut;

use crate::parse::{Cat, Row, hex8, parse_hex8};
use sparky_prepared::schema::{NUM_CAT, OOV_ID};

/// The value of a slot whose count escaped to the side map (counting), or
/// of a value kept out of the vocabulary by `--min-count` (ranking).
const ESCAPED: u32 = u32::MAX;

/// One slot: a key and a non-zero value; value 0 marks an empty slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
struct Slot {
    key: u32,
    val: u32,
}

/// An open-addressing (linear probing) map from `u32` keys to non-zero `u32`
/// values, 8 bytes a slot, at most 3/4 full; any capacity (not only powers
/// of two), so that it grows by half and stays between 1/2 and 3/4 full.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    slots: Vec<Slot>,
    len: usize,
}

impl Table {
    /// Capacity that holds `n` keys without growing.
    fn capacity_for(n: usize) -> usize {
        (n + n / 3 + 1).max(16)
    }

    pub(crate) fn with_capacity(n: usize) -> Self {
        let slots = vec![Slot::default(); Self::capacity_for(n)];
        sparky_memhint::huge_pages(&slots);
        Self { slots, len: 0 }
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.len() * size_of::<Slot>()
    }

    /// Bytes held after the next growth (for memory accounting).
    pub(crate) fn grown_bytes(&self) -> usize {
        (self.slots.len() + self.slots.len() / 2) * size_of::<Slot>()
    }

    /// True when the next new key makes the table grow.
    #[inline]
    pub(crate) fn full(&self) -> bool {
        (self.len + 1) * 4 > self.slots.len() * 3
    }

    #[inline]
    fn home(&self, key: u32) -> usize {
        // Fibonacci hashing (Criteo values are hashes already, other keys need
        // not be), then mapped onto the capacity by a multiply.
        let h = (u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32;
        ((u64::from(h) * self.slots.len() as u64) >> 32) as usize
    }

    #[inline]
    fn find(&self, key: u32) -> usize {
        let cap = self.slots.len();
        let mut i = self.home(key);
        loop {
            let s = self.slots[i];
            if s.val == 0 || s.key == key {
                return i;
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: u32) -> Option<u32> {
        let v = self.slots[self.find(key)].val;
        (v != 0).then_some(v)
    }

    /// Asks the CPU to start loading the cache line of `key`'s first probe,
    /// so that several lookups' memory latencies overlap.
    #[inline]
    pub(crate) fn prefetch(&self, key: u32) {
        sparky_memhint::prefetch(self.slots.as_ptr().wrapping_add(self.home(key)));
    }

    /// The value of `key`, inserting it (with value 0) if absent; the caller
    /// must then store a non-zero value.
    #[inline]
    pub(crate) fn entry(&mut self, key: u32) -> &mut u32 {
        if self.full() {
            self.grow();
        }
        let i = self.find(key);
        let slot = &mut self.slots[i];
        if slot.val == 0 {
            slot.key = key;
            self.len += 1;
        }
        &mut slot.val
    }

    fn grow(&mut self) {
        let cap = self.slots.len() + self.slots.len() / 2;
        let mut bigger = Self { slots: vec![Slot::default(); cap], len: 0 };
        sparky_memhint::huge_pages(&bigger.slots);
        for s in self.slots.iter().filter(|s| s.val != 0) {
            let i = bigger.find(s.key);
            bigger.slots[i] = *s;
        }
        bigger.len = self.len;
        *self = bigger;
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.slots.iter().filter(|s| s.val != 0).map(|s| (s.key, s.val))
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// Value counts of one categorical column.
#[derive(Debug, Clone)]
pub struct ColumnCounts {
    hex: Table,
    /// Counts of 2^32 - 1 or more (their slots hold [`ESCAPED`]).
    big: HashMap<u32, u64>,
    missing: u64,
    other: HashMap<Box<[u8]>, u64>,
}

impl Default for ColumnCounts {
    fn default() -> Self {
        Self { hex: Table::with_capacity(64), big: HashMap::new(), missing: 0, other: HashMap::new() }
    }
}

impl ColumnCounts {
    /// Adds one occurrence of `cat`.
    #[inline]
    pub fn add(&mut self, cat: Cat<'_>) {
        self.add_n(cat, 1);
    }

    /// Adds `n` occurrences of `cat`.
    #[inline]
    pub fn add_n(&mut self, cat: Cat<'_>, n: u64) {
        if n == 0 {
            return;
        }
        match cat {
            Cat::Missing => self.missing += n,
            Cat::Hex(v) => self.add_hex(v, n),
            Cat::Other(b) => match self.other.get_mut(b) {
                Some(c) => *c += n,
                None => {
                    self.other.insert(b.into(), n);
                }
            },
        }
    }

    #[inline]
    pub(crate) fn add_hex(&mut self, key: u32, n: u64) {
        let v = self.hex.entry(key);
        if *v == ESCAPED {
            *self.big.get_mut(&key).expect("escaped counts are in the side map") += n;
            return;
        }
        let total = u64::from(*v) + n;
        if total < u64::from(ESCAPED) {
            *v = total as u32;
        } else {
            *v = ESCAPED;
            self.big.insert(key, total);
        }
    }

    /// Adds one occurrence of each hex value of `keys`, starting the memory
    /// loads of later keys' slots while earlier ones are counted.
    pub fn add_hex_batch(&mut self, keys: &[u32]) {
        const AHEAD: usize = 8;
        for (i, &k) in keys.iter().enumerate() {
            if let Some(&next) = keys.get(i + AHEAD) {
                self.hex.prefetch(next);
            }
            self.add_hex(k, 1);
        }
    }

    /// Adds one occurrence of each hex value of `keys`, calling `before_grow`
    /// whenever the table is about to grow (it may empty the counts, see
    /// [`take_sorted`](Self::take_sorted), or refuse with an error).
    pub(crate) fn add_hex_batch_with<E>(
        &mut self,
        keys: &[u32],
        mut before_grow: impl FnMut(&mut Self) -> Result<(), E>,
    ) -> Result<(), E> {
        const AHEAD: usize = 8;
        for (i, &k) in keys.iter().enumerate() {
            if let Some(&next) = keys.get(i + AHEAD) {
                self.hex.prefetch(next);
            }
            if self.hex.full() {
                before_grow(self)?;
            }
            self.add_hex(k, 1);
        }
        Ok(())
    }

    /// Bytes held by the hex table.
    #[must_use]
    pub fn hex_bytes(&self) -> usize {
        self.hex.bytes()
    }

    /// Distinct values seen (missing counts as one when seen).
    #[must_use]
    pub fn distinct(&self) -> usize {
        self.hex.len() + self.other.len() + usize::from(self.missing > 0)
    }

    /// Bytes held by the tables (an estimate for the side maps).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.hex.bytes() + self.big.len() * 24 + self.other.keys().map(|k| k.len() + 48).sum::<usize>()
    }

    /// True when counting one more new hex value would grow the table.
    #[must_use]
    pub fn hex_full(&self) -> bool {
        self.hex.full()
    }

    /// Bytes the hex table takes after its next growth.
    #[must_use]
    pub fn hex_grown_bytes(&self) -> usize {
        self.hex.grown_bytes()
    }

    /// Occurrences of `cat`.
    #[must_use]
    pub fn count(&self, cat: Cat<'_>) -> u64 {
        match cat {
            Cat::Missing => self.missing,
            Cat::Hex(v) => self.hex_count(v),
            Cat::Other(b) => self.other.get(b).copied().unwrap_or(0),
        }
    }

    fn hex_count(&self, key: u32) -> u64 {
        match self.hex.get(key) {
            None => 0,
            Some(ESCAPED) => self.big[&key],
            Some(c) => u64::from(c),
        }
    }

    /// Adds every count of `other` to these.
    pub fn merge(&mut self, other: &ColumnCounts) {
        self.missing += other.missing;
        for (k, v) in other.hex.iter() {
            let n = if v == ESCAPED { other.big[&k] } else { u64::from(v) };
            self.add_hex(k, n);
        }
        for (k, v) in &other.other {
            *self.other.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// Every (value, count), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Cat<'_>, u64)> + '_ {
        let missing = (self.missing > 0).then_some((Cat::Missing, self.missing));
        missing
            .into_iter()
            .chain(self.hex.iter().map(|(k, v)| (Cat::Hex(k), if v == ESCAPED { self.big[&k] } else { u64::from(v) })))
            .chain(self.other.iter().map(|(k, v)| (Cat::Other(k), *v)))
    }

    /// Empties the counts into a [`SortedCounts`] (values in text order), in
    /// the hex table's own memory: what a spill run holds.
    pub fn take_sorted(&mut self) -> SortedCounts {
        let mut slots = std::mem::replace(&mut self.hex, Table::with_capacity(64)).slots;
        slots.retain(|s| s.val != 0);
        slots.shrink_to_fit();
        slots.par_sort_unstable_by_key(|s| s.key);
        let mut specials: Vec<(Value, u64)> =
            std::mem::take(&mut self.other).into_iter().map(|(k, n)| (Value::Other(k), n)).collect();
        if self.missing > 0 {
            specials.push((Value::Missing, std::mem::take(&mut self.missing)));
        }
        specials.sort_unstable_by(|a, b| text_cmp(a.0.as_cat(), b.0.as_cat()));
        SortedCounts { hex: slots, big: std::mem::take(&mut self.big), specials }
    }
}

/// One column's counts in text order (see [`ColumnCounts::take_sorted`]).
#[derive(Debug)]
pub struct SortedCounts {
    hex: Vec<Slot>,
    big: HashMap<u32, u64>,
    specials: Vec<(Value, u64)>,
}

impl SortedCounts {
    /// Calls `f` with every (value, count) in text order.
    pub fn for_each<E>(&self, mut f: impl FnMut(Cat<'_>, u64) -> Result<(), E>) -> Result<(), E> {
        let mut specials = self.specials.iter().peekable();
        for s in &self.hex {
            while let Some((v, n)) = specials.next_if(|(v, _)| text_cmp(v.as_cat(), Cat::Hex(s.key)) == Ordering::Less)
            {
                f(v.as_cat(), *n)?;
            }
            f(Cat::Hex(s.key), if s.val == ESCAPED { self.big[&s.key] } else { u64::from(s.val) })?;
        }
        for (v, n) in specials {
            f(v.as_cat(), *n)?;
        }
        Ok(())
    }

    /// Every (value, count) in text order.
    pub fn iter(&self) -> impl Iterator<Item = (Cat<'_>, u64)> + '_ {
        let (mut h, mut o) = (0, 0);
        std::iter::from_fn(move || {
            let hex = self.hex.get(h).map(|s| Cat::Hex(s.key));
            let other = self.specials.get(o).map(|(v, _)| v.as_cat());
            match (hex, other) {
                (Some(x), Some(y)) if text_cmp(y, x) == Ordering::Less => {
                    o += 1;
                    Some((y, self.specials[o - 1].1))
                }
                (Some(x), _) => {
                    let s = self.hex[h];
                    h += 1;
                    Some((x, if s.val == ESCAPED { self.big[&s.key] } else { u64::from(s.val) }))
                }
                (None, Some(y)) => {
                    o += 1;
                    Some((y, self.specials[o - 1].1))
                }
                (None, None) => None,
            }
        })
    }

    /// Number of values.
    #[must_use]
    pub fn len(&self) -> usize {
        self.hex.len() + self.specials.len()
    }

    /// True when there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Value counts of all 26 categorical columns over a set of rows.
#[derive(Debug, Clone)]
pub struct Counts {
    /// Per column.
    pub columns: Vec<ColumnCounts>,
    /// Rows counted.
    pub rows: u64,
}

impl Default for Counts {
    fn default() -> Self {
        Self { columns: (0..NUM_CAT).map(|_| ColumnCounts::default()).collect(), rows: 0 }
    }
}

impl Counts {
    /// Counts the categorical values of one row.
    #[inline]
    pub fn add_row(&mut self, row: &Row<'_>) {
        for (col, &cat) in self.columns.iter_mut().zip(&row.cats) {
            col.add(cat);
        }
        self.rows += 1;
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Counts) {
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            a.merge(b);
        }
        self.rows += other.rows;
    }

    /// Merges two count sets, keeping the larger allocation.
    #[must_use]
    pub fn merged(a: Counts, b: Counts) -> Counts {
        let (mut big, small) = if a.columns.iter().map(ColumnCounts::distinct).sum::<usize>()
            >= b.columns.iter().map(ColumnCounts::distinct).sum::<usize>()
        {
            (a, b)
        } else {
            (b, a)
        };
        big.merge(&small);
        big
    }

    /// Bytes held by the tables.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.columns.iter().map(ColumnCounts::bytes).sum()
    }
}

/// An owned categorical value, as stored in a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// The missing value (an empty field).
    Missing,
    /// 8 lowercase hex digits.
    Hex(u32),
    /// Any other text.
    Other(Box<[u8]>),
}

impl Value {
    /// Borrows as a [`Cat`].
    #[must_use]
    pub fn as_cat(&self) -> Cat<'_> {
        match self {
            Value::Missing => Cat::Missing,
            Value::Hex(v) => Cat::Hex(*v),
            Value::Other(b) => Cat::Other(b),
        }
    }

    /// The value's text (empty for missing).
    #[must_use]
    pub fn text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.as_cat().write_text(&mut out);
        out
    }

    /// Parses text as it appears in a TSV field or the counts CSV.
    #[must_use]
    pub fn from_text(text: &[u8]) -> Value {
        if text.is_empty() {
            return Value::Missing;
        }
        // The TSV parser's rule: 8 lowercase hex digits, else text.
        match parse_hex8(text) {
            Some(v) => Value::Hex(v),
            None => Value::Other(text.into()),
        }
    }
}

impl From<Cat<'_>> for Value {
    fn from(c: Cat<'_>) -> Self {
        match c {
            Cat::Missing => Value::Missing,
            Cat::Hex(v) => Value::Hex(v),
            Cat::Other(b) => Value::Other(b.into()),
        }
    }
}

/// Byte order of two values' texts, without building them for hex pairs.
pub(crate) fn text_cmp(a: Cat<'_>, b: Cat<'_>) -> Ordering {
    match (a, b) {
        // Fixed-width lowercase hex: numeric order is byte order.
        (Cat::Hex(x), Cat::Hex(y)) => x.cmp(&y),
        (Cat::Missing, Cat::Missing) => Ordering::Equal,
        (Cat::Missing, _) => Ordering::Less,
        (_, Cat::Missing) => Ordering::Greater,
        (Cat::Hex(x), Cat::Other(o)) => hex8(x).as_slice().cmp(o),
        (Cat::Other(o), Cat::Hex(y)) => o.cmp(hex8(y).as_slice()),
        (Cat::Other(x), Cat::Other(y)) => x.cmp(y),
    }
}

/// A hex entry of a ranked list: `((ESCAPED - count) << 32) | key`, so that
/// ascending order is count descending, then key (= text) ascending; a count
/// of 2^32 - 1 or more packs as 0 and lives in a side map.
#[inline]
pub(crate) fn pack(key: u32, n: u64, big: &mut HashMap<u32, u64>) -> u64 {
    if n >= u64::from(ESCAPED) {
        big.insert(key, n);
        u64::from(key)
    } else {
        (u64::from(ESCAPED - n as u32) << 32) | u64::from(key)
    }
}

#[inline]
fn unpack(p: u64, big: &HashMap<u32, u64>) -> (u32, u64) {
    let key = p as u32;
    match ESCAPED - (p >> 32) as u32 {
        ESCAPED => (key, big[&key]),
        n => (key, u64::from(n)),
    }
}

/// An entry of a column, numbered (see [`assign_ranks`]).
#[derive(Debug)]
pub(crate) enum Ranked {
    /// A hex value.
    Hex { key: u32, count: u64, rank: u32 },
    /// The missing value or another text.
    Special { value: Value, count: u64, rank: u32 },
}

/// Puts the entries of a column in rank order and numbers them: sorts the
/// packed hex entries `ranked` (see [`pack`]) and the `specials` (missing
/// and other values), then calls `f(state, entry)` for each, in rank order
/// (`state` is also asked to prefetch the hex keys a few entries ahead).
///
/// # Panics
/// If there are 2^32 - 1 entries or more.
pub(crate) fn assign_ranks<S: Prefetch>(
    ranked: &mut [u64],
    big: &HashMap<u32, u64>,
    mut specials: Vec<(Value, u64)>,
    state: &mut S,
    mut f: impl FnMut(&mut S, Ranked),
) {
    ranked.par_sort_unstable();
    let escaped = ranked.partition_point(|p| p >> 32 == 0);
    ranked[..escaped]
        .sort_unstable_by(|a, b| big[&(*b as u32)].cmp(&big[&(*a as u32)]).then((*a as u32).cmp(&(*b as u32))));
    specials.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| text_cmp(a.0.as_cat(), b.0.as_cat())));
    assert!(ranked.len() + specials.len() < ESCAPED as usize, "vocabulary too large");
    let mut specials = specials.into_iter().peekable();
    let mut rank = 0u32;
    for (index, &p) in ranked.iter().enumerate() {
        let (key, count) = unpack(p, big);
        while let Some((value, count)) = specials
            .next_if(|s| s.1 > count || (s.1 == count && text_cmp(s.0.as_cat(), Cat::Hex(key)) == Ordering::Less))
        {
            rank += 1;
            f(state, Ranked::Special { value, count, rank });
        }
        if let Some(&q) = ranked.get(index + 8) {
            state.prefetch(q as u32);
        }
        rank += 1;
        f(state, Ranked::Hex { key, count, rank });
    }
    for (value, count) in specials {
        rank += 1;
        f(state, Ranked::Special { value, count, rank });
    }
}

/// Something whose memory for a key can be loaded ahead.
pub(crate) trait Prefetch {
    fn prefetch(&self, key: u32);
}

impl Prefetch for Table {
    fn prefetch(&self, key: u32) {
        Table::prefetch(self, key);
    }
}

impl Prefetch for ColumnVocab {
    fn prefetch(&self, key: u32) {
        self.hex.prefetch(key);
    }
}

/// The vocabulary of one categorical column: values ranked by count
/// (descending), ties by text (ascending byte order). Rank 1 is the most
/// frequent value; [`OOV_ID`] (0) stands for every value not in it.
///
/// Held compactly: a `u32 → rank` table of 8-byte slots (the counting table,
/// reused) and the ranked hex values as packed 8-byte words; the rare other
/// values and the missing value beside them.
#[derive(Debug, Clone)]
pub struct ColumnVocab {
    /// Hex value → rank; [`ESCAPED`] for a value counted but left out.
    hex: Table,
    missing: u32,
    other: HashMap<Box<[u8]>, u32>,
    /// The hex entries in rank order (see [`pack`]).
    ranked_hex: Vec<u64>,
    /// Counts of 2^32 - 1 or more.
    big: HashMap<u32, u64>,
    /// The other entries: (rank, value, count), by rank.
    specials: Vec<(u32, Value, u64)>,
    /// [`entries`](Self::entries), built when first asked for.
    entries: OnceLock<Vec<(Value, u64)>>,
    /// The number of entries, once they were shed (see
    /// [`Vocabulary::shed_entries`]).
    shed: usize,
}

impl ColumnVocab {
    fn empty(hex: Table) -> Self {
        Self {
            hex,
            missing: 0,
            other: HashMap::new(),
            ranked_hex: Vec::new(),
            big: HashMap::new(),
            specials: Vec::new(),
            entries: OnceLock::new(),
            shed: 0,
        }
    }

    /// Ranks the values of `counts` seen at least `min_count` times.
    #[must_use]
    pub fn from_counts(counts: &ColumnCounts, min_count: u64) -> Self {
        Self::from_counts_owned(counts.clone(), min_count)
    }

    /// As [`from_counts`](Self::from_counts), turning the counting table into
    /// the lookup table in place: each slot's count becomes its rank.
    ///
    /// # Panics
    /// If there are 2^32 - 1 values or more.
    #[must_use]
    pub fn from_counts_owned(counts: ColumnCounts, min_count: u64) -> Self {
        let min = min_count.max(1);
        let ColumnCounts { mut hex, big: counted_big, missing, other } = counts;
        let mut big = HashMap::new();
        let mut ranked = Vec::with_capacity(hex.len());
        for s in hex.slots.iter_mut().filter(|s| s.val != 0) {
            let n = if s.val == ESCAPED { counted_big[&s.key] } else { u64::from(s.val) };
            if n >= min {
                ranked.push(pack(s.key, n, &mut big));
            }
            s.val = ESCAPED; // out of the vocabulary until ranked below
        }
        drop(counted_big);
        let mut specials: Vec<(Value, u64)> =
            other.into_iter().filter(|(_, n)| *n >= min).map(|(k, n)| (Value::Other(k), n)).collect();
        if missing >= min {
            specials.push((Value::Missing, missing));
        }
        let mut vocab = Self::empty(hex);
        assign_ranks(&mut ranked, &big, specials, &mut vocab, |vocab, entry| match entry {
            Ranked::Hex { key, rank, .. } => {
                let slot = vocab.hex.find(key);
                vocab.hex.slots[slot].val = rank;
            }
            Ranked::Special { value, count, rank } => {
                vocab.add_special(rank, value, count);
            }
        });
        vocab.ranked_hex = ranked;
        vocab.big = big;
        vocab
    }

    /// Records a non-hex entry. Returns the rank it had already, if any.
    fn add_special(&mut self, rank: u32, value: Value, n: u64) -> Option<u32> {
        let earlier = match &value {
            Value::Missing => std::mem::replace(&mut self.missing, rank),
            Value::Other(b) => self.other.insert(b.clone(), rank).unwrap_or(0),
            Value::Hex(_) => unreachable!("hex values are in the table"),
        };
        self.specials.push((rank, value, n));
        (earlier != 0).then_some(earlier)
    }

    /// Builds the lookup tables for entries already in rank order.
    ///
    /// # Panics
    /// If there are 2^32 - 1 entries or more, or a value appears twice.
    #[must_use]
    pub fn from_ranked(entries: Vec<(Value, u64)>) -> Self {
        Self::try_from_ranked(entries)
            .unwrap_or_else(|(id, first)| panic!("rank {id} repeats the value of rank {first}"))
    }

    /// As [`from_ranked`](Self::from_ranked), but a value that appears twice
    /// is an error: `Err((rank, earlier rank))`, both 1-based.
    ///
    /// # Panics
    /// If there are 2^32 - 1 entries or more.
    pub fn try_from_ranked(entries: Vec<(Value, u64)>) -> Result<Self, (u32, u32)> {
        let mut b = RankedBuilder::new(entries.iter().filter(|(v, _)| matches!(v, Value::Hex(_))).count());
        for (v, n) in entries {
            b.push(v, n)?;
        }
        Ok(b.finish())
    }

    /// The vocabulary id of `cat`: its rank, or [`OOV_ID`].
    #[inline]
    #[must_use]
    pub fn id(&self, cat: Cat<'_>) -> i64 {
        let id = match cat {
            Cat::Missing => self.missing,
            Cat::Hex(v) => match self.hex.get(v) {
                None | Some(ESCAPED) => 0,
                Some(r) => r,
            },
            Cat::Other(b) => self.other.get(b).copied().unwrap_or(0),
        };
        if id == 0 { OOV_ID } else { i64::from(id) }
    }

    /// Number of values (ids 1..=len).
    #[must_use]
    pub fn len(&self) -> usize {
        self.ranked_hex.len() + self.specials.len() + self.shed
    }

    /// True when no value made it in.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the tables.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.hex.bytes() + self.ranked_hex.capacity() * 8 + self.specials.len() * 64 + self.big.len() * 24
    }

    /// Calls `f` with every (value, count) in rank order.
    pub fn for_each_entry<E>(&self, mut f: impl FnMut(Cat<'_>, u64) -> Result<(), E>) -> Result<(), E> {
        let mut specials = self.specials.iter().peekable();
        let mut rank = 0u32;
        for &p in &self.ranked_hex {
            rank += 1;
            while let Some((_, v, n)) = specials.next_if(|s| s.0 == rank) {
                f(v.as_cat(), *n)?;
                rank += 1;
            }
            let (key, n) = unpack(p, &self.big);
            f(Cat::Hex(key), n)?;
        }
        for (_, v, n) in specials {
            f(v.as_cat(), *n)?;
        }
        Ok(())
    }

    /// (value, count) in rank order (built on the first call).
    #[must_use]
    pub fn entries(&self) -> &[(Value, u64)] {
        self.entries.get_or_init(|| {
            let mut out = Vec::with_capacity(self.len());
            let _ = self.for_each_entry::<()>(|c, n| {
                out.push((Value::from(c), n));
                Ok(())
            });
            out
        })
    }
}

/// Builds a [`ColumnVocab`] from entries given in rank order, one at a time
/// (the artifacts' loader streams the CSV through it).
#[derive(Debug)]
pub struct RankedBuilder {
    vocab: ColumnVocab,
    rank: u32,
}

impl RankedBuilder {
    /// A builder for a column of about `hex_values` hex values.
    #[must_use]
    pub fn new(hex_values: usize) -> Self {
        let mut vocab = ColumnVocab::empty(Table::with_capacity(hex_values));
        vocab.ranked_hex.reserve_exact(hex_values);
        Self { vocab, rank: 0 }
    }

    /// Adds the entry of the next rank. A value already added is an error:
    /// `Err((rank, earlier rank))`, both 1-based.
    ///
    /// # Panics
    /// At the 2^32 - 1st entry.
    pub fn push(&mut self, value: Value, n: u64) -> Result<(), (u32, u32)> {
        assert!(self.rank < ESCAPED - 1, "vocabulary too large");
        self.rank += 1;
        let rank = self.rank;
        let v = &mut self.vocab;
        let earlier = match value {
            Value::Hex(h) => {
                let slot = v.hex.entry(h);
                let earlier = std::mem::replace(slot, rank);
                v.ranked_hex.push(pack(h, n, &mut v.big));
                (earlier != 0).then_some(earlier)
            }
            other => v.add_special(rank, other, n),
        };
        match earlier {
            Some(e) => Err((rank, e)),
            None => Ok(()),
        }
    }

    /// The vocabulary.
    #[must_use]
    pub fn finish(self) -> ColumnVocab {
        self.vocab
    }
}

/// The vocabularies of all 26 categorical columns.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    /// Per column.
    pub columns: Vec<ColumnVocab>,
}

impl Vocabulary {
    /// Ranks every column of `counts`, keeping values seen at least
    /// `min_count` times. Columns are ranked in parallel.
    #[must_use]
    pub fn from_counts(counts: &Counts, min_count: u64) -> Self {
        Self::from_counts_owned(counts.clone(), min_count)
    }

    /// As [`from_counts`](Self::from_counts), reusing the counts' memory.
    #[must_use]
    pub fn from_counts_owned(counts: Counts, min_count: u64) -> Self {
        use rayon::prelude::*;
        Self { columns: counts.columns.into_par_iter().map(|c| ColumnVocab::from_counts_owned(c, min_count)).collect() }
    }

    /// Fills `ids` with the vocabulary ids of a row's categorical values.
    #[inline]
    pub fn ids(&self, row: &Row<'_>, ids: &mut [i64; NUM_CAT]) {
        // Start every column's table load first: the large tables miss the
        // cache, and 26 overlapping misses cost about as much as one.
        for (vocab, &cat) in self.columns.iter().zip(&row.cats) {
            if let Cat::Hex(v) = cat {
                vocab.hex.prefetch(v);
            }
        }
        for ((id, vocab), &cat) in ids.iter_mut().zip(&self.columns).zip(&row.cats) {
            *id = vocab.id(cat);
        }
    }

    /// Vocabulary size per column, C1..C26.
    #[must_use]
    pub fn sizes(&self) -> [u64; NUM_CAT] {
        std::array::from_fn(|c| self.columns[c].len() as u64)
    }

    /// Bytes held by the tables.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.columns.iter().map(ColumnVocab::bytes).sum()
    }

    /// Frees the ranked entries, keeping the id tables and the sizes: for a
    /// vocabulary that will only look ids up from now on (its
    /// [`ColumnVocab::entries`] are empty afterwards).
    pub(crate) fn shed_entries(&mut self) {
        for c in &mut self.columns {
            c.shed = c.len();
            c.ranked_hex = Vec::new();
            c.specials = Vec::new();
            c.entries = OnceLock::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranks_by_count_then_text() {
        let mut c = ColumnCounts::default();
        for (cat, n) in [
            (Cat::Hex(0xbbbb_bbbb), 5),
            (Cat::Hex(0xaaaa_aaaa), 5),
            (Cat::Missing, 5),
            (Cat::Other(b"ZZ"), 5),
            (Cat::Other(b"zz"), 7),
            (Cat::Hex(0x0000_0001), 1),
        ] {
            c.add_n(cat, n);
        }
        let v = ColumnVocab::from_counts(&c, 1);
        let order: Vec<Vec<u8>> = v.entries().iter().map(|(v, _)| v.text()).collect();
        // 7 first; then the four 5s by text: "", "ZZ", "aaaaaaaa", "bbbbbbbb"; then the 1.
        assert_eq!(
            order,
            vec![
                b"zz".to_vec(),
                vec![],
                b"ZZ".to_vec(),
                b"aaaaaaaa".to_vec(),
                b"bbbbbbbb".to_vec(),
                b"00000001".to_vec()
            ]
        );
        assert_eq!(v.id(Cat::Other(b"zz")), 1);
        assert_eq!(v.id(Cat::Missing), 2);
        assert_eq!(v.id(Cat::Hex(0x1)), 6);
        assert_eq!(v.id(Cat::Hex(0x2)), OOV_ID);
        // min_count drops the rare one: it becomes out of vocabulary.
        let v = ColumnVocab::from_counts(&c, 2);
        assert_eq!(v.len(), 5);
        assert_eq!(v.id(Cat::Hex(0x1)), OOV_ID);
    }

    #[test]
    fn counts_past_u32_escape_and_rank_right() {
        let edge = u64::from(u32::MAX);
        let mut c = ColumnCounts::default();
        c.add_n(Cat::Hex(1), edge - 2);
        c.add_n(Cat::Hex(1), 5); // crosses 2^32 - 1
        c.add_n(Cat::Hex(2), edge + 10); // escapes at once
        c.add_n(Cat::Hex(3), edge + 10); // ties with 2: by text
        c.add_n(Cat::Hex(4), edge - 1); // the largest count a slot holds
        c.add_n(Cat::Other(b"zz"), edge + 100);
        c.add(Cat::Hex(5));
        assert_eq!(c.count(Cat::Hex(1)), edge + 3);
        assert_eq!(c.count(Cat::Hex(2)), edge + 10);
        assert_eq!(c.count(Cat::Hex(4)), edge - 1);
        let mut twice = c.clone();
        twice.merge(&c);
        assert_eq!(twice.count(Cat::Hex(1)), 2 * (edge + 3));
        assert_eq!(twice.count(Cat::Hex(4)), 2 * (edge - 1));
        let v = ColumnVocab::from_counts(&c, 1);
        let order: Vec<(Value, u64)> = v.entries().to_vec();
        assert_eq!(
            order,
            vec![
                (Value::Other((*b"zz").into()), edge + 100),
                (Value::Hex(2), edge + 10),
                (Value::Hex(3), edge + 10),
                (Value::Hex(1), edge + 3),
                (Value::Hex(4), edge - 1),
                (Value::Hex(5), 1),
            ]
        );
        for (i, (val, _)) in order.iter().enumerate() {
            assert_eq!(v.id(val.as_cat()), i as i64 + 1);
        }
        // Rebuilt from its entries (as the artifacts' loader does), the same ids.
        let again = ColumnVocab::from_ranked(order.clone());
        for (i, (val, _)) in order.iter().enumerate() {
            assert_eq!(again.id(val.as_cat()), i as i64 + 1);
        }
        // A min count above 2^32: only the escaped counts that reach it stay.
        let v = ColumnVocab::from_counts(&c, edge + 10);
        assert_eq!(v.len(), 3);
        assert_eq!(v.id(Cat::Hex(1)), OOV_ID);
        assert_eq!(v.id(Cat::Hex(3)), 3);
    }

    #[test]
    fn value_text_round_trip() {
        for v in [
            Value::Missing,
            Value::Hex(0x68fd_1e64),
            Value::Other((*b"ABCDEF12").into()),
            Value::Other((*b"x,\"").into()),
        ] {
            assert_eq!(Value::from_text(&v.text()), v);
        }
    }

    proptest! {
        #[test]
        fn table_counts_like_a_hashmap(keys in proptest::collection::vec(0u32..300, 0..2000)) {
            let mut c = ColumnCounts::default();
            let mut reference: HashMap<u32, u64> = HashMap::new();
            for &k in &keys {
                c.add(Cat::Hex(k));
                *reference.entry(k).or_default() += 1;
            }
            prop_assert_eq!(c.distinct(), reference.len());
            for (k, n) in &reference {
                prop_assert_eq!(c.count(Cat::Hex(*k)), *n);
            }
            // Merging split halves gives the same counts.
            let (a, b) = keys.split_at(keys.len() / 2);
            let mut ca = ColumnCounts::default();
            let mut cb = ColumnCounts::default();
            a.iter().for_each(|&k| ca.add(Cat::Hex(k)));
            b.iter().for_each(|&k| cb.add(Cat::Hex(k)));
            ca.merge(&cb);
            for (k, n) in &reference {
                prop_assert_eq!(ca.count(Cat::Hex(*k)), *n);
            }
            // Ids are a permutation of 1..=n consistent with the ranking rule.
            let v = ColumnVocab::from_counts(&c, 1);
            let mut prev: Option<(u64, u32)> = None;
            for (i, (val, n)) in v.entries().iter().enumerate() {
                let Value::Hex(h) = val else { unreachable!() };
                prop_assert_eq!(v.id(Cat::Hex(*h)), i as i64 + 1);
                if let Some((pn, ph)) = prev {
                    prop_assert!(pn > *n || (pn == *n && ph < *h));
                }
                prev = Some((*n, *h));
            }
        }
    }
}
