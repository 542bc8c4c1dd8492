//! REST request bodies, parsed in one pass straight into scorable rows.
//!
//! An instance of `:predict` is one of
//! - `{"b64": "<serialized tf.train.Example>"}`: a prepared row, as a TF
//!   Serving client sends it to the guide's SavedModel;
//! - an object of raw Criteo fields by the Example schema's names
//!   (`integer-feature-1` ... `categorical-feature-26`; absent or `null` is
//!   missing), prepared with the export's vocabulary as criteo-prepare would;
//! - a raw TSV line (39 fields, or 40 with the label first);
//! - `{"inputs": <one of the above>}` (the signature's input named).
//!
//! An example of `:classify` is a feature map as TF Serving builds a
//! `tf.train.Example` from: integers as integers, a categorical feature as its
//! prepared id (an integer) or its raw value (a string, looked up in the
//! vocabulary); `context` features go into every example.
//!
//! Errors name the instance (or example) index and the field; serde_json adds
//! the line and column.

use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use sparky_criteo::parse::{RowError, parse_cat, parse_int_field, parse_line_any};
use sparky_predict::RawScorer;

use crate::models::Loaded;
use sparky_prepared::reader::{Row, RowDecoder};
use sparky_prepared::schema::{
    CAT_FEATURES, ID_FEATURE, INT_FEATURES, LABEL_FEATURE, MISSING_INT, NUM_CAT, NUM_INT, OOV_ID,
};
use sparky_savedmodel::{INPUT_KEY, SERVING_SIGNATURE};

use crate::error::ApiError;

/// One row ready to score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// I1..I13 (missing: the schema's missing value).
    pub ints: [i64; NUM_INT],
    /// Vocabulary ids of C1..C26.
    pub ids: [i64; NUM_CAT],
    /// The row's `id`, when the instance carries one (echoed in the answer).
    pub id: Option<i64>,
}

/// How a `:predict` request was laid out; the answer follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `{"instances": [...]}`: answered `{"predictions": [...]}`.
    Rows,
    /// `{"inputs": ...}`: answered `{"outputs": {"classes": ..., "scores": ...}}`.
    Columnar,
}

/// A parsed `:predict` body.
#[derive(Debug)]
pub struct PredictBody {
    /// Its layout.
    pub layout: Layout,
    /// Its rows, in request order.
    pub rows: Vec<Parsed>,
}

/// A feature map before defaults: what an object gave.
#[derive(Debug, Clone, Default)]
struct Partial {
    ints: [Option<i64>; NUM_INT],
    ids: [Option<i64>; NUM_CAT],
    id: Option<i64>,
}

impl Partial {
    /// Fills what `self` lacks from `context`.
    fn with_context(mut self, context: &Partial) -> Self {
        for (a, b) in self.ints.iter_mut().zip(&context.ints) {
            *a = a.or(*b);
        }
        for (a, b) in self.ids.iter_mut().zip(&context.ids) {
            *a = a.or(*b);
        }
        self.id = self.id.or(context.id);
        self
    }

    fn finish(self, missing_ids: &[i64; NUM_CAT]) -> Parsed {
        let mut p = Parsed { ints: [MISSING_INT; NUM_INT], ids: *missing_ids, id: self.id };
        for (o, v) in p.ints.iter_mut().zip(self.ints) {
            if let Some(v) = v {
                *o = v;
            }
        }
        for (o, v) in p.ids.iter_mut().zip(self.ids) {
            if let Some(v) = v {
                *o = v;
            }
        }
        p
    }
}

impl From<Object> for Partial {
    fn from(o: Object) -> Self {
        match o {
            Object::Features(p) => p,
            Object::Done(p) => Partial { ints: p.ints.map(Some), ids: p.ids.map(Some), id: p.id },
        }
    }
}

/// What the parser needs: the loaded version (its scorer, vocabulary sizes
/// and the ids of missing values, computed once at load), a decoder of
/// prepared Examples (taken from the version's pool on the first `b64`
/// instance, given back after), and the rows parsed so far.
struct Env<'s> {
    loaded: &'s Loaded,
    decoder: Option<RowDecoder>,
    row: Row,
    rows: Vec<Parsed>,
    b64: Vec<u8>,
}

