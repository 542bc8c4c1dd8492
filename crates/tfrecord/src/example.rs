//! `tf.train.Example` codecs for hot paths.
//!
//! - [`ExampleView`]: a borrowed, allocation-free reader over the bytes of an
//!   Example. It follows protobuf's rules exactly as prost does (packed and
//!   unpacked lists, repeated fields merged, later map entries winning,
//!   unknown fields skipped), and refuses what prost refuses.
//! - [`Int64SchemaDecoder`]: decodes an Example with a fixed set of int64
//!   features (the Criteo schema) into a caller-owned `&mut [i64]`.
//! - [`Int64ExampleEncoder`]: encodes a fixed set of single-value int64
//!   features straight into a byte buffer, producing exactly the bytes prost
//!   produces for the same `Example` (maps are `BTreeMap`s, so entries are in
//!   name order).
//!
//! Proptests in this module prove the three agree with prost on arbitrary
//! Examples.

use std::collections::HashMap;

use sparky_proto::tensorflow as pb;

/// Nesting budget, as prost's default recursion limit.
const RECURSION_LIMIT: u32 = 100;

/// Why an Example could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExampleError {
    /// The bytes are not a valid protobuf encoding of an Example.
    #[error("malformed Example at byte {offset}: {what}")]
    Malformed {
        /// Offset within the Example's bytes.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// Valid protobuf that this decoder does not take apart (a map entry whose
    /// value field appears more than once, which protobuf merges). prost
    /// decodes it; no known writer produces it.
    #[error("unsupported Example encoding at byte {offset}: {what}")]
    Unsupported {
        /// Offset within the Example's bytes.
        offset: usize,
        /// What is unsupported.
        what: &'static str,
    },
    /// A feature of the schema is absent.
    #[error("feature {name:?} is missing")]
    Missing {
        /// The feature's name.
        name: String,
    },
    /// A feature of the schema holds another kind of list.
    #[error("feature {name:?} is {found}, expected an int64 list")]
    WrongKind {
        /// The feature's name.
        name: String,
        /// What it holds: "a bytes list", "a float list" or "empty".
        found: &'static str,
    },
    /// A feature of the schema holds other than exactly one value.
    #[error("feature {name:?} has {count} values, expected exactly 1")]
    WrongCount {
        /// The feature's name.
        name: String,
        /// How many values it holds.
        count: usize,
    },
}

type Result<T> = std::result::Result<T, ExampleError>;

fn malformed<T>(offset: usize, what: &'static str) -> Result<T> {
    Err(ExampleError::Malformed { offset, what })
}

const WT_VARINT: u8 = 0;
const WT_64: u8 = 1;
const WT_LEN: u8 = 2;
const WT_START_GROUP: u8 = 3;
const WT_END_GROUP: u8 = 4;
const WT_32: u8 = 5;

/// A window onto part of an Example's bytes; positions are absolute.
#[derive(Clone, Copy, Debug)]
struct Wire<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Wire<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0, end: data.len() }
    }

    #[inline]
    fn done(&self) -> bool {
        self.pos >= self.end
    }

    /// A varint, with prost's rules: at most 10 bytes, the 10th at most 1.
    #[inline]
    fn varint(&mut self) -> Result<u64> {
        let start = self.pos;
        if start < self.end {
            let b = self.data[start];
            if b < 0x80 {
                self.pos = start + 1;
                return Ok(u64::from(b));
            }
        }
        let mut value = 0u64;
        for i in 0..10 {
            let p = start + i;
            if p >= self.end {
                return malformed(start, "truncated varint");
            }
            let b = self.data[p];
            if i == 9 && b > 1 {
                return malformed(start, "varint longer than 64 bits");
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.pos = p + 1;
                return Ok(value);
            }
        }
        malformed(start, "varint longer than 64 bits")
    }

    /// A field key: (field number, wire type).
    #[inline]
    fn key(&mut self) -> Result<(u32, u8)> {
        let start = self.pos;
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return malformed(start, "field key out of range");
        }
        let wire_type = (key & 7) as u8;
        if wire_type > 5 {
            return malformed(start, "invalid wire type");
        }
        let field = (key >> 3) as u32;
        if field == 0 {
            return malformed(start, "field number 0");
        }
        Ok((field, wire_type))
    }

    /// A length-delimited body, returned as its own window.
    #[inline]
    fn body(&mut self) -> Result<Wire<'a>> {
        let start = self.pos;
        let len = self.varint()?;
        if len > (self.end - self.pos) as u64 {
            return malformed(start, "length runs past the end of its message");
        }
        let body = Wire { data: self.data, pos: self.pos, end: self.pos + len as usize };
        self.pos = body.end;
        Ok(body)
    }

    fn fixed(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.end - self.pos < n {
            return malformed(self.pos, "truncated fixed-width value");
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Skips a field of an unknown number.
    fn skip(&mut self, field: u32, wire_type: u8, budget: u32) -> Result<()> {
        match wire_type {
            WT_VARINT => self.varint().map(drop),
            WT_64 => self.fixed(8).map(drop),
            WT_32 => self.fixed(4).map(drop),
            WT_LEN => self.body().map(drop),
            WT_START_GROUP => {
                if budget == 0 {
                    return malformed(self.pos, "nesting too deep");
                }
                loop {
                    if self.done() {
                        return malformed(self.pos, "unterminated group");
                    }
                    let at = self.pos;
                    let (f, wt) = self.key()?;
                    if wt == WT_END_GROUP {
                        if f != field {
                            return malformed(at, "mismatched end of group");
                        }
                        return Ok(());
                    }
                    self.skip(f, wt, budget - 1)?;
                }
            }
            _ => malformed(self.pos, "unexpected end of group"),
        }
    }
}

/// Which list a feature holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Bytes = 1,
    Float = 2,
    Int64 = 3,
}

