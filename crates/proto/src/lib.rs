//! Protocol buffer messages used across sparky, generated at build time from the
//! workspace's `proto/` folder by `prost-build` fed by `protox` (no `protoc`).
//!
//! - [`tensorflow`]: `tf.train.Example` and its features, TensorBoard's `Event`
//!   and `Summary`, the SavedModel messages, and TensorFlow Serving's API
//!   messages ([`tensorflow::serving`]). These `.proto` files are our
//!   own, wire-compatible with TensorFlow's (same package, message names and
//!   field numbers), so TensorFlow reads what sparky writes and vice versa.
//! - [`sparky`]: sparky's own formats (the exported linear model and training
//!   checkpoints), versioned.
//!
//! Maps are generated as `BTreeMap`, so a message always encodes to the same
//! bytes: outputs are deterministic.
//!
//! ```
//! use prost::Message;
//! use sparky_proto::tensorflow::{Example, Feature, Features, Int64List, feature::Kind};
//!
//! let mut features = Features::default();
//! features.feature.insert(
//!     "clicked".to_string(),
//!     Feature { kind: Some(Kind::Int64List(Int64List { value: vec![1] })) },
//! );
//! let example = Example { features: Some(features) };
//! let bytes = example.encode_to_vec();
//! assert_eq!(Example::decode(bytes.as_slice()).unwrap(), example);
//! ```

/// Messages in TensorFlow's `tensorflow` package.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod tensorflow {
    include!(concat!(env!("OUT_DIR"), "/tensorflow.rs"));

    /// TensorFlow's canonical error codes (`tensorflow.error.Code`).
    pub mod error {
        include!(concat!(env!("OUT_DIR"), "/tensorflow.error.rs"));
    }

    /// TensorFlow Serving's API messages (`tensorflow.serving`): Predict,
    /// Classify, GetModelMetadata and GetModelStatus requests and responses.
    /// The gRPC services over them are generated in `sparky-serve`.
    pub mod serving {
        include!(concat!(env!("OUT_DIR"), "/tensorflow.serving.rs"));
    }
}

/// sparky's own messages.
pub mod sparky {
    /// The exported model and checkpoint format, version 1.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod model {
        /// Version 1 of the format.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/sparky.model.v1.rs"));
        }
    }
}
