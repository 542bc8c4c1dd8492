//! The SavedModel as a file: it decodes back with prost into the expected
//! meta graph, signature and graph; the scoring rules hold; bad models are
//! refused before anything is written.
//!
//! That TensorFlow itself loads the file and computes the same scores is
//! checked by `scripts/check_savedmodel.py` on the `write_fixture` example's
//! output (it needs TensorFlow, so it is not part of `cargo test`).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use proptest::prelude::*;
use prost::Message;
use sparky_proto::tensorflow::attr_value::Value;
use sparky_proto::tensorflow::tensor_info::Encoding;
use sparky_proto::tensorflow::{DataType, GraphDef, NodeDef, SavedModel, TensorInfo, TensorProto};
use sparky_savedmodel::{CatInput, IntInput, SavedModelError, ScoringModel, build_saved_model, write_saved_model};

const LOG_BOUNDARIES: [i64; 8] = [-9, 0, 1, 2, 3, 5, 6, 8];
const BUCKET_WEIGHTS: [f32; 9] = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
const VOCAB: [f32; 4] = [-0.5, 0.25, 1.5, -2.0];

/// A small model with every input kind: two bucketed integer features, one
/// LOG1P, two one-hot categorical features, one rank-as-number.
fn sample_model() -> ScoringModel<'static> {
    ScoringModel {
        bias: -0.75,
        int_features: vec![
            ("integer-feature-1".into(), IntInput::Buckets { boundaries: &LOG_BOUNDARIES, weights: &BUCKET_WEIGHTS }),
            ("integer-feature-2".into(), IntInput::Log1p { missing_value: -10, missing_weight: 0.5, weight: -0.25 }),
            ("integer-feature-3".into(), IntInput::Buckets { boundaries: &[], weights: &[0.125] }),
        ],
        cat_features: vec![
            ("categorical-feature-1".into(), CatInput::OneHot { weights: &VOCAB }),
            ("categorical-feature-2".into(), CatInput::RankAsNumber { weight: 0.1 }),
            ("categorical-feature-3".into(), CatInput::OneHot { weights: &[3.0] }),
        ],
    }
}

fn write_and_read(model: &ScoringModel<'_>) -> SavedModel {
    let dir = tempfile::tempdir().unwrap();
    write_saved_model(dir.path(), model).unwrap();
    let bytes = std::fs::read(dir.path().join("saved_model.pb")).unwrap();
    SavedModel::decode(bytes.as_slice()).unwrap()
}

fn graph(saved: &SavedModel) -> &GraphDef {
    saved.meta_graphs[0].graph_def.as_ref().unwrap()
}

fn nodes(g: &GraphDef) -> BTreeMap<&str, &NodeDef> {
    g.node.iter().map(|n| (n.name.as_str(), n)).collect()
}

fn tensor_attr<'a>(node: &'a NodeDef, name: &str) -> &'a TensorProto {
    match node.attr[name].value.as_ref().unwrap() {
        Value::Tensor(t) => t,
        other => panic!("{}: attr {name} is {other:?}", node.name),
    }
}

fn dims(info: &TensorInfo) -> Vec<i64> {
    info.tensor_shape.as_ref().unwrap().dim.iter().map(|d| d.size).collect()
}

fn tensor_name(info: &TensorInfo) -> &str {
    match info.encoding.as_ref().unwrap() {
        Encoding::Name(n) => n,
    }
}

/// TensorFlow's rule for node names.
fn valid_node_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-/>".contains(c))
}