/// The values of one feature, borrowed from the Example's bytes. Validated
/// when the feature was read, so iterating cannot fail.
#[derive(Clone, Copy, Debug)]
pub struct ValueList<'a> {
    /// The Feature message, from the first list occurrence that counts.
    feature: Wire<'a>,
    kind: ListKind,
    count: usize,
    /// For int64 lists: the first value (0 when empty).
    first: i64,
}

impl<'a> ValueList<'a> {
    /// Number of values.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the list holds no value.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Calls `f` on each raw element of every list occurrence that counts:
    /// varints as `(WT_VARINT, value, &[])`, fixed32 as `(WT_32, bits, &[])`,
    /// byte strings as `(WT_LEN, 0, bytes)`.
    fn for_each_raw(&self, mut f: impl FnMut(u8, u64, &'a [u8])) {
        // Everything was validated on the way in; the errors cannot happen.
        let mut w = self.feature;
        while !w.done() {
            let Ok((field, wt)) = w.key() else { return };
            if field != self.kind as u32 || wt != WT_LEN {
                if w.skip(field, wt, RECURSION_LIMIT).is_err() {
                    return;
                }
                continue;
            }
            let Ok(mut list) = w.body() else { return };
            while !list.done() {
                let Ok((lf, lwt)) = list.key() else { return };
                if lf != 1 {
                    if list.skip(lf, lwt, RECURSION_LIMIT).is_err() {
                        return;
                    }
                    continue;
                }
                match (self.kind, lwt) {
                    (ListKind::Int64, WT_VARINT) => {
                        let Ok(v) = list.varint() else { return };
                        f(WT_VARINT, v, &[]);
                    }
                    (ListKind::Int64, WT_LEN) => {
                        let Ok(mut packed) = list.body() else { return };
                        while !packed.done() {
                            let Ok(v) = packed.varint() else { return };
                            f(WT_VARINT, v, &[]);
                        }
                    }
                    (ListKind::Float, WT_32) => {
                        let Ok(b) = list.fixed(4) else { return };
                        f(WT_32, u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes"))), &[]);
                    }
                    (ListKind::Float, WT_LEN) => {
                        let Ok(packed) = list.body() else { return };
                        for c in packed.data[packed.pos..packed.end].chunks_exact(4) {
                            f(WT_32, u64::from(u32::from_le_bytes(c.try_into().expect("4 bytes"))), &[]);
                        }
                    }
                    (ListKind::Bytes, WT_LEN) => {
                        let Ok(b) = list.body() else { return };
                        f(WT_LEN, 0, &b.data[b.pos..b.end]);
                    }
                    _ => return,
                }
            }
        }
    }

    /// The int64 values (empty for other kinds).
    #[must_use]
    pub fn int64s(&self) -> Vec<i64> {
        let mut out = Vec::with_capacity(self.count);
        if self.kind == ListKind::Int64 {
            self.for_each_raw(|_, v, _| out.push(v as i64));
        }
        out
    }

    /// The float values (empty for other kinds).
    #[must_use]
    pub fn floats(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.count);
        if self.kind == ListKind::Float {
            self.for_each_raw(|_, v, _| out.push(f32::from_bits(v as u32)));
        }
        out
    }

    /// The byte strings, borrowed (empty for other kinds).
    #[must_use]
    pub fn bytes(&self) -> Vec<&'a [u8]> {
        let mut out = Vec::with_capacity(self.count);
        if self.kind == ListKind::Bytes {
            self.for_each_raw(|_, _, b| out.push(b));
        }
        out
    }

    /// Calls `f` on each int64 value, without allocating.
    pub fn for_each_int64(&self, mut f: impl FnMut(i64)) {
        if self.kind == ListKind::Int64 {
            self.for_each_raw(|_, v, _| f(v as i64));
        }
    }
}

/// One feature's value: which kind of list it holds, if any.
#[derive(Clone, Copy, Debug)]
pub enum FeatureRef<'a> {
    /// A Feature with no list set.
    Empty,
    /// A `bytes_list`.
    Bytes(ValueList<'a>),
    /// A `float_list`.
    Float(ValueList<'a>),
    /// An `int64_list`.
    Int64(ValueList<'a>),
}

impl<'a> FeatureRef<'a> {
    /// A short description of the kind, for messages.
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self {
            FeatureRef::Empty => "empty",
            FeatureRef::Bytes(_) => "a bytes list",
            FeatureRef::Float(_) => "a float list",
            FeatureRef::Int64(_) => "an int64 list",
        }
    }

    /// The int64 list, if that is what the feature holds.
    #[must_use]
    pub fn as_int64(&self) -> Option<&ValueList<'a>> {
        match self {
            FeatureRef::Int64(l) => Some(l),
            _ => None,
        }
    }

    /// Converts to prost's owned `Feature`.
    #[must_use]
    pub fn to_proto(&self) -> pb::Feature {
        use pb::feature::Kind;
        let kind = match self {
            FeatureRef::Empty => None,
            FeatureRef::Bytes(l) => {
                Some(Kind::BytesList(pb::BytesList { value: l.bytes().into_iter().map(<[u8]>::to_vec).collect() }))
            }
            FeatureRef::Float(l) => Some(Kind::FloatList(pb::FloatList { value: l.floats() })),
            FeatureRef::Int64(l) => Some(Kind::Int64List(pb::Int64List { value: l.int64s() })),
        };
        pb::Feature { kind }
    }

    /// Validates a Feature message and finds which list counts: the last kind
    /// field, merged with the earlier occurrences of the same kind that follow
    /// the last occurrence of another kind (protobuf's oneof merge).
    fn parse(mut w: Wire<'a>, budget: u32) -> Result<Self> {
        let whole = w;
        let mut kind: Option<ListKind> = None;
        let mut from = w.pos;
        let mut count = 0usize;
        let mut first = 0i64;
        while !w.done() {
            let at = w.pos;
            let (field, wt) = w.key()?;
            let k = match field {
                1 => ListKind::Bytes,
                2 => ListKind::Float,
                3 => ListKind::Int64,
                _ => {
                    w.skip(field, wt, budget)?;
                    continue;
                }
            };
            if wt != WT_LEN {
                return malformed(at, "feature list with the wrong wire type");
            }
            if budget == 0 {
                return malformed(at, "nesting too deep");
            }
            let list = w.body()?;
            if kind != Some(k) {
                kind = Some(k);
                from = at;
                count = 0;
            }
            let (n, f) = validate_list(list, k, budget - 1)?;
            if count == 0 {
                first = f;
            }
            count += n;
        }
        let Some(kind) = kind else {
            return Ok(FeatureRef::Empty);
        };
        let list = ValueList { feature: Wire { data: whole.data, pos: from, end: whole.end }, kind, count, first };
        Ok(match kind {
            ListKind::Bytes => FeatureRef::Bytes(list),
            ListKind::Float => FeatureRef::Float(list),
            ListKind::Int64 => FeatureRef::Int64(list),
        })
    }
}