impl<'s> Env<'s> {
    fn new(loaded: &'s Loaded) -> Self {
        Self { loaded, decoder: None, row: Row::default(), rows: Vec::new(), b64: Vec::new() }
    }

    fn scorer(&self) -> &'s RawScorer {
        &self.loaded.scorer
    }

    fn sizes(&self) -> &'s [u64; NUM_CAT] {
        &self.loaded.prep.sizes
    }

    fn missing_ids(&self) -> &'s [i64; NUM_CAT] {
        &self.loaded.prep.missing_ids
    }

    fn decoder(&mut self) -> &mut RowDecoder {
        let loaded = self.loaded;
        self.decoder.get_or_insert_with(|| loaded.prep.take_decoder(&loaded.scorer))
    }
}

impl Drop for Env<'_> {
    fn drop(&mut self) {
        if let Some(d) = self.decoder.take() {
            self.loaded.prep.give_back(d);
        }
    }
}

/// Which API a feature map is read for: categorical integers are prepared
/// ids in `:classify` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Predict,
    Classify,
}

impl Api {
    fn item(self) -> &'static str {
        match self {
            Api::Predict => "instance",
            Api::Classify => "example",
        }
    }
}

/// Where a value is, for messages: `instance 3: field "integer-feature-2"`.
#[derive(Clone, Copy)]
struct At<'f> {
    api: Api,
    index: Option<usize>,
    field: Option<&'f str>,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{} {i}", self.api.item())?,
            None => write!(f, "context")?,
        }
        if let Some(field) = self.field {
            write!(f, ": field \"{field}\"")?;
        }
        Ok(())
    }
}

fn err<E: de::Error>(at: At<'_>, msg: impl fmt::Display) -> E {
    E::custom(format_args!("{at}: {msg}"))
}

/// A key of a feature map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Int(usize),
    Cat(usize),
    Label,
    Id,
    B64,
    Inputs,
}

fn key_of(name: &str) -> Option<Key> {
    if let Some(n) = name.strip_prefix("integer-feature-") {
        return n
            .parse::<usize>()
            .ok()
            .filter(|i| (1..=NUM_INT).contains(i) && INT_FEATURES[i - 1] == name)
            .map(|i| Key::Int(i - 1));
    }
    if let Some(n) = name.strip_prefix("categorical-feature-") {
        return n
            .parse::<usize>()
            .ok()
            .filter(|i| (1..=NUM_CAT).contains(i) && CAT_FEATURES[i - 1] == name)
            .map(|i| Key::Cat(i - 1));
    }
    match name {
        LABEL_FEATURE => Some(Key::Label),
        ID_FEATURE => Some(Key::Id),
        "b64" => Some(Key::B64),
        INPUT_KEY => Some(Key::Inputs),
        _ => None,
    }
}

/// `impl DeserializeSeed for $seed`: the seed is its own visitor, driven by
/// the deserializer method `$via`.
macro_rules! seed_via {
    ($seed:ident $(<$($lt:lifetime),+>)?, $value:ty, $via:ident) => {
        impl<'de> DeserializeSeed<'de> for $seed $(<$($lt),+>)? {
            type Value = $value;

            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<$value, D::Error> {
                d.$via(self)
            }
        }
    };
}

