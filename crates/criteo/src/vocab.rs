//! Counting categorical values and ranking them into vocabularies.
//!
//! Counting hashes each value once: Criteo's 8-hex-digit values are parsed
//! into `u32` keys of an open-addressing table; the rare other values go to a
//! map of their bytes, copied only when first seen.

use std::cmp::Ordering;
use std::collections::HashMap;

use rayon::slice::ParallelSliceMut;

use crate::parse::{Cat, Row, hex8, parse_hex8};
use sparky_prepared::schema::{NUM_CAT, OOV_ID};

#[inline]
fn slot_of(key: u32, mask: usize) -> usize {
    // Fibonacci hashing: Criteo values are hashes already, but other keys need not be.
    ((u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 32) as usize & mask
}

/// An open-addressing map from `u32` keys to non-zero values; a zero value
/// marks an empty slot. Keys and values share one array, so a probe touches
/// one cache line.
#[derive(Debug, Clone)]
struct U32Table<V> {
    slots: Vec<(u32, V)>,
    len: usize,
}

trait TableValue: Copy + Default + PartialEq {}
impl TableValue for u64 {}
impl TableValue for u32 {}

impl<V: TableValue> U32Table<V> {
    fn with_capacity(n: usize) -> Self {
        let cap = (n * 2).next_power_of_two().max(16);
        let slots = vec![(0, V::default()); cap];
        sparky_memhint::huge_pages(&slots);
        Self { slots, len: 0 }
    }

    #[inline]
    fn find(&self, key: u32) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = slot_of(key, mask);
        loop {
            let (k, v) = self.slots[i];
            if v == V::default() || k == key {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn get(&self, key: u32) -> Option<V> {
        let v = self.slots[self.find(key)].1;
        (v != V::default()).then_some(v)
    }

    /// Asks the CPU to start loading the cache line of `key`'s first probe,
    /// so that several lookups' memory latencies overlap.
    #[inline]
    fn prefetch(&self, key: u32) {
        let i = slot_of(key, self.slots.len() - 1);
        sparky_memhint::prefetch(self.slots.as_ptr().wrapping_add(i));
    }

    /// The value of `key`, inserting it (with the default value) if absent;
    /// the caller must then store a non-zero value.
    #[inline]
    fn entry(&mut self, key: u32) -> &mut V {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let i = self.find(key);
        let slot = &mut self.slots[i];
        if slot.1 == V::default() {
            slot.0 = key;
            self.len += 1;
        }
        &mut slot.1
    }

    fn grow(&mut self) {
        let mut bigger = Self::with_capacity(self.slots.len());
        for (k, v) in self.iter() {
            let i = bigger.find(k);
            bigger.slots[i] = (k, v);
            bigger.len += 1;
        }
        *self = bigger;
    }

    fn iter(&self) -> impl Iterator<Item = (u32, V)> + '_ {
        self.slots.iter().copied().filter(|(_, v)| *v != V::default())
    }
}

/// Value counts of one categorical column.
#[derive(Debug, Clone)]
pub struct ColumnCounts {
    hex: U32Table<u64>,
    missing: u64,
    other: HashMap<Box<[u8]>, u64>,
}

impl Default for ColumnCounts {
    fn default() -> Self {
        Self { hex: U32Table::with_capacity(64), missing: 0, other: HashMap::new() }
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
        match cat {
            Cat::Missing => self.missing += n,
            Cat::Hex(v) => *self.hex.entry(v) += n,
            Cat::Other(b) => match self.other.get_mut(b) {
                Some(c) => *c += n,
                None => {
                    self.other.insert(b.into(), n);
                }
            },
        }
    }

    /// Distinct values seen (missing counts as one when seen).
    #[must_use]
    pub fn distinct(&self) -> usize {
        self.hex.len + self.other.len() + usize::from(self.missing > 0)
    }

    /// Occurrences of `cat`.
    #[must_use]
    pub fn count(&self, cat: Cat<'_>) -> u64 {
        match cat {
            Cat::Missing => self.missing,
            Cat::Hex(v) => self.hex.get(v).unwrap_or(0),
            Cat::Other(b) => self.other.get(b).copied().unwrap_or(0),
        }
    }

    /// Adds every count of `other` to these.
    pub fn merge(&mut self, other: &ColumnCounts) {
        self.missing += other.missing;
        for (k, v) in other.hex.iter() {
            *self.hex.entry(k) += v;
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
            .chain(self.hex.iter().map(|(k, v)| (Cat::Hex(k), v)))
            .chain(self.other.iter().map(|(k, v)| (Cat::Other(k), *v)))
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

/// The vocabulary of one categorical column: values ranked by count
/// (descending), ties by text (ascending byte order). Rank 1 is the most
/// frequent value; [`OOV_ID`] (0) stands for every value not in it.
#[derive(Debug, Clone)]
pub struct ColumnVocab {
    /// (value, count) in rank order: entry `i` has id `i + 1`.
    entries: Vec<(Value, u64)>,
    hex: U32Table<u32>,
    missing: u32,
    other: HashMap<Box<[u8]>, u32>,
}

impl ColumnVocab {
    /// Ranks the values of `counts` seen at least `min_count` times.
    #[must_use]
    pub fn from_counts(counts: &ColumnCounts, min_count: u64) -> Self {
        let mut entries: Vec<(Cat<'_>, u64)> = counts.iter().filter(|(_, n)| *n >= min_count.max(1)).collect();
        entries.par_sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| text_cmp(a.0, b.0)));
        Self::from_ranked(entries.into_iter().map(|(c, n)| (Value::from(c), n)).collect())
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
        assert!(entries.len() < u32::MAX as usize, "vocabulary too large");
        let mut hex = U32Table::with_capacity(entries.len());
        let mut missing = 0;
        let mut other = HashMap::new();
        for (i, (v, _)) in entries.iter().enumerate() {
            let id = i as u32 + 1;
            let earlier = match v {
                Value::Missing => std::mem::replace(&mut missing, id),
                Value::Hex(h) => std::mem::replace(hex.entry(*h), id),
                Value::Other(b) => other.insert(b.clone(), id).unwrap_or(0),
            };
            if earlier != 0 {
                return Err((id, earlier));
            }
        }
        Ok(Self { entries, hex, missing, other })
    }

    /// The vocabulary id of `cat`: its rank, or [`OOV_ID`].
    #[inline]
    #[must_use]
    pub fn id(&self, cat: Cat<'_>) -> i64 {
        let id = match cat {
            Cat::Missing => self.missing,
            Cat::Hex(v) => self.hex.get(v).unwrap_or(0),
            Cat::Other(b) => self.other.get(b).copied().unwrap_or(0),
        };
        if id == 0 { OOV_ID } else { i64::from(id) }
    }

    /// Number of values (ids 1..=len).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no value made it in.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (value, count) in rank order.
    #[must_use]
    pub fn entries(&self) -> &[(Value, u64)] {
        &self.entries
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
        use rayon::prelude::*;
        Self { columns: counts.columns.par_iter().map(|c| ColumnVocab::from_counts(c, min_count)).collect() }
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