/// Validates one list message; returns its value count and (int64) first value.
fn validate_list(mut list: Wire<'_>, kind: ListKind, budget: u32) -> Result<(usize, i64)> {
    let mut count = 0usize;
    let mut first = 0i64;
    while !list.done() {
        let at = list.pos;
        let (field, wt) = list.key()?;
        if field != 1 {
            list.skip(field, wt, budget)?;
            continue;
        }
        match (kind, wt) {
            (ListKind::Int64, WT_VARINT) => {
                let v = list.varint()? as i64;
                if count == 0 {
                    first = v;
                }
                count += 1;
            }
            (ListKind::Int64, WT_LEN) => {
                let mut packed = list.body()?;
                while !packed.done() {
                    let v = packed.varint()? as i64;
                    if count == 0 {
                        first = v;
                    }
                    count += 1;
                }
            }
            (ListKind::Float, WT_32) => {
                list.fixed(4)?;
                count += 1;
            }
            (ListKind::Float, WT_LEN) => {
                let packed = list.body()?;
                let n = packed.end - packed.pos;
                if n % 4 != 0 {
                    return malformed(at, "packed floats not a multiple of 4 bytes");
                }
                count += n / 4;
            }
            (ListKind::Bytes, WT_LEN) => {
                list.body()?;
                count += 1;
            }
            _ => return malformed(at, "list value with the wrong wire type"),
        }
    }
    Ok((count, first))
}

/// A borrowed view of an encoded `tf.train.Example`.
///
/// ```
/// use prost::Message;
/// use sparky_proto::tensorflow::{Example, Feature, Features, Int64List, feature::Kind};
/// use sparky_tfrecord::example::{ExampleView, FeatureRef};
///
/// let mut features = Features::default();
/// features.feature.insert("clicked".into(), Feature { kind: Some(Kind::Int64List(Int64List { value: vec![1] })) });
/// let bytes = Example { features: Some(features) }.encode_to_vec();
///
/// let view = ExampleView::new(&bytes);
/// for entry in view.features() {
///     let (name, feature) = entry.unwrap();
///     assert_eq!(name, "clicked");
///     assert_eq!(feature.as_int64().unwrap().int64s(), vec![1]);
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ExampleView<'a> {
    bytes: &'a [u8],
}

impl<'a> ExampleView<'a> {
    /// Views `bytes`; nothing is checked until the features are read.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The feature map's entries in wire order. A name may appear more than
    /// once; as in protobuf, the later entry wins.
    #[must_use]
    pub fn features(&self) -> FeatureIter<'a> {
        FeatureIter { example: Wire::new(self.bytes), current: None, error: false, has_features: false }
    }

    /// Decodes into prost's owned `Example`, exactly as `Example::decode` would.
    pub fn to_proto(&self) -> Result<pb::Example> {
        let mut it = self.features();
        let mut map = std::collections::BTreeMap::new();
        for entry in it.by_ref() {
            let (name, f) = entry?;
            map.insert(name.to_string(), f.to_proto());
        }
        Ok(pb::Example { features: it.has_features.then_some(pb::Features { feature: map }) })
    }
}

/// Iterator over an Example's feature entries; see [`ExampleView::features`].
#[derive(Debug)]
pub struct FeatureIter<'a> {
    example: Wire<'a>,
    current: Option<Wire<'a>>,
    error: bool,
    has_features: bool,
}

impl<'a> FeatureIter<'a> {
    fn advance(&mut self) -> Result<Option<(&'a str, FeatureRef<'a>)>> {
        loop {
            if let Some(features) = self.current.as_mut() {
                while !features.done() {
                    let at = features.pos;
                    let (field, wt) = features.key()?;
                    if field != 1 {
                        features.skip(field, wt, RECURSION_LIMIT - 1)?;
                        continue;
                    }
                    if wt != WT_LEN {
                        return malformed(at, "feature map entry with the wrong wire type");
                    }
                    let entry = features.body()?;
                    return parse_entry(entry, RECURSION_LIMIT - 2).map(Some);
                }
                self.current = None;
            }
            let w = &mut self.example;
            if w.done() {
                return Ok(None);
            }
            let at = w.pos;
            let (field, wt) = w.key()?;
            if field != 1 {
                w.skip(field, wt, RECURSION_LIMIT)?;
                continue;
            }
            if wt != WT_LEN {
                return malformed(at, "Example.features with the wrong wire type");
            }
            self.current = Some(w.body()?);
            self.has_features = true;
        }
    }
}

