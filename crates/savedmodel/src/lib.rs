//! TensorFlow SavedModels of sparky's linear click models, built in Rust.
//!
//! [`write_saved_model`] writes `saved_model.pb` for a [`ScoringModel`]: a
//! TensorFlow 1-style meta graph tagged `serve` whose `serving_default`
//! signature (method `tensorflow/serving/predict`) takes a batch of serialized
//! `tf.Example`s as `inputs` and returns what the guide's Cloud ML Engine
//! batch prediction wrote:
//!
//! - `classes`: string `[N, 2]`, every row `["0", "1"]`;
//! - `scores`: float `[N, 2]`, every row `[1 - p, p]` with p = p(click).
//!
//! Neither TensorFlow nor a checkpoint is involved: the protobuf messages are
//! sparky's own ([`sparky_proto::tensorflow`]), and the trained weights are
//! `Const` nodes of the graph, so there is no `variables/` folder.
//! TensorFlow 2.21 loads it with `tf.saved_model.load(dir)` and in a TF1
//! `Session` (`tf.compat.v1.saved_model.load`, the way TensorFlow Serving's
//! loader works), and `saved_model_cli show --all` lists its signature.
//! `scripts/check_savedmodel.py` checks both loads against this crate's
//! scores.
//!
//! # The graph
//!
//! ```text
//! input_example_tensor (Placeholder, string [N])
//!   -> ParseExampleV2: one required int64 feature of shape [1] per model
//!      feature; other features of the Examples (id, clicked) are ignored
//!   -> per feature, a float [N] term:
//!      Buckets:      GreaterEqual(x, boundaries) -> Cast -> Sum = bucket -> GatherV2(weights)
//!      Log1p:        SelectV2(x == missing, missing_weight, Log1p(Maximum(Cast(x), 0)) * weight)
//!      OneHot:       GatherV2(weights, SelectV2(0 <= id < len, id, 0))
//!      RankAsNumber: Log1p(Maximum(Cast(id), 0)) * weight
//!   -> AddN(terms) + bias -> Sigmoid = p -> scores = ConcatV2([1 - p, p], axis 1)
//! classes = Tile(["0", "1"], [N, 1])
//! ```
//!
//! [`ScoringModel::score`] computes the same float32 operations in the same
//! order, so sparky's own scores and TensorFlow's agree to within an ulp or
//! two of the transcendental functions (far inside 1e-6).
//!
//! # Example
//!
//! ```
//! use prost::Message;
//! use sparky_savedmodel::{CatInput, IntInput, ScoringModel, write_saved_model};
//!
//! let boundaries = [-9, 0, 1, 2];
//! let bucket_weights = [0.1, -0.2, 0.0, 0.3, 0.5];
//! let id_weights = [0.0, 1.5, -1.0];
//! let model = ScoringModel {
//!     bias: -1.0,
//!     int_features: vec![(
//!         "integer-feature-1".to_string(),
//!         IntInput::Buckets { boundaries: &boundaries, weights: &bucket_weights },
//!     )],
//!     cat_features: vec![(
//!         "categorical-feature-1".to_string(),
//!         CatInput::OneHot { weights: &id_weights },
//!     )],
//! };
//! // x = 5 is at or above all four boundaries: bucket 4, weight 0.5.
//! // Id 2 is in the vocabulary (weight -1.0); id 7 is not (slot 0, weight 0.0).
//! assert_eq!(model.logit(&[5], &[2]), 0.5 + -1.0 + -1.0);
//! assert_eq!(model.logit(&[-10], &[7]), 0.1 + 0.0 + -1.0);
//! let p = model.score(&[5], &[2]);
//! assert!((p - 1.0 / (1.0 + 1.5f32.exp())).abs() < 1e-7);
//!
//! let dir = tempfile::tempdir()?;
//! write_saved_model(dir.path(), &model)?;
//! let bytes = std::fs::read(dir.path().join("saved_model.pb"))?;
//! let saved = sparky_proto::tensorflow::SavedModel::decode(bytes.as_slice())?;
//! let meta_graph = &saved.meta_graphs[0];
//! assert!(meta_graph.signature_def.contains_key("serving_default"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Size
//!
//! The file is about 4 bytes per weight plus a few kilobytes of graph; it is
//! streamed to disk node by node, so writing needs one copy of the weights in
//! memory besides the caller's. Protobuf limits a message to 2 GiB, about
//! 500 million weights; beyond that [`write_saved_model`] refuses with
//! [`SavedModelError::TooLarge`].