/// Every attribute each op declares in TensorFlow 2.21's registry, defaults
/// included (checked against `op_def_registry` when this list was written).
fn op_attrs(op: &str) -> &'static [&'static str] {
    match op {
        "Placeholder" => &["dtype", "shape"],
        "Const" => &["dtype", "value"],
        "ParseExampleV2" => {
            &["Tdense", "dense_shapes", "num_sparse", "ragged_split_types", "ragged_value_types", "sparse_types"]
        }
        "GreaterEqual" | "Less" | "Maximum" | "Log1p" | "Mul" | "SelectV2" | "AddV2" | "Sigmoid" | "Sub" => &["T"],
        "Equal" => &["T", "incompatible_shape_error"],
        "Cast" => &["DstT", "SrcT", "Truncate"],
        "Sum" => &["T", "Tidx", "keep_dims"],
        "GatherV2" => &["Taxis", "Tindices", "Tparams", "batch_dims"],
        "Reshape" => &["T", "Tshape"],
        "LogicalAnd" => &[],
        "AddN" => &["N", "T"],
        "ConcatV2" => &["N", "T", "Tidx"],
        "Tile" => &["T", "Tmultiples"],
        "Shape" => &["T", "out_type"],
        "Fill" => &["T", "index_type"],
        other => panic!("unexpected op {other}"),
    }
}

#[test]
fn decodes_with_the_serving_signature() {
    let saved = write_and_read(&sample_model());
    assert_eq!(saved.saved_model_schema_version, 1);
    assert_eq!(saved.meta_graphs.len(), 1);
    let mg = &saved.meta_graphs[0];
    assert_eq!(mg.meta_info_def.as_ref().unwrap().tags, vec!["serve"]);
    assert_eq!(mg.signature_def.keys().collect::<Vec<_>>(), vec!["serving_default"]);
    let sig = &mg.signature_def["serving_default"];
    assert_eq!(sig.method_name, "tensorflow/serving/predict");

    assert_eq!(sig.inputs.keys().collect::<Vec<_>>(), vec!["inputs"]);
    let input = &sig.inputs["inputs"];
    assert_eq!(tensor_name(input), "input_example_tensor:0");
    assert_eq!(input.dtype, DataType::DtString as i32);
    assert_eq!(dims(input), vec![-1]);

    assert_eq!(sig.outputs.keys().collect::<Vec<_>>(), vec!["classes", "scores"]);
    let classes = &sig.outputs["classes"];
    assert_eq!(tensor_name(classes), "classes:0");
    assert_eq!(classes.dtype, DataType::DtString as i32);
    assert_eq!(dims(classes), vec![-1, 2]);
    let scores = &sig.outputs["scores"];
    assert_eq!(tensor_name(scores), "scores:0");
    assert_eq!(scores.dtype, DataType::DtFloat as i32);
    assert_eq!(dims(scores), vec![-1, 2]);

    let by_name = nodes(graph(&saved));
    assert_eq!(by_name["input_example_tensor"].op, "Placeholder");
    assert_eq!(by_name["classes"].op, "Tile");
    assert_eq!(by_name["scores"].op, "ConcatV2");
    let labels = tensor_attr(by_name["classes/labels"], "value");
    assert_eq!(labels.string_val, vec![b"0".to_vec(), b"1".to_vec()]);
}

#[test]
fn graph_is_complete_and_well_formed() {
    let saved = write_and_read(&sample_model());
    let g = graph(&saved);
    assert_eq!(g.versions.as_ref().unwrap().min_consumer, 0);
    let mut names = HashSet::new();
    for n in &g.node {
        assert!(valid_node_name(&n.name), "node name {:?}", n.name);
        assert!(names.insert(n.name.as_str()), "duplicate node {}", n.name);
    }
    for n in &g.node {
        for input in &n.input {
            let source = input.split(':').next().unwrap();
            assert!(names.contains(source), "{} reads missing {input}", n.name);
        }
        let mut attrs: Vec<&str> = n.attr.keys().map(String::as_str).collect();
        attrs.sort_unstable();
        assert_eq!(attrs, op_attrs(&n.op), "attributes of {} ({})", n.name, n.op);
        for (k, v) in &n.attr {
            assert!(v.value.is_some(), "{}: attr {k} has no value", n.name);
        }
    }
}