/// Parses a map entry: (key, value), either possibly absent.
#[inline]
fn parse_entry<'a>(mut entry: Wire<'a>, budget: u32) -> Result<(&'a str, FeatureRef<'a>)> {
    let mut key: &'a [u8] = &[];
    let mut value: Option<Wire<'a>> = None;
    while !entry.done() {
        let at = entry.pos;
        let (field, wt) = entry.key()?;
        match field {
            1 | 2 if wt != WT_LEN => {
                return malformed(at, "map entry field with the wrong wire type");
            }
            1 => {
                let k = entry.body()?;
                key = &k.data[k.pos..k.end];
                if std::str::from_utf8(key).is_err() {
                    return malformed(at, "feature name is not valid UTF-8");
                }
            }
            2 => {
                if budget == 0 {
                    return malformed(at, "nesting too deep");
                }
                let v = entry.body()?;
                if value.is_some() {
                    return Err(ExampleError::Unsupported {
                        offset: at,
                        what: "feature value given twice in one map entry",
                    });
                }
                value = Some(v);
            }
            _ => entry.skip(field, wt, budget)?,
        }
    }
    let name = std::str::from_utf8(key).unwrap_or_default();
    let feature = match value {
        Some(v) => FeatureRef::parse(v, budget - 1)?,
        None => FeatureRef::Empty,
    };
    Ok((name, feature))
}

impl<'a> Iterator for FeatureIter<'a> {
    type Item = Result<(&'a str, FeatureRef<'a>)>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.error {
            return None;
        }
        match self.advance() {
            Ok(x) => x.map(Ok),
            Err(e) => {
                self.error = true;
                Some(Err(e))
            }
        }
    }
}

/// Decodes Examples whose features of interest each hold exactly one int64
/// (the Criteo schema) into a caller-owned slice. Other features are checked
/// for well-formedness and otherwise ignored.
///
/// ```
/// use sparky_tfrecord::example::{Int64ExampleEncoder, Int64SchemaDecoder};
///
/// let names = ["clicked", "integer-feature-1", "categorical-feature-1"];
/// let enc = Int64ExampleEncoder::new(&names);
/// let mut bytes = Vec::new();
/// enc.encode(&[1, -10, 42], &mut bytes);
///
/// let mut dec = Int64SchemaDecoder::new(&names);
/// let mut values = [0i64; 3];
/// dec.decode(&bytes, &mut values).unwrap();
/// assert_eq!(values, [1, -10, 42]);
/// ```
#[derive(Debug, Clone)]
pub struct Int64SchemaDecoder {
    names: Vec<String>,
    /// Schema slots in name (wire) order: (name bytes, slot).
    sorted: Vec<(Box<[u8]>, usize)>,
    lookup: HashMap<Box<[u8]>, usize>,
    seen: Vec<u32>,
    generation: u32,
    /// Slots that may be absent (see [`with_optional`](Self::with_optional)).
    optional: Vec<bool>,
    /// In name order: the bytes every canonical map entry of that feature
    /// starts with (`0a klen key 12`), and its slot. Empty when a name is too
    /// long for the fast path.
    templates: Vec<(Box<[u8]>, usize)>,
}