/// The `visit_*` methods of a visitor that refuse a kind of JSON value,
/// each through the visitor's own `refuse(&self, found) -> E` (which words
/// the message for its place): `refuse_kinds!('de; int, float, bool, ...)`.
macro_rules! refuse_kinds {
    ($de:lifetime; $($kind:ident),*) => { $(refuse_kinds!(@one $de $kind);)* };
    (@one $de:lifetime int) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> { Err(self.refuse("an integer")) }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> { Err(self.refuse("an integer")) }
    };
    (@one $de:lifetime float) => {
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> { Err(self.refuse("a number")) }
    };
    (@one $de:lifetime bool) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> { Err(self.refuse("a boolean")) }
    };
    (@one $de:lifetime null) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> { Err(self.refuse("null")) }
    };
    (@one $de:lifetime str) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> { Err(self.refuse("a string")) }
    };
    (@one $de:lifetime seq) => {
        fn visit_seq<A: SeqAccess<$de>>(self, _: A) -> Result<Self::Value, A::Error> { Err(self.refuse("a list")) }
    };
    (@one $de:lifetime map) => {
        fn visit_map<A: MapAccess<$de>>(self, _: A) -> Result<Self::Value, A::Error> { Err(self.refuse("an object")) }
    };
}

/// Reads a map key, borrowed when the JSON has no escapes.
struct KeySeed;

seed_via!(KeySeed, std::borrow::Cow<'de, str>, deserialize_str);

impl<'de> Visitor<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_owned()))
    }
}

/// Reads one integer feature: an integer, a string as a TSV field would hold
/// it (empty: missing), `null` (missing), or a list of one of those.
struct IntSeed<'f> {
    at: At<'f>,
}

const INT_EXPECTED: &str = "expected an integer, a string of digits or null";

seed_via!(IntSeed<'_>, i64, deserialize_any);

impl<'de> Visitor<'de> for IntSeed<'_> {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(INT_EXPECTED)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| err(self.at, format_args!("{v} is out of the 64-bit integer range")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        // JavaScript clients send 5.0 for 5; anything else is not an integer.
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            Ok(v as i64)
        } else {
            Err(err(self.at, format_args!("{INT_EXPECTED}, found {v}")))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        parse_int_field(v.as_bytes()).map_err(|kind| err(self.at, RowError { column: None, kind, labelled: false }))
    }

    fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
        Ok(MISSING_INT)
    }

    fn visit_none<E: de::Error>(self) -> Result<i64, E> {
        Ok(MISSING_INT)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<i64, A::Error> {
        one_of_list(seq, IntSeed { at: self.at }, self.at)
    }

    refuse_kinds!('de; bool, map);
}

impl IntSeed<'_> {
    fn refuse<E: de::Error>(&self, found: &str) -> E {
        err(self.at, format_args!("{INT_EXPECTED}, found {found}"))
    }
}

/// A list of exactly one value, read with `seed`.
fn one_of_list<'de, A: SeqAccess<'de>, S: DeserializeSeed<'de>>(
    mut seq: A,
    seed: S,
    at: At<'_>,
) -> Result<S::Value, A::Error> {
    let Some(v) = seq.next_element_seed(seed)? else {
        return Err(err(at, "expected one value, found an empty list"));
    };
    if seq.next_element::<IgnoredAny>()?.is_some() {
        return Err(err(at, "expected one value, found a list of several (each feature has exactly one)"));
    }
    Ok(v)
}

/// Reads one categorical feature as its vocabulary id: a raw value (a
/// string, looked up), `null` (missing), in `:classify` also a prepared id
/// (an integer within the vocabulary), or a list of one of those.
struct CatSeed<'e, 'f> {
    at: At<'f>,
    column: usize,
    api: Api,
    env: &'e Env<'e>,
}

seed_via!(CatSeed<'_, '_>, i64, deserialize_any);

impl CatSeed<'_, '_> {
    fn expected(&self) -> &'static str {
        match self.api {
            Api::Predict => "expected a string (the raw value) or null",
            Api::Classify => "expected a prepared id (an integer), a raw value (a string) or null",
        }
    }

    fn refuse<E: de::Error>(&self, found: &str) -> E {
        err(self.at, format_args!("{}, found {found}", self.expected()))
    }

    fn prepared<E: de::Error>(&self, v: i128) -> Result<i64, E> {
        if self.api == Api::Predict {
            return Err(err(
                self.at,
                format_args!(
                    "{}, found an integer (prepared ids go in {{\"b64\": Example}} instances, or in :classify)",
                    self.expected()
                ),
            ));
        }
        let size = self.env.sizes()[self.column];
        if v < 0 || v > i128::from(size) {
            return Err(err(self.at, format_args!("prepared id {v} is outside the vocabulary's ids 0 to {size}")));
        }
        Ok(v as i64)
    }
}