mod error;
mod graph;
mod model;
mod write;

use std::path::Path;

pub use error::SavedModelError;
pub use graph::{GRAPH_DEF_PRODUCER, build_saved_model, serving_signature};
pub use model::{CatInput, IntInput, ScoringModel};

/// The file a SavedModel directory holds its graph in.
pub const SAVED_MODEL_FILE: &str = "saved_model.pb";
/// The tag of the meta graph (what `saved_model_cli --tag_set` selects).
pub const SERVE_TAG: &str = "serve";
/// The signature TensorFlow Serving and Cloud ML Engine use by default.
pub const SERVING_SIGNATURE: &str = "serving_default";
/// The method name of the signature: a predict API signature.
pub const PREDICT_METHOD: &str = "tensorflow/serving/predict";
/// The signature's input key: a string vector of serialized `tf.Example`s.
pub const INPUT_KEY: &str = "inputs";
/// The signature's output key for the class labels, string `[N, 2]`.
pub const CLASSES_KEY: &str = "classes";
/// The signature's output key for the class probabilities, float `[N, 2]`.
pub const SCORES_KEY: &str = "scores";
/// The graph's input placeholder (its tensor is `input_example_tensor:0`).
pub const INPUT_TENSOR: &str = "input_example_tensor";
/// The node computing `classes`.
pub const CLASSES_TENSOR: &str = "classes";
/// The node computing `scores`.
pub const SCORES_TENSOR: &str = "scores";
/// The largest `saved_model.pb` protobuf parsers accept: 2 GiB - 1 bytes.
pub const MAX_PROTO_BYTES: u64 = i32::MAX as u64;

/// Writes `dir/saved_model.pb` (atomically: temporary file + rename) for the
/// model; `dir` must exist.
///
/// Validates the model first ([`ScoringModel::validate`]) and refuses one
/// whose encoding would pass the protobuf limit
/// ([`SavedModelError::TooLarge`]); nothing is written then. The same model
/// always gives the same bytes.
pub fn write_saved_model(dir: &Path, model: &ScoringModel<'_>) -> Result<(), SavedModelError> {
    let saved = build_saved_model(model)?;
    write::write_file(dir, &saved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn streaming_encoding_equals_prost() {
        let b = [-9i64, 0, 1, 2, 3, 5];
        let w = [0.5f32, -0.25, 0.125, 1.0, 2.0, -3.0, 4.5];
        let v = [0.0f32, 1.0, -2.0];
        let model = ScoringModel {
            bias: 0.75,
            int_features: vec![
                ("i1".into(), IntInput::Buckets { boundaries: &b, weights: &w }),
                ("i2".into(), IntInput::Log1p { missing_value: -10, missing_weight: 0.5, weight: 0.25 }),
            ],
            cat_features: vec![
                ("c1".into(), CatInput::OneHot { weights: &v }),
                ("c2".into(), CatInput::RankAsNumber { weight: -0.5 }),
            ],
        };
        for m in [model, ScoringModel::default()] {
            let saved = build_saved_model(&m).unwrap();
            let mut streamed = Vec::new();
            write::encode_streaming(&mut streamed, &saved).unwrap();
            assert_eq!(streamed, saved.encode_to_vec());
        }
    }
}
