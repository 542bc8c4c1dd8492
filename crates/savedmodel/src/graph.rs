//! Builds the serving graph and the `SavedModel` message around it.
//!
//! Every node carries all of its op's attributes, defaults included, so the
//! graph does not depend on a loader filling them in. The weights are `Const`
//! nodes whose values are raw little-endian bytes (`tensor_content`).

use std::collections::BTreeMap;

use sparky_proto::tensorflow::attr_value::{ListValue, Value};
use sparky_proto::tensorflow::meta_graph_def::MetaInfoDef;
use sparky_proto::tensorflow::tensor_info::Encoding;
use sparky_proto::tensorflow::tensor_shape_proto::Dim;
use sparky_proto::tensorflow::{
    AttrValue, DataType, GraphDef, MetaGraphDef, NodeDef, SavedModel, SignatureDef, TensorInfo, TensorProto,
    TensorShapeProto, VersionDef,
};

use crate::{
    CLASSES_KEY, CLASSES_TENSOR, CatInput, INPUT_KEY, INPUT_TENSOR, IntInput, PREDICT_METHOD, SCORES_KEY,
    SCORES_TENSOR, SERVE_TAG, SERVING_SIGNATURE, SavedModelError, ScoringModel,
};

/// The GraphDef version the graph is written for: TensorFlow 2.21's, the
/// release it is tested against. Loaders only refuse a graph whose
/// `min_consumer` is above their own version, and that is left at 0.
pub const GRAPH_DEF_PRODUCER: i32 = 2474;

/// `meta_info_def.meta_graph_version` of every SavedModel sparky writes.
const META_GRAPH_VERSION: &str = "sparky-savedmodel 1";

/// The name of the `ParseExampleV2` node; its output `j` is the `j`-th dense
/// feature (there are no sparse features to come first).
const PARSE: &str = "ParseExample/ParseExampleV2";

fn shape(dims: &[i64]) -> TensorShapeProto {
    TensorShapeProto { dim: dims.iter().map(|&size| Dim { size, name: String::new() }).collect(), unknown_rank: false }
}

fn attr(value: Value) -> AttrValue {
    AttrValue { value: Some(value) }
}

fn a_type(t: DataType) -> AttrValue {
    attr(Value::Type(t as i32))
}

fn a_int(i: i64) -> AttrValue {
    attr(Value::I(i))
}

fn a_bool(b: bool) -> AttrValue {
    attr(Value::B(b))
}

fn a_shape(dims: &[i64]) -> AttrValue {
    attr(Value::Shape(shape(dims)))
}