impl<'de> Visitor<'de> for CatSeed<'_, '_> {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expected())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        let cat =
            parse_cat(v.as_bytes()).map_err(|kind| err(self.at, RowError { column: None, kind, labelled: false }))?;
        Ok(self.env.scorer().vocabulary().columns[self.column].id(cat))
    }

    fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
        Ok(self.env.missing_ids()[self.column])
    }

    fn visit_none<E: de::Error>(self) -> Result<i64, E> {
        self.visit_unit()
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        self.prepared(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        self.prepared(i128::from(v))
    }

    refuse_kinds!('de; float, bool);

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<i64, A::Error> {
        let at = self.at;
        let inner = CatSeed { at, column: self.column, api: self.api, env: self.env };
        one_of_list(seq, inner, at)
    }

    refuse_kinds!('de; map);
}

/// Reads a string value (a `b64` payload).
struct StrSeed<'f> {
    at: At<'f>,
    what: &'static str,
}

seed_via!(StrSeed<'_>, std::borrow::Cow<'de, str>, deserialize_any);

impl<'de> Visitor<'de> for StrSeed<'_> {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_owned()))
    }

    refuse_kinds!('de; int, float, bool, null, seq, map);
}

impl StrSeed<'_> {
    fn refuse<E: de::Error>(&self, found: &str) -> E {
        err(self.at, format_args!("expected {}, found {found}", self.what))
    }
}

/// Decodes a `b64` payload as a prepared Example into a row.
fn decode_b64<E: de::Error>(env: &mut Env<'_>, at: At<'_>, text: &str) -> Result<Parsed, E> {
    env.b64.clear();
    base64::engine::general_purpose::STANDARD
        .decode_vec(text.as_bytes(), &mut env.b64)
        .map_err(|e| err(at, format_args!("not base64: {e}")))?;
    let b64 = std::mem::take(&mut env.b64);
    let mut row = std::mem::take(&mut env.row);
    let decoded = env.decoder().decode(&b64, &mut row);
    env.b64 = b64;
    env.row = row;
    decoded.map_err(|e| err(at, format_args!("not a prepared tf.train.Example of this model: {e}")))?;
    Ok(Parsed { ints: *env.row.ints(), ids: *env.row.ids(), id: env.row.id() })
}

/// What an object instance held.
#[allow(clippy::large_enum_variant)] // Lives on the stack for one instance, never in a collection.
enum Object {
    /// A prepared row (`b64`, or a named input holding one).
    Done(Parsed),
    /// A feature map.
    Features(Partial),
}

/// Reads one object: `{"b64": ...}`, `{"inputs": <instance>}`, or a feature map.
struct ObjectSeed<'e, 's> {
    env: &'e mut Env<'s>,
    api: Api,
    index: Option<usize>,
}

seed_via!(ObjectSeed<'_, '_>, Object, deserialize_map);