impl Int64SchemaDecoder {
    /// A decoder for these feature names; `decode` fills slot `i` with the
    /// value of `names[i]`.
    ///
    /// # Panics
    /// If a name appears twice.
    #[must_use]
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        let names: Vec<String> = names.iter().map(|s| s.as_ref().to_string()).collect();
        let mut sorted: Vec<(Box<[u8]>, usize)> =
            names.iter().enumerate().map(|(i, n)| (n.as_bytes().into(), i)).collect();
        sorted.sort();
        let lookup: HashMap<Box<[u8]>, usize> = sorted.iter().cloned().collect();
        assert_eq!(lookup.len(), names.len(), "feature names must be distinct");
        let seen = vec![0; names.len()];
        let optional = vec![false; names.len()];
        let templates = if sorted.iter().all(|(n, _)| n.len() < 0x80) {
            sorted
                .iter()
                .map(|(n, slot)| {
                    let mut t = vec![0x0a, n.len() as u8];
                    t.extend_from_slice(n);
                    t.push(0x12);
                    (t.into_boxed_slice(), *slot)
                })
                .collect()
        } else {
            Vec::new()
        };
        Self { names, sorted, lookup, seen, generation: 0, optional, templates }
    }

    /// Decodes by protobuf's rules alone: the last entry of each name
    /// counts. For the rare Example where a schema feature is not one int64
    /// on first sight (an error, unless a later entry replaces it).
    #[cold]
    fn decode_last_wins(&mut self, bytes: &[u8], out: &mut [i64]) -> Result<()> {
        let mut last: Vec<Option<FeatureRef<'_>>> = vec![None; self.names.len()];
        for entry in ExampleView::new(bytes).features() {
            let (name, f) = entry?;
            if let Some(&slot) = self.lookup.get(name.as_bytes()) {
                last[slot] = Some(f);
            }
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.seen.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        for (slot, f) in last.into_iter().enumerate() {
            let name = || self.names[slot].clone();
            match f {
                Some(FeatureRef::Int64(l)) if l.len() == 1 => {
                    out[slot] = l.first;
                    self.seen[slot] = self.generation;
                }
                Some(FeatureRef::Int64(l)) => return Err(ExampleError::WrongCount { name: name(), count: l.len() }),
                Some(other) => return Err(ExampleError::WrongKind { name: name(), found: other.kind_name() }),
                None if self.optional[slot] => {}
                None => return Err(ExampleError::Missing { name: name() }),
            }
        }
        Ok(())
    }

    /// Decodes an Example laid out exactly as prost and TensorFlow write it
    /// (one `features` field, canonical single-value entries in name order,
    /// only schema features): the common case, a handful of word compares
    /// per feature. Returns false, having decided nothing, for anything else.
    #[inline]
    fn decode_canonical(&mut self, b: &[u8], out: &mut [i64]) -> bool {
        let generation = self.generation;
        if self.templates.is_empty() || b.len() < 2 || b[0] != 0x0a {
            return false;
        }
        let mut w = Wire { data: b, pos: 1, end: b.len() };
        match w.varint() {
            Ok(len) if len == (b.len() - w.pos) as u64 => {}
            _ => return false,
        }
        let (mut p, end) = (w.pos, b.len());
        let mut t = 0;
        while p < end {
            if b[p] != 0x0a || p + 1 >= end || b[p + 1] >= 0x80 {
                return false;
            }
            let (body, e) = (p + 2, b[p + 1] as usize);
            if e > end - body {
                return false;
            }
            let entry = &b[body..body + e];
            // The next schema feature present: optional ones may be skipped.
            let (prefix, slot) = loop {
                let Some((prefix, slot)) = self.templates.get(t) else { return false };
                if entry.len() > prefix.len() + 5 && short_eq(&entry[..prefix.len()], prefix) {
                    break (prefix, *slot);
                }
                if !self.optional[*slot] {
                    return false;
                }
                t += 1;
            };
            let m = prefix.len();
            let vlen = e - m - 5;
            let tail = &entry[m..m + 5];
            if vlen > 10 || tail != [4 + vlen as u8, 0x1a, 2 + vlen as u8, 0x0a, vlen as u8] {
                return false;
            }
            let Some(v) = exact_varint(&entry[m + 5..]) else { return false };
            out[slot] = v as i64;
            self.seen[slot] = generation;
            t += 1;
            p = body + e;
        }
        self.templates[t..].iter().all(|(_, slot)| self.optional[*slot])
    }

    /// Declares the slots of these names optional: an Example without them
    /// decodes, their slots keep whatever value they held, and
    /// [`is_present`](Self::is_present) says whether they were there.
    ///
    /// # Panics
    /// If a name is not in the schema.
    #[must_use]
    pub fn with_optional<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        for n in names {
            let slot = self.lookup[n.as_ref().as_bytes()];
            self.optional[slot] = true;
        }
        self
    }

    /// Whether slot `slot` was present in the last decoded Example.
    #[must_use]
    pub fn is_present(&self, slot: usize) -> bool {
        self.seen[slot] == self.generation
    }

    /// The schema's names, in slot order.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Decodes `bytes` into `out` (`out.len()` must equal the number of names).
    ///
    /// # Errors
    /// A malformed Example, or a schema feature that is missing, of another
    /// kind, or without exactly one value; the error names the feature.
    pub fn decode(&mut self, bytes: &[u8], out: &mut [i64]) -> Result<()> {
        assert_eq!(out.len(), self.names.len(), "output slice must have one slot per feature");
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.seen.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        if self.decode_canonical(bytes, out) {
            return Ok(());
        }
        // Start again with a new generation: the fast path may have marked slots.
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.seen.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        let generation = self.generation;
        let mut guess = 0usize;
        let mut found = 0usize;
        let mut example = Wire::new(bytes);
        while !example.done() {
            let at = example.pos;
            let (field, wt) = example.key()?;
            if field != 1 {
                example.skip(field, wt, RECURSION_LIMIT)?;
                continue;
            }
            if wt != WT_LEN {
                return malformed(at, "Example.features with the wrong wire type");
            }
            let mut features = example.body()?;
            while !features.done() {
                let at = features.pos;
                let (field, wt) = features.key()?;
                if field != 1 {
                    features.skip(field, wt, RECURSION_LIMIT - 1)?;
                    continue;
                }
                if wt != WT_LEN {
                    return malformed(at, "feature map entry with the wrong wire type");
                }
                let entry =
                    if features.data[at] == 0x0a && features.pos < features.end && features.data[features.pos] < 0x80 {
                        // A one-byte length: the common case, without the general varint.
                        let len = features.data[features.pos] as usize;
                        let start = features.pos + 1;
                        if len > features.end - start {
                            return malformed(features.pos, "length runs past the end of its message");
                        }
                        features.pos = start + len;
                        Wire { data: features.data, pos: start, end: start + len }
                    } else {
                        features.body()?
                    };
                // Fast path: a canonical entry holding one int64, as prost and
                // TensorFlow write it.
                let (name, value) = match canonical_single_int64(entry) {
                    Some(x) => x,
                    None => {
                        let (name, f) = parse_entry(entry, RECURSION_LIMIT - 2)?;
                        (name.as_bytes(), Err(f))
                    }
                };
                // Entries come in name order: try the expected slot first.
                let slot = match self.sorted.get(guess) {
                    Some((n, s)) if short_eq(n, name) => {
                        guess += 1;
                        Some(*s)
                    }
                    _ => self.lookup.get(name).copied(),
                };
                let Some(slot) = slot else {
                    // Not in the schema, but prost refuses a name that is not
                    // UTF-8 (the general path checks it; the fast one does not).
                    if std::str::from_utf8(name).is_err() {
                        return malformed(entry.pos, "feature name is not valid UTF-8");
                    }
                    continue;
                };
                let v = match value {
                    Ok(v) => v,
                    Err(f) => match f {
                        FeatureRef::Int64(l) if l.len() == 1 => l.first,
                        // Not one int64, but a later entry of the same name
                        // may replace it: protobuf keeps the last.
                        _ => return self.decode_last_wins(bytes, out),
                    },
                };
                out[slot] = v;
                if self.seen[slot] != generation {
                    self.seen[slot] = generation;
                    found += 1;
                }
            }
        }
        if found != self.names.len()
            && let Some(missing) = (0..self.names.len()).find(|&i| self.seen[i] != generation && !self.optional[i])
        {
            return Err(ExampleError::Missing { name: self.names[missing].clone() });
        }
        Ok(())
    }
}