#[test]
fn parses_each_feature_once_as_required_int64() {
    let model = sample_model();
    let saved = write_and_read(&model);
    let by_name = nodes(graph(&saved));
    let parse = by_name["ParseExample/ParseExampleV2"];
    let keys = tensor_attr(by_name["ParseExample/dense_keys"], "value");
    let expected: Vec<Vec<u8>> = model
        .int_features
        .iter()
        .map(|(n, _)| n.as_bytes().to_vec())
        .chain(model.cat_features.iter().map(|(n, _)| n.as_bytes().to_vec()))
        .collect();
    assert_eq!(keys.string_val, expected);
    // serialized, names, sparse_keys, dense_keys, ragged_keys, then one
    // (empty, so required) default per feature.
    assert_eq!(parse.input.len(), 5 + expected.len());
    assert_eq!(parse.input[3], "ParseExample/dense_keys");
    let Some(Value::List(tdense)) = &parse.attr["Tdense"].value else { panic!("Tdense") };
    assert_eq!(tdense.r#type, vec![DataType::DtInt64 as i32; expected.len()]);
    let Some(Value::List(shapes)) = &parse.attr["dense_shapes"].value else { panic!("dense_shapes") };
    for s in &shapes.shape {
        assert_eq!(s.dim.iter().map(|d| d.size).collect::<Vec<_>>(), vec![1]);
    }
    let default = tensor_attr(by_name[parse.input[5].as_str()], "value");
    assert_eq!(default.tensor_shape.as_ref().unwrap().dim[0].size, 0);
}

#[test]
fn weights_are_embedded_bit_for_bit() {
    let weights: Vec<f32> = (0..1000).map(|i| (i as f32).sin() * 1e-3).collect();
    let model = ScoringModel {
        bias: 0.5,
        int_features: vec![(
            "integer-feature-1".into(),
            IntInput::Buckets { boundaries: &LOG_BOUNDARIES, weights: &BUCKET_WEIGHTS },
        )],
        cat_features: vec![("c".into(), CatInput::OneHot { weights: &weights })],
    };
    let saved = write_and_read(&model);
    let by_name = nodes(graph(&saved));
    let f32s = |t: &TensorProto| -> Vec<f32> {
        t.tensor_content.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    };
    let cat = tensor_attr(by_name["features/1_c/weights"], "value");
    assert_eq!(cat.dtype, DataType::DtFloat as i32);
    assert_eq!(cat.tensor_shape.as_ref().unwrap().dim[0].size, 1000);
    assert_eq!(f32s(cat), weights);
    let ints = tensor_attr(by_name["features/0_integer-feature-1/weights"], "value");
    assert_eq!(f32s(ints), BUCKET_WEIGHTS);
    let b = tensor_attr(by_name["features/0_integer-feature-1/boundaries"], "value");
    assert_eq!(b.dtype, DataType::DtInt64 as i32);
    let bounds: Vec<i64> =
        b.tensor_content.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(bounds, LOG_BOUNDARIES);
    assert_eq!(tensor_attr(by_name["linear/bias"], "value").float_val, vec![0.5]);
}

#[test]
fn sum_inputs_sort_in_feature_order() {
    // Grappler sorts AddN's inputs by name; with 12 features, unpadded
    // indices would put feature 10 before feature 2.
    let names: Vec<String> = (1..=12).map(|i| format!("f{i}")).collect();
    let model = ScoringModel {
        bias: 0.0,
        int_features: names
            .iter()
            .map(|n| (n.clone(), IntInput::Log1p { missing_value: -10, missing_weight: 0.0, weight: 1.0 }))
            .collect(),
        cat_features: Vec::new(),
    };
    let saved = write_and_read(&model);
    let sum = nodes(graph(&saved))["linear/sum"];
    assert_eq!(sum.op, "AddN");
    assert_eq!(sum.input.len(), 12);
    let mut sorted = sum.input.clone();
    sorted.sort();
    assert_eq!(sorted, sum.input);
    assert!(sum.input[0].starts_with("features/00_f1/"));
    assert!(sum.input[11].starts_with("features/11_f12/"));
}

#[test]
fn odd_feature_names_make_valid_node_names() {
    let model = ScoringModel {
        bias: 0.0,
        int_features: vec![("a b/κ:0".into(), IntInput::Log1p { missing_value: -1, missing_weight: 0.0, weight: 1.0 })],
        cat_features: vec![("_x".into(), CatInput::OneHot { weights: &[1.0] })],
    };
    let saved = write_and_read(&model);
    let g = graph(&saved);
    assert!(g.node.iter().all(|n| valid_node_name(&n.name)));
    let keys = tensor_attr(nodes(g)["ParseExample/dense_keys"], "value");
    assert_eq!(keys.string_val, vec!["a b/κ:0".as_bytes().to_vec(), b"_x".to_vec()]);
}

#[test]
fn a_model_without_features_is_its_bias() {
    let model = ScoringModel { bias: 1.5, ..ScoringModel::default() };
    assert_eq!(model.logit(&[], &[]), 1.5);
    let saved = write_and_read(&model);
    let by_name = nodes(graph(&saved));
    assert!(!by_name.contains_key("ParseExample/ParseExampleV2"));
    assert_eq!(by_name["linear/sum"].op, "Fill");
}

#[test]
fn bucket_is_the_number_of_boundaries_at_or_below_x() {
    let input = IntInput::Buckets { boundaries: &LOG_BOUNDARIES, weights: &BUCKET_WEIGHTS };
    // Weight i is i, so the term is the bucket.
    for (x, bucket) in [
        (i64::MIN, 0),
        (-10, 0),
        (-9, 1),
        (-1, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 5),
        (5, 6),
        (6, 7),
        (7, 7),
        (8, 8),
        (1 << 40, 8),
        (i64::MAX, 8),
    ] {
        assert_eq!(input.term(x), bucket as f32, "x = {x}");
    }
    // Exact where float32 is not: 2^24 + 1 and 2^24 are one float.
    let close = IntInput::Buckets { boundaries: &[16_777_217], weights: &[0.0, 1.0] };
    assert_eq!(close.term(16_777_216), 0.0);
    assert_eq!(close.term(16_777_217), 1.0);
    // A count, so unsorted boundaries follow the same rule.
    let unsorted = IntInput::Buckets { boundaries: &[5, 1, 3], weights: &[0.0, 1.0, 2.0, 3.0] };
    assert_eq!(unsorted.term(0), 0.0);
    assert_eq!(unsorted.term(2), 1.0);
    assert_eq!(unsorted.term(4), 2.0);
    assert_eq!(unsorted.term(5), 3.0);
}

#[test]
fn ids_outside_the_vocabulary_use_slot_zero() {
    let input = CatInput::OneHot { weights: &VOCAB };
    for (id, w) in [
        (i64::MIN, VOCAB[0]),
        (-1, VOCAB[0]),
        (0, VOCAB[0]),
        (1, VOCAB[1]),
        (2, VOCAB[2]),
        (3, VOCAB[3]),
        (4, VOCAB[0]),
        (i64::MAX, VOCAB[0]),
    ] {
        assert_eq!(input.term(id), w, "id = {id}");
    }
}

#[test]
fn log1p_terms() {
    let input = IntInput::Log1p { missing_value: -10, missing_weight: 0.5, weight: -0.25 };
    assert_eq!(input.term(-10), 0.5);
    // Negative values other than the missing one clamp to 0: ln(1) = 0.
    assert_eq!(input.term(-3), 0.0);
    assert_eq!(input.term(0), 0.0);
    for x in [1i64, 2, 10, 1000, 1 << 30] {
        let want = -0.25 * (1.0 + x as f64).ln();
        assert!((f64::from(input.term(x)) - want).abs() < 1e-6, "x = {x}");
    }
    let rank = CatInput::RankAsNumber { weight: 2.0 };
    assert_eq!(rank.term(-7), 0.0);
    assert!((rank.term(99) - 2.0 * 100f32.ln()).abs() < 1e-5);
}

#[test]
fn score_is_the_sigmoid_of_bias_plus_terms() {
    let model = sample_model();
    // x1 = 5: bucket 6. x2 missing: 0.5. x3: 0.125. id 2: 1.5. rank 0: 0.
    // id 9 for a one-slot vocabulary: slot 0, 3.0.
    let logit = model.logit(&[5, -10, 77], &[2, 0, 9]);
    assert_eq!(logit, 6.0 + 0.5 + 0.125 + 1.5 + 0.0 + 3.0 + -0.75);
    let p = model.score(&[5, -10, 77], &[2, 0, 9]);
    assert!((f64::from(p) - 1.0 / (1.0 + (-f64::from(logit)).exp())).abs() < 1e-7);
    // Everything missing or out of vocabulary: bucket 0, the missing weight,
    // the single bucket, slot 0, ln(1) = 0, slot 0.
    let logit = model.logit(&[-10, -10, 0], &[-1, 0, 0]);
    assert_eq!(logit, 0.0 + 0.5 + 0.125 + -0.5 + 0.0 + 3.0 + -0.75);
    assert!(model.score(&[-10, -10, 0], &[-1, 0, 0]) > 0.9);
    assert_eq!(model.num_weights(), 1 + 9 + 2 + 1 + 4 + 1 + 1);
}

#[test]
#[should_panic(expected = "one value per integer feature")]
fn score_wants_one_value_per_feature() {
    let _ = sample_model().score(&[1], &[1, 2, 3]);
}

#[test]
fn bad_models_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let check = |model: ScoringModel<'_>, want: &str| {
        let err = write_saved_model(dir.path(), &model).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    };

    let mut m = sample_model();
    m.int_features[0].1 = IntInput::Buckets { boundaries: &LOG_BOUNDARIES, weights: &BUCKET_WEIGHTS[..8] };
    check(m, "8 bucket weights for 8 boundaries (expected 9)");

    let mut m = sample_model();
    m.cat_features[0].1 = CatInput::OneHot { weights: &[] };
    check(m, "one-hot weights are empty");

    let mut m = sample_model();
    m.cat_features[1].0 = "integer-feature-2".into();
    check(m, "\"integer-feature-2\" is listed twice");

    let mut m = sample_model();
    m.cat_features[2].0 = String::new();
    check(m, "feature 2 of the categorical features has an empty name");

    assert!(matches!(
        build_saved_model(&ScoringModel {
            bias: 0.0,
            int_features: Vec::new(),
            cat_features: vec![("c".into(), CatInput::OneHot { weights: &[] })],
        }),
        Err(SavedModelError::EmptyVocabulary { .. })
    ));
}