impl<'de> Visitor<'de> for ObjectSeed<'_, '_> {
    type Value = Object;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of features")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
        let Self { env, api, index } = self;
        let at = At { api, index, field: None };
        let mut partial = Partial::default();
        let mut seen_features = false;
        let mut first = true;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let field_at = At { field: Some(&key), ..at };
            let Some(k) = key_of(&key) else {
                return Err(err(
                    field_at,
                    "unknown field (fields are integer-feature-1..13, categorical-feature-1..26, id, clicked; or b64)",
                ));
            };
            let whole = matches!(k, Key::B64 | Key::Inputs);
            if whole {
                if !first {
                    return Err(err(field_at, "must be the object's only field"));
                }
                let parsed = if k == Key::B64 {
                    let text = map.next_value_seed(StrSeed { at: field_at, what: "a base64 string" })?;
                    decode_b64(env, field_at, &text)?
                } else {
                    match map.next_value_seed(InstanceSeed { env: &mut *env, api, index })? {
                        Object::Done(p) => p,
                        Object::Features(p) => p.finish(env.missing_ids()),
                    }
                };
                if let Some(extra) = map.next_key_seed(KeySeed)? {
                    return Err(err(
                        At { field: Some(&extra), ..at },
                        format_args!("\"{key}\" must be the object's only field"),
                    ));
                }
                return Ok(Object::Done(parsed));
            }
            first = false;
            seen_features = true;
            match k {
                Key::Int(i) => {
                    if partial.ints[i].is_some() {
                        return Err(err(field_at, "given twice"));
                    }
                    partial.ints[i] = Some(map.next_value_seed(IntSeed { at: field_at })?);
                }
                Key::Cat(c) => {
                    if partial.ids[c].is_some() {
                        return Err(err(field_at, "given twice"));
                    }
                    let id = map.next_value_seed(CatSeed { at: field_at, column: c, api, env: &*env })?;
                    partial.ids[c] = Some(id);
                }
                Key::Id => {
                    if partial.id.is_some() {
                        return Err(err(field_at, "given twice"));
                    }
                    let v = map.next_value_seed(IntSeed { at: field_at })?;
                    partial.id = (v != MISSING_INT).then_some(v);
                }
                Key::Label => {
                    // A label is not a feature of the model: accepted and ignored.
                    map.next_value::<IgnoredAny>()?;
                }
                Key::B64 | Key::Inputs => unreachable!("handled above"),
            }
        }
        if !seen_features && api == Api::Predict {
            return Err(err(at, "an empty object (expected {\"b64\": ...} or raw fields by name)"));
        }
        Ok(Object::Features(partial))
    }
}

/// Reads one `:predict` instance: a TSV line (a string) or an object.
struct InstanceSeed<'e, 's> {
    env: &'e mut Env<'s>,
    api: Api,
    index: Option<usize>,
}

seed_via!(InstanceSeed<'_, '_>, Object, deserialize_any);

const INSTANCE_EXPECTED: &str = "expected {\"b64\": <serialized Example>}, an object of raw fields, or a TSV line";

impl<'de> Visitor<'de> for InstanceSeed<'_, '_> {
    type Value = Object;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(INSTANCE_EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Object, E> {
        let at = At { api: self.api, index: self.index, field: None };
        let row = parse_line_any(v.as_bytes()).map_err(|e| err(at, format_args!("TSV line: {e}")))?;
        let mut ids = [OOV_ID; NUM_CAT];
        self.env.scorer().vocabulary().ids(&row, &mut ids);
        Ok(Object::Done(Parsed { ints: row.ints, ids, id: None }))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object, A::Error> {
        ObjectSeed { env: self.env, api: self.api, index: self.index }.visit_map(map)
    }

    refuse_kinds!('de; int, float, bool, null, seq);
}

impl InstanceSeed<'_, '_> {
    fn refuse<E: de::Error>(&self, found: &str) -> E {
        err(At { api: self.api, index: self.index, field: None }, format_args!("{INSTANCE_EXPECTED}, found {found}"))
    }
}

/// Reads a list of instances (or examples) into the environment's rows;
/// feature maps are kept apart when a context may still come.
struct ListSeed<'e, 's> {
    env: &'e mut Env<'s>,
    api: Api,
    partials: Option<&'e mut Vec<(usize, Partial)>>,
}

seed_via!(ListSeed<'_, '_>, (), deserialize_any);

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of {}s", self.api.item())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Self { env, api, mut partials } = self;
        if let Some(n) = seq.size_hint() {
            env.rows.reserve(n);
        }
        let mut index = env.rows.len() + partials.as_ref().map_or(0, |p| p.len());
        loop {
            let got = if api == Api::Classify {
                seq.next_element_seed(ObjectSeed { env: &mut *env, api, index: Some(index) })?
            } else {
                seq.next_element_seed(InstanceSeed { env: &mut *env, api, index: Some(index) })?
            };
            let Some(obj) = got else { break };
            match (obj, partials.as_deref_mut()) {
                // Examples wait for the context, which may come after them.
                (obj, Some(list)) => list.push((index, Partial::from(obj))),
                (Object::Done(p), None) => env.rows.push(p),
                (Object::Features(p), None) => {
                    let row = p.finish(env.missing_ids());
                    env.rows.push(row);
                }
            }
            index += 1;
        }
        Ok(())
    }

    refuse_kinds!('de; map, str, int, float, bool, null);
}

impl ListSeed<'_, '_> {
    fn refuse<E: de::Error>(&self, found: &str) -> E {
        E::custom(format_args!("expected a list of {}s, found {found}", self.api.item()))
    }
}

/// Reads the columnar `inputs`: a list of instances, or `{"inputs": [...]}`.
struct InputsSeed<'e, 's> {
    env: &'e mut Env<'s>,
}

seed_via!(InputsSeed<'_, '_>, (), deserialize_any);

impl<'de> Visitor<'de> for InputsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of instances, or {{\"{INPUT_KEY}\": [...]}}")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        ListSeed { env: self.env, api: Api::Predict, partials: None }.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if key != INPUT_KEY {
                return Err(de::Error::custom(format_args!(
                    "inputs: unknown input \"{key}\" (the signature's only input is \"{INPUT_KEY}\")"
                )));
            }
            if seen {
                return Err(de::Error::custom(format_args!("inputs: \"{INPUT_KEY}\" given twice")));
            }
            seen = true;
            map.next_value_seed(ListSeed { env: &mut *self.env, api: Api::Predict, partials: None })?;
        }
        if !seen {
            return Err(de::Error::custom(format_args!("inputs: the input \"{INPUT_KEY}\" is missing")));
        }
        Ok(())
    }
}

