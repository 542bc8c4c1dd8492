//! Logistic regression for click prediction, the model of the guide's
//! TensorFlow `LinearClassifier`, done natively.
//!
//! - [`layout`]: how an example (13 integers, 26 vocabulary ids) activates
//!   one weight per feature plus the bias: integers as one-hot logarithmic
//!   buckets (or `ln(1+x)` with a missing indicator), categorical ids as
//!   one-hot weights with a shared out-of-vocabulary slot.
//! - [`train`]: FTRL-Proximal (default), AdaGrad and SGD, mini-batches, and
//!   lock-free updates from several threads ([`train::SharedModel`],
//!   [`train::Worker`]); exactly reproducible with one thread.
//! - [`metrics`]: log loss, exact AUC, accuracy, calibration.
//! - [`model`]: the trained weights and their protobuf form.
//!
//! ```
//! use sparky_linear::layout::{CatEncoding, IntTransform, Layout, MISSING_INT};
//! use sparky_linear::metrics::Evaluator;
//! use sparky_linear::train::{OptimizerConfig, OptimizerKind, SharedModel, Worker};
//!
//! // 26 categorical features with vocabularies of 2 values each.
//! let layout = Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &[2; 26])?;
//! let opt = OptimizerConfig::defaults(OptimizerKind::Ftrl).validate()?;
//! let shared = SharedModel::new(layout, opt);
//! let mut worker = Worker::new(&shared, 4);
//! // Rows where C1 = 1 are clicked, C1 = 2 are not.
//! for i in 0..4000 {
//!     let mut ids = [1i64; 26];
//!     ids[0] = 1 + (i % 2);
//!     worker.train(&[MISSING_INT; 13], &ids, i % 2 == 0);
//! }
//! worker.end_batch();
//! let model = shared.snapshot();
//! let mut eval = Evaluator::new();
//! for c1 in [1, 2] {
//!     let mut ids = [1i64; 26];
//!     ids[0] = c1;
//!     eval.add(model.logit(&[MISSING_INT; 13], &ids), c1 == 1);
//! }
//! let m = eval.finish();
//! assert_eq!(m.auc, 1.0);
//! assert!(m.log_loss < 0.2, "{}", m.log_loss);
//! # Ok::<(), sparky_linear::ModelError>(())
//! ```

mod error;
pub mod layout;
pub mod metrics;
pub mod model;
pub mod train;

pub use error::ModelError;
pub use layout::{CatEncoding, IntTransform, Layout};
pub use metrics::{Evaluator, Metrics};
pub use model::LinearModel;
pub use train::{OptimizerConfig, OptimizerKind, SharedModel, Worker};