#[test]
fn a_missing_folder_is_an_io_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/folder");
    let err = write_saved_model(&missing, &sample_model()).unwrap_err();
    let SavedModelError::Io { path, .. } = &err else { panic!("{err:?}") };
    assert!(path.starts_with(&missing));
}

#[test]
fn writes_are_deterministic_and_leave_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saved_model.pb");
    write_saved_model(dir.path(), &sample_model()).unwrap();
    let first = std::fs::read(&path).unwrap();
    write_saved_model(dir.path(), &sample_model()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), first);
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, vec![Path::new("saved_model.pb").as_os_str()]);
    assert_eq!(first, build_saved_model(&sample_model()).unwrap().encode_to_vec());
}

/// The scoring rules written out the plain way, with the `AddN` order
/// spelled out on a list.
fn reference_logit(model: &ScoringModel<'_>, ints: &[i64], ids: &[i64]) -> f32 {
    let mut terms = Vec::new();
    for ((_, input), &x) in model.int_features.iter().zip(ints) {
        terms.push(match *input {
            IntInput::Buckets { boundaries, weights } => {
                let mut bucket = 0;
                for &b in boundaries {
                    if x >= b {
                        bucket += 1;
                    }
                }
                weights[bucket]
            }
            IntInput::Log1p { missing_value, missing_weight, .. } if x == missing_value => missing_weight,
            IntInput::Log1p { weight, .. } => (x.max(0) as f32).ln_1p() * weight,
        });
    }
    for ((_, input), &id) in model.cat_features.iter().zip(ids) {
        terms.push(match *input {
            CatInput::OneHot { weights } if id >= 0 && (id as u64) < weights.len() as u64 => weights[id as usize],
            CatInput::OneHot { weights } => weights[0],
            CatInput::RankAsNumber { weight } => (id.max(0) as f32).ln_1p() * weight,
        });
    }
    let sum = match terms.len() {
        0 => 0.0,
        1 => terms[0],
        n => {
            let r = match n % 8 {
                0 => 8,
                1 => 9,
                r => r,
            };
            let mut total = terms[1..r].iter().fold(terms[0], |a, &b| a + b);
            for g in terms[r..].chunks(8) {
                total += g[1..].iter().fold(g[0], |a, &b| a + b);
            }
            total
        }
    };
    sum + model.bias
}