/// Reads a body's `signature_name` (at most once): absent, empty or
/// `serving_default`.
fn read_signature<'de, A: MapAccess<'de>>(map: &mut A, seen: &mut bool, api: Api) -> Result<(), A::Error> {
    if std::mem::replace(seen, true) {
        return Err(de::Error::custom("signature_name: given twice"));
    }
    let at = At { api, index: None, field: None };
    let name = map.next_value_seed(StrSeed { at, what: "a signature name" })?;
    check_signature(&name).map_err(de::Error::custom)
}

fn check_signature(name: &str) -> Result<(), String> {
    if name.is_empty() || name == SERVING_SIGNATURE {
        Ok(())
    } else {
        Err(format!("signature_name: no signature \"{name}\" (the model has \"{SERVING_SIGNATURE}\")"))
    }
}

/// Reads a whole `:predict` body.
struct PredictSeed<'e, 's> {
    env: &'e mut Env<'s>,
}

seed_via!(PredictSeed<'_, '_>, Layout, deserialize_map);

impl<'de> Visitor<'de> for PredictSeed<'_, '_> {
    type Value = Layout;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with \"instances\" (row format) or \"inputs\" (columnar format)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Layout, A::Error> {
        let mut layout = None;
        let mut signature = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match &*key {
                "signature_name" => read_signature(&mut map, &mut signature, Api::Predict)?,
                "instances" | "inputs" => {
                    if layout.is_some() {
                        return Err(de::Error::custom(
                            "give one of \"instances\" (row format) or \"inputs\" (columnar format), once",
                        ));
                    }
                    if key == "instances" {
                        map.next_value_seed(ListSeed { env: &mut *self.env, api: Api::Predict, partials: None })?;
                        layout = Some(Layout::Rows);
                    } else {
                        map.next_value_seed(InputsSeed { env: &mut *self.env })?;
                        layout = Some(Layout::Columnar);
                    }
                }
                other => {
                    return Err(de::Error::custom(format_args!(
                        "unknown field \"{other}\" (a predict request has \"signature_name\" and \"instances\" or \"inputs\")"
                    )));
                }
            }
        }
        layout.ok_or_else(|| de::Error::custom("the request has neither \"instances\" nor \"inputs\""))
    }
}