/// Recognises `[0a klen key 12 flen 1a llen 0a vlen varint]` exactly,
/// returning the name and the value; anything else goes the general way.
#[inline]
fn canonical_single_int64(entry: Wire<'_>) -> Option<(&[u8], std::result::Result<i64, FeatureRef<'_>>)> {
    let b = &entry.data[entry.pos..entry.end];
    if b.len() < 2 || b[0] != 0x0a || b[1] >= 0x80 {
        return None;
    }
    let klen = b[1] as usize;
    let name = b.get(2..2 + klen)?;
    let r = b.get(2 + klen..)?;
    // 12 flen 1a llen 0a vlen + vlen bytes
    if r.len() < 7 || r[0] != 0x12 || r[2] != 0x1a || r[4] != 0x0a {
        return None;
    }
    let (flen, llen, vlen) = (r[1] as usize, r[3] as usize, r[5] as usize);
    if flen != r.len() - 2 || llen != flen - 2 || vlen != llen - 2 || vlen == 0 || vlen > 10 {
        return None;
    }
    let v = exact_varint(&r[6..])?;
    Some((name, Ok(v as i64)))
}

/// Decodes `b` as exactly one varint (every byte but the last has the
/// continuation bit; at most 10 bytes, the 10th at most 1), as prost would.
#[inline(always)]
fn exact_varint(b: &[u8]) -> Option<u64> {
    if let [x] = b {
        return (*x < 0x80).then_some(u64::from(*x));
    }
    let (&last, init) = b.split_last()?;
    if last >= 0x80 || (b.len() == 10 && last > 1) {
        return None;
    }
    let mut v = 0u64;
    for (i, &x) in init.iter().enumerate() {
        if x < 0x80 {
            return None;
        }
        v |= u64::from(x & 0x7f) << (7 * i);
    }
    Some(v | (u64::from(last) << (7 * init.len())))
}

/// Byte-slice equality for short names, without a call to `memcmp`: 8-byte
/// words, the last one overlapping.
#[inline(always)]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a == b;
    }
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let mut i = 0;
    while i + 8 < n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least 1.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes Examples whose features each hold exactly one int64, in the bytes
/// prost would produce for the same `Example`, without building it.
///
/// ```
/// use prost::Message;
/// use sparky_proto::tensorflow::{Example, Feature, Features, Int64List, feature::Kind};
/// use sparky_tfrecord::example::Int64ExampleEncoder;
///
/// let enc = Int64ExampleEncoder::new(&["b", "a"]);
/// let mut fast = Vec::new();
/// enc.encode(&[2, -1], &mut fast);
///
/// let mut features = Features::default();
/// for (name, v) in [("b", 2), ("a", -1)] {
///     features.feature.insert(name.into(), Feature { kind: Some(Kind::Int64List(Int64List { value: vec![v] })) });
/// }
/// assert_eq!(fast, Example { features: Some(features) }.encode_to_vec());
/// ```
#[derive(Debug, Clone)]
pub struct Int64ExampleEncoder {
    /// Per wire position: the slot of the caller's values it takes.
    order: Vec<usize>,
    /// Per wire position: `12 flen` is preceded by `0a klen key`; this is the
    /// prefix `0a klen key 12`, concatenated for all features.
    prefixes: Vec<u8>,
    /// Per wire position: (start, end) of its prefix in `prefixes`.
    spans: Vec<(usize, usize)>,
}