/// One feature of a random model: its weights live in the strategy's value.
#[derive(Debug, Clone)]
enum Spec {
    Buckets(Vec<i64>, Vec<f32>),
    Log1p(i64, f32, f32),
    OneHot(Vec<f32>),
    Rank(f32),
}

fn weight() -> impl Strategy<Value = f32> {
    -4.0f32..4.0
}

fn int_spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        proptest::collection::vec(-100i64..100, 0..10).prop_flat_map(|b| {
            let n = b.len() + 1;
            (Just(b), proptest::collection::vec(weight(), n)).prop_map(|(b, w)| Spec::Buckets(b, w))
        }),
        (-20i64..0, weight(), weight()).prop_map(|(m, mw, w)| Spec::Log1p(m, mw, w)),
    ]
}

fn cat_spec() -> impl Strategy<Value = Spec> {
    prop_oneof![proptest::collection::vec(weight(), 1..20).prop_map(Spec::OneHot), weight().prop_map(Spec::Rank),]
}

fn value() -> impl Strategy<Value = i64> {
    prop_oneof![-120i64..120, any::<i64>()]
}

proptest! {
    #[test]
    fn logit_matches_the_plain_rules(
        bias in weight(),
        ints in proptest::collection::vec((int_spec(), value()), 0..15),
        cats in proptest::collection::vec((cat_spec(), value()), 0..30),
    ) {
        let model = ScoringModel {
            bias,
            int_features: ints.iter().enumerate().map(|(i, (s, _))| {
                let input = match s {
                    Spec::Buckets(b, w) => IntInput::Buckets { boundaries: b, weights: w },
                    Spec::Log1p(m, mw, w) => IntInput::Log1p { missing_value: *m, missing_weight: *mw, weight: *w },
                    _ => unreachable!(),
                };
                (format!("i{i}"), input)
            }).collect(),
            cat_features: cats.iter().enumerate().map(|(i, (s, _))| {
                let input = match s {
                    Spec::OneHot(w) => CatInput::OneHot { weights: w },
                    Spec::Rank(w) => CatInput::RankAsNumber { weight: *w },
                    _ => unreachable!(),
                };
                (format!("c{i}"), input)
            }).collect(),
        };
        prop_assert!(model.validate().is_ok());
        let xs: Vec<i64> = ints.iter().map(|(_, x)| *x).collect();
        let ids: Vec<i64> = cats.iter().map(|(_, x)| *x).collect();
        let logit = model.logit(&xs, &ids);
        prop_assert_eq!(logit.to_bits(), reference_logit(&model, &xs, &ids).to_bits());
        let p = model.score(&xs, &ids);
        prop_assert!((0.0..=1.0).contains(&p));
        let exact = 1.0 / (1.0 + (-f64::from(logit)).exp());
        prop_assert!((f64::from(p) - exact).abs() <= 6e-8);
    }
}