/// Reads a whole `:classify` body.
struct ClassifySeed<'e, 's> {
    env: &'e mut Env<'s>,
    partials: &'e mut Vec<(usize, Partial)>,
    context: &'e mut Option<Partial>,
}

seed_via!(ClassifySeed<'_, '_>, (), deserialize_map);

impl<'de> Visitor<'de> for ClassifySeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with \"examples\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut examples = false;
        let mut signature = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match &*key {
                "signature_name" => read_signature(&mut map, &mut signature, Api::Classify)?,
                "examples" => {
                    if examples {
                        return Err(de::Error::custom("examples: given twice"));
                    }
                    examples = true;
                    map.next_value_seed(ListSeed {
                        env: &mut *self.env,
                        api: Api::Classify,
                        partials: Some(&mut *self.partials),
                    })?;
                }
                "context" => {
                    if self.context.is_some() {
                        return Err(de::Error::custom("context: given twice"));
                    }
                    match map.next_value_seed(ObjectSeed { env: &mut *self.env, api: Api::Classify, index: None })? {
                        Object::Features(p) => *self.context = Some(p),
                        Object::Done(_) => {
                            return Err(de::Error::custom("context: expected an object of features"));
                        }
                    }
                }
                other => {
                    return Err(de::Error::custom(format_args!(
                        "unknown field \"{other}\" (a classify request has \"signature_name\", \"context\" and \"examples\")"
                    )));
                }
            }
        }
        if !examples {
            return Err(de::Error::custom("the request has no \"examples\""));
        }
        Ok(())
    }
}

fn finish_json<'de, T>(
    body: &'de [u8],
    f: impl FnOnce(&mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>) -> Result<T, serde_json::Error>,
) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let v = f(&mut de).map_err(|e| ApiError::BadRequest(format!("malformed request: {e}")))?;
    de.end().map_err(|e| ApiError::BadRequest(format!("malformed request: {e}")))?;
    Ok(v)
}

/// Parses a `:predict` body into rows for the `loaded` version.
///
/// # Errors
/// Malformed JSON, an unknown or repeated field, a value of the wrong type,
/// an instance that is not a row of the model: [`ApiError::BadRequest`]
/// naming the instance and the field.
pub fn parse_predict(body: &[u8], loaded: &Loaded) -> Result<PredictBody, ApiError> {
    let mut env = Env::new(loaded);
    let layout = finish_json(body, |de| PredictSeed { env: &mut env }.deserialize(de))?;
    Ok(PredictBody { layout, rows: std::mem::take(&mut env.rows) })
}

/// Parses a `:classify` body into rows for the `loaded` version, the context's features
/// added to every example that lacks them.
///
/// # Errors
/// As [`parse_predict`].
pub fn parse_classify(body: &[u8], loaded: &Loaded) -> Result<Vec<Parsed>, ApiError> {
    let mut env = Env::new(loaded);
    let mut partials = Vec::new();
    let mut context = None;
    finish_json(body, |de| {
        ClassifySeed { env: &mut env, partials: &mut partials, context: &mut context }.deserialize(de)
    })?;
    let context = context.unwrap_or_default();
    let mut rows = std::mem::take(&mut env.rows);
    debug_assert!(rows.is_empty(), "classify examples are feature maps");
    rows.extend(partials.into_iter().map(|(_, p)| p.with_context(&context).finish(env.missing_ids())));
    Ok(rows)
}