impl Int64ExampleEncoder {
    /// An encoder for these feature names; `encode` takes values in the same
    /// order.
    ///
    /// # Panics
    /// If a name is empty or appears twice (prost would drop an empty key).
    #[must_use]
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by(|&a, &b| names[a].as_ref().as_bytes().cmp(names[b].as_ref().as_bytes()));
        let mut prefixes = Vec::new();
        let mut spans = Vec::new();
        for w in order.windows(2) {
            assert_ne!(names[w[0]].as_ref(), names[w[1]].as_ref(), "feature names must be distinct");
        }
        for &i in &order {
            let name = names[i].as_ref().as_bytes();
            assert!(!name.is_empty(), "feature names must not be empty");
            let start = prefixes.len();
            prefixes.push(0x0a);
            put_varint(&mut prefixes, name.len() as u64);
            prefixes.extend_from_slice(name);
            prefixes.push(0x12);
            spans.push((start, prefixes.len()));
        }
        Self { order, prefixes, spans }
    }

    /// Number of features.
    #[must_use]
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True for an encoder of no features.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Appends the encoded Example to `out`.
    ///
    /// # Panics
    /// If `values.len()` differs from the number of names.
    #[inline]
    pub fn encode(&self, values: &[i64], out: &mut Vec<u8>) {
        assert_eq!(values.len(), self.order.len(), "one value per feature");
        // Entry = prefix, feature length (1 byte: at most 14), 1a llen 0a vlen varint.
        let mut features_len = 0usize;
        for (pos, &slot) in self.order.iter().enumerate() {
            let (s, e) = self.spans[pos];
            let entry_len = (e - s) + 1 + 4 + varint_len(values[slot] as u64);
            features_len += 1 + varint_len(entry_len as u64) + entry_len;
        }
        out.reserve(1 + varint_len(features_len as u64) + features_len);
        out.push(0x0a);
        put_varint(out, features_len as u64);
        for (pos, &slot) in self.order.iter().enumerate() {
            let (s, e) = self.spans[pos];
            let v = values[slot] as u64;
            let vlen = varint_len(v);
            let entry_len = (e - s) + 1 + 4 + vlen;
            out.push(0x0a);
            put_varint(out, entry_len as u64);
            out.extend_from_slice(&self.prefixes[s..e]);
            out.extend_from_slice(&[(4 + vlen) as u8, 0x1a, (2 + vlen) as u8, 0x0a, vlen as u8]);
            put_varint(out, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::feature::Kind;
    use proptest::prelude::*;
    use prost::Message;

    #[test]
    fn short_eq_sees_every_byte_at_every_length() {
        for n in 0..48usize {
            let a: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
            assert!(short_eq(&a, &a.clone()), "length {n}");
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x80;
                assert!(!short_eq(&a, &b), "length {n}, byte {i}");
            }
            assert!(!short_eq(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }

    fn arb_feature() -> impl Strategy<Value = pb::Feature> {
        prop_oneof![
            Just(pb::Feature { kind: None }),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..4)
                .prop_map(|v| pb::Feature { kind: Some(Kind::BytesList(pb::BytesList { value: v })) }),
            proptest::collection::vec(any::<f32>(), 0..5)
                .prop_map(|v| pb::Feature { kind: Some(Kind::FloatList(pb::FloatList { value: v })) }),
            proptest::collection::vec(any::<i64>(), 0..5)
                .prop_map(|v| pb::Feature { kind: Some(Kind::Int64List(pb::Int64List { value: v })) }),
        ]
    }

    fn arb_example() -> impl Strategy<Value = pb::Example> {
        prop_oneof![
            Just(pb::Example { features: None }),
            proptest::collection::btree_map("[a-z\u{e9}-]{0,12}", arb_feature(), 0..8)
                .prop_map(|m| pb::Example { features: Some(pb::Features { feature: m }) }),
        ]
    }

    fn int64_example(names: &[String], values: &[i64]) -> pb::Example {
        let mut features = pb::Features::default();
        for (n, v) in names.iter().zip(values) {
            features
                .feature
                .insert(n.clone(), pb::Feature { kind: Some(Kind::Int64List(pb::Int64List { value: vec![*v] })) });
        }
        pb::Example { features: Some(features) }
    }

    proptest! {
        #[test]
        fn view_agrees_with_prost(ex in arb_example()) {
            let bytes = ex.encode_to_vec();
            let got = ExampleView::new(&bytes).to_proto().unwrap();
            // Compare encodings: floats may be NaN.
            prop_assert_eq!(got.encode_to_vec(), bytes);
        }

        #[test]
        fn view_agrees_with_prost_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let ours = ExampleView::new(&bytes).to_proto();
            let theirs = pb::Example::decode(bytes.as_slice());
            match (ours, theirs) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a.encode_to_vec(), b.encode_to_vec()),
                (Err(ExampleError::Unsupported { .. }), _) | (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "ours {:?} prost {:?}", a, b),
            }
        }

        #[test]
        fn encoder_matches_prost_and_decoder_reads_it(
            entries in proptest::collection::btree_map("[a-zA-Z0-9_-]{1,200}", any::<i64>(), 1..50),
        ) {
            let names: Vec<String> = entries.keys().rev().cloned().collect();
            let values: Vec<i64> = names.iter().map(|n| entries[n]).collect();
            let enc = Int64ExampleEncoder::new(&names);
            let mut fast = Vec::new();
            enc.encode(&values, &mut fast);
            prop_assert_eq!(&fast, &int64_example(&names, &values).encode_to_vec());
            let mut dec = Int64SchemaDecoder::new(&names);
            let mut out = vec![0; names.len()];
            dec.decode(&fast, &mut out).unwrap();
            prop_assert_eq!(out, values);
        }

        #[test]
        fn decoder_agrees_with_prost(ex in arb_example(), pick in proptest::collection::vec(any::<prop::sample::Index>(), 1..4)) {
            // Choose schema names among the example's features (plus one that may be absent).
            let keys: Vec<String> = ex.features.as_ref().map(|f| f.feature.keys().cloned().collect()).unwrap_or_default();
            let mut names: Vec<String> = pick.iter().filter(|_| !keys.is_empty()).map(|i| keys[i.index(keys.len())].clone()).collect();
            names.push("zz-absent?".into());
            names.sort();
            names.dedup();
            let bytes = ex.encode_to_vec();
            let mut dec = Int64SchemaDecoder::new(&names);
            let mut out = vec![0; names.len()];
            let got = dec.decode(&bytes, &mut out);
            // What prost says about the first schema name that is not one int64.
            let map = ex.features.map(|f| f.feature).unwrap_or_default();
            let mut expected = Ok(());
            for n in &names {
                match map.get(n).and_then(|f| f.kind.clone()) {
                    Some(Kind::Int64List(l)) if l.value.len() == 1 => {}
                    _ if expected.is_err() => {}
                    None if !map.contains_key(n) => expected = Err(ExampleError::Missing { name: n.clone() }),
                    None => expected = Err(ExampleError::WrongKind { name: n.clone(), found: "empty" }),
                    Some(Kind::Int64List(l)) => expected = Err(ExampleError::WrongCount { name: n.clone(), count: l.value.len() }),
                    Some(Kind::FloatList(_)) => expected = Err(ExampleError::WrongKind { name: n.clone(), found: "a float list" }),
                    Some(Kind::BytesList(_)) => expected = Err(ExampleError::WrongKind { name: n.clone(), found: "a bytes list" }),
                }
            }
            // The decoder reports kind/count faults in wire order and missing
            // features last, so compare the kind of outcome.
            prop_assert_eq!(got.is_ok(), expected.is_ok(), "{:?} vs {:?}", got, expected);
            if got.is_ok() {
                for (n, v) in names.iter().zip(&out) {
                    let Some(Kind::Int64List(l)) = &map[n].kind else { unreachable!() };
                    prop_assert_eq!(l.value[0], *v);
                }
            }
        }
    }

    #[test]
    fn non_canonical_encodings_follow_protobuf_merge_rules() {
        // Example { features: {a: int64 [1, 2] (unpacked, split over two lists)} }
        // then a second Features occurrence overriding "b".
        let entry_a = {
            let list1 = [0x08, 0x01]; // value 1 unpacked
            let list2 = [0x0a, 0x01, 0x02]; // value 2 packed
            let mut feature = vec![0x1a, list1.len() as u8];
            feature.extend_from_slice(&list1);
            feature.extend_from_slice(&[0x1a, list2.len() as u8]);
            feature.extend_from_slice(&list2);
            let mut e = vec![0x0a, 1, b'a', 0x12, feature.len() as u8];
            e.extend_from_slice(&feature);
            e
        };
        let entry_b = |v: u8| vec![0x0a, 1, b'b', 0x12, 5, 0x1a, 3, 0x0a, 1, v];
        let features = |entries: &[Vec<u8>]| {
            let mut f = Vec::new();
            for e in entries {
                f.push(0x0a);
                f.push(e.len() as u8);
                f.extend_from_slice(e);
            }
            let mut out = vec![0x0a, f.len() as u8];
            out.extend_from_slice(&f);
            out
        };
        let mut bytes = features(&[entry_a, entry_b(5)]);
        bytes.extend_from_slice(&[0x78, 0x07]); // unknown varint field 15
        bytes.extend(features(&[entry_b(7)]));
        let prost = pb::Example::decode(bytes.as_slice()).unwrap();
        let ours = ExampleView::new(&bytes).to_proto().unwrap();
        assert_eq!(ours, prost);
        let mut dec = Int64SchemaDecoder::new(&["b"]);
        let mut out = [0];
        dec.decode(&bytes, &mut out).unwrap();
        assert_eq!(out, [7]);
        let mut dec = Int64SchemaDecoder::new(&["a"]);
        assert_eq!(dec.decode(&bytes, &mut out), Err(ExampleError::WrongCount { name: "a".into(), count: 2 }));
    }

    #[test]
    fn errors_name_the_feature() {
        let names = ["x", "y"];
        let mut f = pb::Features::default();
        f.feature.insert("x".into(), pb::Feature { kind: Some(Kind::FloatList(pb::FloatList { value: vec![1.0] })) });
        let bytes = pb::Example { features: Some(f) }.encode_to_vec();
        let mut dec = Int64SchemaDecoder::new(&names);
        let mut out = [0; 2];
        let e = dec.decode(&bytes, &mut out).unwrap_err();
        assert_eq!(e.to_string(), "feature \"x\" is a float list, expected an int64 list");
        let bytes = int64_example(&["x".into()], &[3]).encode_to_vec();
        assert_eq!(dec.decode(&bytes, &mut out), Err(ExampleError::Missing { name: "y".into() }));
        // An optional feature may be absent; presence is reported.
        let mut opt = Int64SchemaDecoder::new(&names).with_optional(&["y"]);
        let mut two = [0, 77];
        opt.decode(&bytes, &mut two).unwrap();
        assert_eq!(two, [3, 77]);
        assert!(opt.is_present(0) && !opt.is_present(1));
        assert!(matches!(dec.decode(&bytes[..bytes.len() - 1], &mut out), Err(ExampleError::Malformed { .. })));
    }

    /// Found by `fuzz/example_schema`: a canonical single-int64 entry whose
    /// name is not UTF-8 (and so not in the schema) was skipped, where prost
    /// refuses the Example.
    #[test]
    fn fuzz_schema_decoder_refuses_a_name_that_is_not_utf8() {
        let bytes = [0x0a, 0x0d, 0x0a, 0x0b, 0x0a, 0x02, 0xff, 0xfe, 0x12, 0x05, 0x1a, 0x03, 0x0a, 0x01, 0x00];
        assert!(pb::Example::decode(bytes.as_slice()).is_err());
        let mut dec = Int64SchemaDecoder::new(&["a"]).with_optional(&["a"]);
        let mut out = [0];
        assert!(matches!(dec.decode(&bytes, &mut out), Err(ExampleError::Malformed { offset: 4, .. })));
    }

    /// Found by `fuzz/example_schema`: a schema feature given twice, first
    /// as another kind, then as one int64, was refused; protobuf keeps the
    /// last entry, so prost reads the int64.
    #[test]
    fn fuzz_schema_decoder_lets_a_later_entry_replace_a_wrong_one() {
        let entry = |name: &str, kind: Kind| {
            let mut features = pb::Features::default();
            features.feature.insert(name.into(), pb::Feature { kind: Some(kind) });
            pb::Example { features: Some(features) }.encode_to_vec()
        };
        // Two Example.features messages merge into one map: "x" twice.
        let mut bytes = entry("x", Kind::FloatList(pb::FloatList { value: vec![1.0] }));
        bytes.extend(entry("y", Kind::Int64List(pb::Int64List { value: vec![5] })));
        bytes.extend(entry("x", Kind::Int64List(pb::Int64List { value: vec![3] })));
        let prost = pb::Example::decode(bytes.as_slice()).unwrap();
        assert_eq!(prost.features.unwrap().feature.len(), 2);
        let mut dec = Int64SchemaDecoder::new(&["x", "y", "z"]).with_optional(&["z"]);
        let mut out = [0, 0, 9];
        dec.decode(&bytes, &mut out).unwrap();
        assert_eq!(out, [3, 5, 9]);
        assert!(dec.is_present(0) && dec.is_present(1) && !dec.is_present(2));
        // The other way round the last entry is wrong, and so is the Example.
        let mut bytes = entry("x", Kind::Int64List(pb::Int64List { value: vec![3] }));
        bytes.extend(entry("y", Kind::Int64List(pb::Int64List { value: vec![5, 6] })));
        bytes.extend(entry("x", Kind::FloatList(pb::FloatList { value: vec![1.0] })));
        let e = dec.decode(&bytes, &mut out).unwrap_err();
        assert_eq!(e, ExampleError::WrongKind { name: "x".into(), found: "a float list" });
    }

    #[test]
    fn varint_lengths() {
        for (v, n) in [(0u64, 1), (127, 1), (128, 2), (16383, 2), (16384, 3), (u64::MAX, 10), ((-10i64) as u64, 10)] {
            assert_eq!(varint_len(v), n, "{v}");
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), n);
            assert_eq!(Wire::new(&b).varint().unwrap(), v);
        }
    }
}