fn a_types(types: &[DataType]) -> AttrValue {
    attr(Value::List(ListValue { r#type: types.iter().map(|&t| t as i32).collect(), ..ListValue::default() }))
}

fn a_shapes(shapes: &[&[i64]]) -> AttrValue {
    attr(Value::List(ListValue { shape: shapes.iter().map(|s| shape(s)).collect(), ..ListValue::default() }))
}

fn tensor(dtype: DataType, dims: &[i64]) -> TensorProto {
    TensorProto { dtype: dtype as i32, tensor_shape: Some(shape(dims)), ..TensorProto::default() }
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).expect("a slice length fits in i64")
}

/// A float vector as raw little-endian bytes.
fn t_f32_vec(values: &[f32]) -> TensorProto {
    let mut content = Vec::with_capacity(values.len() * 4);
    for v in values {
        content.extend_from_slice(&v.to_le_bytes());
    }
    TensorProto { tensor_content: content, ..tensor(DataType::DtFloat, &[len_i64(values.len())]) }
}

/// An int64 vector as raw little-endian bytes.
fn t_i64_vec(values: &[i64]) -> TensorProto {
    let mut content = Vec::with_capacity(values.len() * 8);
    for v in values {
        content.extend_from_slice(&v.to_le_bytes());
    }
    TensorProto { tensor_content: content, ..tensor(DataType::DtInt64, &[len_i64(values.len())]) }
}

fn t_f32(v: f32) -> TensorProto {
    TensorProto { float_val: vec![v], ..tensor(DataType::DtFloat, &[]) }
}

fn t_i64(v: i64) -> TensorProto {
    TensorProto { int64_val: vec![v], ..tensor(DataType::DtInt64, &[]) }
}

fn t_i32(dims: &[i64], values: &[i32]) -> TensorProto {
    TensorProto { int_val: values.to_vec(), ..tensor(DataType::DtInt32, dims) }
}

fn t_strings(dims: &[i64], values: &[&[u8]]) -> TensorProto {
    TensorProto { string_val: values.iter().map(|s| s.to_vec()).collect(), ..tensor(DataType::DtString, dims) }
}

/// The graph under construction. Each helper adds one node and returns its
/// name, which is also the name of its output 0.
struct Graph {
    nodes: Vec<NodeDef>,
}

impl Graph {
    fn add(
        &mut self,
        name: String,
        op: &str,
        inputs: &[&str],
        attrs: impl IntoIterator<Item = (&'static str, AttrValue)>,
    ) -> String {
        self.nodes.push(NodeDef {
            name: name.clone(),
            op: op.to_string(),
            input: inputs.iter().map(|s| (*s).to_string()).collect(),
            device: String::new(),
            attr: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>(),
        });
        name
    }

    fn constant(&mut self, name: String, value: TensorProto) -> String {
        let dtype = DataType::try_from(value.dtype).expect("constants use declared types");
        self.add(name, "Const", &[], [("dtype", a_type(dtype)), ("value", attr(Value::Tensor(value)))])
    }

    /// A binary op whose only attribute is `T`.
    fn binary(&mut self, name: String, op: &str, x: &str, y: &str, t: DataType) -> String {
        self.add(name, op, &[x, y], [("T", a_type(t))])
    }

    fn unary(&mut self, name: String, op: &str, x: &str, t: DataType) -> String {
        self.add(name, op, &[x], [("T", a_type(t))])
    }

    fn cast(&mut self, name: String, x: &str, from: DataType, to: DataType) -> String {
        self.add(name, "Cast", &[x], [("SrcT", a_type(from)), ("DstT", a_type(to)), ("Truncate", a_bool(false))])
    }

    fn select(&mut self, name: String, cond: &str, t: &str, e: &str, ty: DataType) -> String {
        self.add(name, "SelectV2", &[cond, t, e], [("T", a_type(ty))])
    }

    fn gather(&mut self, name: String, params: &str, indices: &str, index: DataType, axis: &str) -> String {
        self.add(
            name,
            "GatherV2",
            &[params, indices, axis],
            [
                ("Tparams", a_type(DataType::DtFloat)),
                ("Tindices", a_type(index)),
                ("Taxis", a_type(DataType::DtInt32)),
                ("batch_dims", a_int(0)),
            ],
        )
    }

    fn reshape(&mut self, name: String, x: &str, shape: &str, t: DataType) -> String {
        self.add(name, "Reshape", &[x, shape], [("T", a_type(t)), ("Tshape", a_type(DataType::DtInt32))])
    }

    fn concat(&mut self, name: String, values: &[&str], axis: &str, t: DataType) -> String {
        let mut inputs = values.to_vec();
        inputs.push(axis);
        self.add(
            name,
            "ConcatV2",
            &inputs,
            [("N", a_int(len_i64(values.len()))), ("T", a_type(t)), ("Tidx", a_type(DataType::DtInt32))],
        )
    }
}

/// The node-name scope of feature `index` of `count`:
/// `features/<index>_<name>`, the index zero-padded to a fixed width and the
/// name with every character a node name may not hold replaced by `_`.
///
/// The padded index makes the scopes unique and makes their byte order the
/// features' order. That matters: Grappler's arithmetic optimizer sorts the
/// inputs of `AddN` (a commutative op) by name before TensorFlow runs the
/// graph, and float32 addition is not associative, so only names that sort
/// in feature order keep the sum in the order [`ScoringModel::logit`] uses.
fn scope(index: usize, count: usize, name: &str) -> String {
    let width = count.saturating_sub(1).max(1).to_string().len();
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' }).collect();
    format!("features/{index:0width$}_{clean}")
}

/// Shared constants of the feature sub-graphs.
struct Shared {
    /// int32 scalar 0, the gather axis.
    axis0: String,
    /// int32 scalar 1, the bucket-count reduction axis.
    axis1: String,
    /// int32 [-1], flattens [N, 1] to [N].
    flat: String,
    /// float scalar 0.
    zero_f: String,
    /// int64 scalar 0.
    zero_i: String,
}

/// `weight * log1p(max(float(x), 0))`, x of shape [N] int64.
fn log1p_times(g: &mut Graph, s: &str, x: &str, weight: f32, shared: &Shared) -> String {
    let xf = g.cast(format!("{s}/float"), x, DataType::DtInt64, DataType::DtFloat);
    let clamped = g.binary(format!("{s}/nonnegative"), "Maximum", &xf, &shared.zero_f, DataType::DtFloat);
    let log = g.unary(format!("{s}/log1p"), "Log1p", &clamped, DataType::DtFloat);
    let w = g.constant(format!("{s}/weight"), t_f32(weight));
    g.binary(format!("{s}/scaled"), "Mul", &log, &w, DataType::DtFloat)
}

/// The sub-graph of one integer feature: parsed value `x` ([N, 1] int64) to
/// its logit term ([N] float).
fn int_term(g: &mut Graph, s: &str, x: &str, input: &IntInput<'_>, shared: &Shared) -> String {
    match *input {
        IntInput::Buckets { boundaries, weights } => {
            // [N, 1] >= [B] broadcasts to [N, B]; the count of true per row is
            // the bucket. Comparing in int64 keeps the rule exact for every x
            // (Bucketize would compare in float32).
            let b = g.constant(format!("{s}/boundaries"), t_i64_vec(boundaries));
            let at_or_above = g.binary(format!("{s}/at_or_above"), "GreaterEqual", x, &b, DataType::DtInt64);
            let ones = g.cast(format!("{s}/as_int"), &at_or_above, DataType::DtBool, DataType::DtInt32);
            let bucket = g.add(
                format!("{s}/bucket"),
                "Sum",
                &[&ones, &shared.axis1],
                [("T", a_type(DataType::DtInt32)), ("Tidx", a_type(DataType::DtInt32)), ("keep_dims", a_bool(false))],
            );
            let w = g.constant(format!("{s}/weights"), t_f32_vec(weights));
            g.gather(format!("{s}/term"), &w, &bucket, DataType::DtInt32, &shared.axis0)
        }
        IntInput::Log1p { missing_value, missing_weight, weight } => {
            let v = g.reshape(format!("{s}/value"), x, &shared.flat, DataType::DtInt64);
            let scaled = log1p_times(g, s, &v, weight, shared);
            let mv = g.constant(format!("{s}/missing_value"), t_i64(missing_value));
            let is_missing = g.add(
                format!("{s}/is_missing"),
                "Equal",
                &[&v, &mv],
                [("T", a_type(DataType::DtInt64)), ("incompatible_shape_error", a_bool(true))],
            );
            let mw = g.constant(format!("{s}/missing_weight"), t_f32(missing_weight));
            g.select(format!("{s}/term"), &is_missing, &mw, &scaled, DataType::DtFloat)
        }
    }
}

/// The sub-graph of one categorical feature: parsed id `x` ([N, 1] int64) to
/// its logit term ([N] float).
fn cat_term(g: &mut Graph, s: &str, x: &str, input: &CatInput<'_>, shared: &Shared) -> String {
    let id = g.reshape(format!("{s}/id"), x, &shared.flat, DataType::DtInt64);
    match *input {
        CatInput::OneHot { weights } => {
            let ge0 = g.binary(format!("{s}/nonnegative"), "GreaterEqual", &id, &shared.zero_i, DataType::DtInt64);
            let size = g.constant(format!("{s}/size"), t_i64(len_i64(weights.len())));
            let below = g.binary(format!("{s}/below_size"), "Less", &id, &size, DataType::DtInt64);
            let known = g.add(format!("{s}/in_vocabulary"), "LogicalAnd", &[&ge0, &below], []);
            let index = g.select(format!("{s}/index"), &known, &id, &shared.zero_i, DataType::DtInt64);
            let w = g.constant(format!("{s}/weights"), t_f32_vec(weights));
            g.gather(format!("{s}/term"), &w, &index, DataType::DtInt64, &shared.axis0)
        }
        CatInput::RankAsNumber { weight } => log1p_times(g, s, &id, weight, shared),
    }
}

fn tensor_info(name: &str, dtype: DataType, dims: &[i64]) -> TensorInfo {
    TensorInfo {
        encoding: Some(Encoding::Name(name.to_string())),
        dtype: dtype as i32,
        tensor_shape: Some(shape(dims)),
    }
}

/// The whole graph: input placeholder, parsing, one term per feature, the
/// sum, the sigmoid, and the two outputs.
fn build_graph(model: &ScoringModel<'_>) -> GraphDef {
    use DataType::{DtFloat, DtInt32, DtInt64, DtString};

    let mut g = Graph { nodes: Vec::new() };
    let input =
        g.add(INPUT_TENSOR.to_string(), "Placeholder", &[], [("dtype", a_type(DtString)), ("shape", a_shape(&[-1]))]);

    let shared = Shared {
        axis0: g.constant("features/axis0".into(), t_i32(&[], &[0])),
        axis1: g.constant("features/axis1".into(), t_i32(&[], &[1])),
        flat: g.constant("features/flat".into(), t_i32(&[1], &[-1])),
        zero_f: g.constant("features/zero_float".into(), t_f32(0.0)),
        zero_i: g.constant("features/zero_int64".into(), t_i64(0)),
    };

    // Parse every feature as a required dense int64 of shape [1]: output j
    // is [N, 1]. Other features of the Examples (id, clicked) are ignored.
    let names: Vec<&str> = model
        .int_features
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(model.cat_features.iter().map(|(n, _)| n.as_str()))
        .collect();
    let k = names.len();
    if k > 0 {
        let empty = g.constant("ParseExample/empty".into(), t_strings(&[0], &[]));
        let keys: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        let keys = g.constant("ParseExample/dense_keys".into(), t_strings(&[len_i64(k)], &keys));
        // An empty default makes the feature required.
        let required = g.constant("ParseExample/required".into(), t_i64_vec(&[]));
        let mut inputs = vec![input.as_str(), &empty, &empty, &keys, &empty];
        inputs.extend(std::iter::repeat_n(required.as_str(), k));
        let dense_shape: &[i64] = &[1];
        g.add(
            PARSE.to_string(),
            "ParseExampleV2",
            &inputs,
            [
                ("Tdense", a_types(&vec![DtInt64; k])),
                ("dense_shapes", a_shapes(&vec![dense_shape; k])),
                ("num_sparse", a_int(0)),
                ("sparse_types", a_types(&[])),
                ("ragged_value_types", a_types(&[])),
                ("ragged_split_types", a_types(&[])),
            ],
        );
    }

    let mut terms = Vec::with_capacity(k);
    for (j, (name, input)) in model.int_features.iter().enumerate() {
        let s = scope(j, k, name);
        terms.push(int_term(&mut g, &s, &format!("{PARSE}:{j}"), input, &shared));
    }
    let offset = model.int_features.len();
    for (j, (name, input)) in model.cat_features.iter().enumerate() {
        let s = scope(offset + j, k, name);
        let x = format!("{PARSE}:{}", offset + j);
        terms.push(cat_term(&mut g, &s, &x, input, &shared));
    }

    let batch =
        g.add("batch_size".into(), "Shape", &[&input], [("T", a_type(DtString)), ("out_type", a_type(DtInt32))]);
    let sum = if terms.is_empty() {
        g.add(
            "linear/sum".into(),
            "Fill",
            &[&batch, &shared.zero_f],
            [("T", a_type(DtFloat)), ("index_type", a_type(DtInt32))],
        )
    } else {
        let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
        g.add("linear/sum".into(), "AddN", &refs, [("N", a_int(len_i64(refs.len()))), ("T", a_type(DtFloat))])
    };
    let bias = g.constant("linear/bias".into(), t_f32(model.bias));
    let logit = g.binary("linear/logit".into(), "AddV2", &sum, &bias, DtFloat);
    let column = g.constant("probability/column".into(), t_i32(&[2], &[-1, 1]));
    let logit = g.reshape("probability/logit".into(), &logit, &column, DtFloat);
    let p = g.unary("probability/logistic".into(), "Sigmoid", &logit, DtFloat);
    let one = g.constant("probability/one".into(), t_f32(1.0));
    let q = g.binary("probability/complement".into(), "Sub", &one, &p, DtFloat);
    let scores = g.concat(SCORES_TENSOR.into(), &[&q, &p], &shared.axis1, DtFloat);
    debug_assert_eq!(scores, SCORES_TENSOR);

    let labels = g.constant("classes/labels".into(), t_strings(&[1, 2], &[b"0", b"1"]));
    let width = g.constant("classes/width".into(), t_i32(&[1], &[1]));
    let multiples = g.concat("classes/multiples".into(), &[&batch, &width], &shared.axis0, DtInt32);
    let classes = g.add(
        CLASSES_TENSOR.into(),
        "Tile",
        &[&labels, &multiples],
        [("T", a_type(DtString)), ("Tmultiples", a_type(DtInt32))],
    );
    debug_assert_eq!(classes, CLASSES_TENSOR);

    GraphDef {
        node: g.nodes,
        versions: Some(VersionDef { producer: GRAPH_DEF_PRODUCER, min_consumer: 0, bad_consumers: Vec::new() }),
    }
}

/// The `serving_default` signature of every sparky SavedModel: `inputs`, a
/// batch of serialized `tf.train.Example`s (`DT_STRING`, shape `[-1]`), to
/// `classes` (`DT_STRING`, `[-1, 2]`) and `scores` (`DT_FLOAT`, `[-1, 2]`),
/// method `tensorflow/serving/predict`. A server reports it as the model's
/// metadata.
#[must_use]
pub fn serving_signature() -> SignatureDef {
    let mut inputs = BTreeMap::new();
    inputs.insert(INPUT_KEY.to_string(), tensor_info(&format!("{INPUT_TENSOR}:0"), DataType::DtString, &[-1]));
    let mut outputs = BTreeMap::new();
    outputs.insert(CLASSES_KEY.to_string(), tensor_info(&format!("{CLASSES_TENSOR}:0"), DataType::DtString, &[-1, 2]));
    outputs.insert(SCORES_KEY.to_string(), tensor_info(&format!("{SCORES_TENSOR}:0"), DataType::DtFloat, &[-1, 2]));
    SignatureDef { inputs, outputs, method_name: PREDICT_METHOD.to_string() }
}

/// The `SavedModel` message for `model`: one meta graph tagged `serve` with
/// the `serving_default` signature. Validates the model first.
///
/// The message holds its own copy of every weight (4 bytes each, see
/// [`ScoringModel::num_weights`]).
pub fn build_saved_model(model: &ScoringModel<'_>) -> Result<SavedModel, SavedModelError> {
    model.validate()?;
    let mut signature_def = BTreeMap::new();
    signature_def.insert(SERVING_SIGNATURE.to_string(), serving_signature());
    Ok(SavedModel {
        saved_model_schema_version: 1,
        meta_graphs: vec![MetaGraphDef {
            meta_info_def: Some(MetaInfoDef {
                meta_graph_version: META_GRAPH_VERSION.to_string(),
                tags: vec![SERVE_TAG.to_string()],
                tensorflow_version: String::new(),
                tensorflow_git_version: String::new(),
                stripped_default_attrs: false,
            }),
            graph_def: Some(build_graph(model)),
            signature_def,
        }],
    })
}