/// One feature of a `tf.train.Example` as a value of the feature map.
fn example_value(
    env: &Env<'_>,
    at: At<'_>,
    key: Key,
    feature: &sparky_proto::tensorflow::Feature,
    partial: &mut Partial,
) -> Result<(), String> {
    use sparky_proto::tensorflow::feature::Kind;
    let one = |n: usize| -> Result<(), String> {
        match n {
            1 => Ok(()),
            0 => Err(format!("{at}: expected one value, found none")),
            _ => Err(format!("{at}: expected one value, found {n} (each feature has exactly one)")),
        }
    };
    match (key, &feature.kind) {
        (Key::Label, _) => {}
        (Key::Int(i), Some(Kind::Int64List(l))) => {
            one(l.value.len())?;
            partial.ints[i] = Some(l.value[0]);
        }
        (Key::Id, Some(Kind::Int64List(l))) => {
            one(l.value.len())?;
            partial.id = Some(l.value[0]);
        }
        (Key::Cat(c), Some(Kind::Int64List(l))) => {
            one(l.value.len())?;
            let (v, size) = (l.value[0], env.sizes()[c]);
            if v < 0 || v as u64 > size {
                return Err(format!("{at}: prepared id {v} is outside the vocabulary's ids 0 to {size}"));
            }
            partial.ids[c] = Some(v);
        }
        (Key::Cat(c), Some(Kind::BytesList(l))) => {
            one(l.value.len())?;
            let cat = parse_cat(&l.value[0])
                .map_err(|kind| format!("{at}: {}", RowError { column: None, kind, labelled: false }))?;
            partial.ids[c] = Some(env.scorer().vocabulary().columns[c].id(cat));
        }
        (Key::Int(_) | Key::Id, _) => return Err(format!("{at}: expected an int64_list")),
        (Key::Cat(_), _) => {
            return Err(format!("{at}: expected an int64_list (prepared id) or a bytes_list (raw value)"));
        }
        (Key::B64 | Key::Inputs, _) => return Err(format!("{at}: not a feature of the model")),
    }
    Ok(())
}

fn example_partial(
    env: &Env<'_>,
    index: Option<usize>,
    e: &sparky_proto::tensorflow::Example,
) -> Result<Partial, String> {
    let mut partial = Partial::default();
    let Some(features) = &e.features else { return Ok(partial) };
    for (name, feature) in &features.feature {
        let at = At { api: Api::Classify, index, field: Some(name) };
        let key = key_of(name).ok_or_else(|| {
            format!(
                "{at}: unknown feature (features are integer-feature-1..13, categorical-feature-1..26, id, clicked)"
            )
        })?;
        example_value(env, at, key, feature, &mut partial)?;
    }
    Ok(partial)
}

/// Rows of the gRPC `Classify` API: `tf.train.Example`s whose features are
/// those of a `:classify` example (integers as `int64_list`, categorical
/// features as a prepared id in an `int64_list` or a raw value in a
/// `bytes_list`), the context's features added where an example lacks them.
///
/// # Errors
/// An unknown feature, a feature of the wrong kind or length, an id outside
/// the vocabulary: [`ApiError::BadRequest`] naming the example and the feature.
pub fn parse_examples(
    examples: &[sparky_proto::tensorflow::Example],
    context: Option<&sparky_proto::tensorflow::Example>,
    loaded: &Loaded,
) -> Result<Vec<Parsed>, ApiError> {
    let env = Env::new(loaded);
    let context = match context {
        Some(c) => example_partial(&env, None, c).map_err(ApiError::BadRequest)?,
        None => Partial::default(),
    };
    examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let p = example_partial(&env, Some(i), e).map_err(ApiError::BadRequest)?;
            Ok(p.with_context(&context).finish(env.missing_ids()))
        })
        .collect()
}

/// Rows of the gRPC `Predict` API: serialized prepared Examples, as the
/// guide's SavedModel takes them.
///
/// # Errors
/// A record that is not a prepared Example of the model: [`ApiError::BadRequest`]
/// naming its index.
pub fn parse_serialized(records: &[impl AsRef<[u8]>], loaded: &Loaded) -> Result<Vec<Parsed>, ApiError> {
    let mut decoder = loaded.prep.take_decoder(&loaded.scorer);
    let mut row = Row::default();
    let rows = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            decoder.decode(r.as_ref(), &mut row).map_err(|e| {
                ApiError::BadRequest(format!("inputs: record {i}: not a prepared tf.train.Example of this model: {e}"))
            })?;
            Ok(Parsed { ints: *row.ints(), ids: *row.ids(), id: row.id() })
        })
        .collect();
    loaded.prep.give_back(decoder);
    rows
}
