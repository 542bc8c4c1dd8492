//! The gRPC API: TensorFlow Serving's `PredictionService` (`Predict`,
//! `Classify`, `GetModelMetadata`) and `ModelService` (`GetModelStatus`), on
//! the messages of `sparky-proto`, so that TF Serving's clients call it
//! unchanged.

use std::sync::Arc;
use std::time::Instant;

use prost::Message as _;
use sparky_linear::metrics::sigmoid;
use sparky_predict::writer::class_scores;
use sparky_proto::tensorflow::error::Code;
use sparky_proto::tensorflow::serving::{
    Class, ClassificationRequest, ClassificationResponse, ClassificationResult, Classifications,
    GetModelMetadataRequest, GetModelMetadataResponse, GetModelStatusRequest, GetModelStatusResponse, ModelSpec,
    ModelVersionStatus, PredictRequest, PredictResponse, SignatureDefMap, StatusProto, input, model_spec,
    model_version_status,
};
use sparky_proto::tensorflow::{DataType, TensorProto, TensorShapeProto, tensor_shape_proto};
use sparky_savedmodel::{CLASSES_KEY, INPUT_KEY, SCORES_KEY, SERVING_SIGNATURE};
use tonic::{Request, Response, Status};

use crate::App;
use crate::error::ApiError;
use crate::json::{Parsed, parse_examples, parse_serialized};
use crate::models::{Loaded, VersionSel};

/// The generated service code (messages are `sparky-proto`'s).
#[allow(missing_docs, unreachable_pub, unused_qualifications, clippy::all, clippy::pedantic)]
pub mod services {
    include!(concat!(env!("OUT_DIR"), "/tensorflow.serving.rs"));
}

use services::model_service_server::ModelService;
use services::prediction_service_server::PredictionService;

/// Both services over one application state.
#[derive(Clone)]
pub(crate) struct Grpc {
    pub(crate) app: Arc<App>,
}

/// The metadata field that holds the signatures.
const SIGNATURE_DEF_FIELD: &str = "signature_def";

fn selection(spec: Option<&ModelSpec>) -> Result<(&str, VersionSel), ApiError> {
    let spec = spec.ok_or_else(|| ApiError::BadRequest("model_spec: missing".into()))?;
    if spec.name.is_empty() {
        return Err(ApiError::BadRequest("model_spec.name: missing".into()));
    }
    if !(spec.signature_name.is_empty() || spec.signature_name == SERVING_SIGNATURE) {
        return Err(ApiError::BadRequest(format!(
            "model_spec.signature_name: no signature \"{}\" (the model has \"{SERVING_SIGNATURE}\")",
            spec.signature_name
        )));
    }
    let version = match &spec.version_choice {
        None => VersionSel::Latest,
        Some(model_spec::VersionChoice::Version(v)) => u64::try_from(*v)
            .map(VersionSel::Number)
            .map_err(|_| ApiError::BadRequest(format!("model_spec.version: {v} is negative")))?,
        Some(model_spec::VersionChoice::VersionLabel(l)) => VersionSel::Label(l.clone()),
    };
    Ok((&spec.name, version))
}

fn answered_spec(name: &str, loaded: &Loaded) -> ModelSpec {
    ModelSpec {
        name: name.to_string(),
        version_choice: Some(model_spec::VersionChoice::Version(i64::try_from(loaded.version).unwrap_or(i64::MAX))),
        signature_name: SERVING_SIGNATURE.to_string(),
    }
}

fn shape(dims: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: dims.iter().map(|&size| tensor_shape_proto::Dim { size, name: String::new() }).collect(),
        unknown_rank: false,
    }
}

fn scores_of(loaded: &Loaded, rows: &[Parsed]) -> Vec<[f32; 2]> {
    rows.iter().map(|r| class_scores(sigmoid(loaded.scorer.logit(&r.ints, &r.ids)))).collect()
}

impl Grpc {
    async fn timed<T>(
        &self,
        api: &'static str,
        f: impl Future<Output = Result<(T, u64), ApiError>>,
    ) -> Result<Response<T>, Status> {
        let start = Instant::now();
        let result = f.await;
        let (code, rows) = match &result {
            Ok((_, rows)) => (0, *rows),
            Err(e) => (e.grpc_status().code() as u16, 0),
        };
        self.app.metrics.record("grpc", api, code, rows, start.elapsed());
        result.map(|(t, _)| Response::new(t)).map_err(|e| e.grpc_status())
    }

    fn loaded(&self, spec: Option<&ModelSpec>) -> Result<(String, Arc<Loaded>), ApiError> {
        let (name, version) = selection(spec)?;
        let loaded = self.app.models.get(name)?.select(&version)?;
        Ok((name.to_string(), loaded))
    }
}

#[tonic::async_trait]
impl PredictionService for Grpc {
    async fn classify(&self, req: Request<ClassificationRequest>) -> Result<Response<ClassificationResponse>, Status> {
        self.timed("classify", async {
            let _permit = self.app.admit().await?;
            let req = req.into_inner();
            let (name, loaded) = self.loaded(req.model_spec.as_ref())?;
            let rows = match req.input.and_then(|i| i.kind) {
                None => {
                    return Err(ApiError::BadRequest(
                        "input: missing (give example_list or example_list_with_context)".into(),
                    ));
                }
                Some(input::Kind::ExampleList(l)) => parse_examples(&l.examples, None, &loaded)?,
                Some(input::Kind::ExampleListWithContext(l)) => {
                    parse_examples(&l.examples, l.context.as_ref(), &loaded)?
                }
            };
            let classifications = scores_of(&loaded, &rows)
                .into_iter()
                .map(|[p0, p1]| Classifications {
                    classes: vec![Class { label: "0".into(), score: p0 }, Class { label: "1".into(), score: p1 }],
                })
                .collect();
            let n = rows.len() as u64;
            Ok((
                ClassificationResponse {
                    model_spec: Some(answered_spec(&name, &loaded)),
                    result: Some(ClassificationResult { classifications }),
                },
                n,
            ))
        })
        .await
    }

    async fn predict(&self, req: Request<PredictRequest>) -> Result<Response<PredictResponse>, Status> {
        self.timed("predict", async {
            let _permit = self.app.admit().await?;
            let req = req.into_inner();
            let (name, loaded) = self.loaded(req.model_spec.as_ref())?;
            let tensor = match req.inputs.get(INPUT_KEY) {
                Some(t) => t,
                None if req.inputs.len() == 1 => req.inputs.values().next().expect("one input"),
                None => {
                    let names: Vec<&str> = req.inputs.keys().map(String::as_str).collect();
                    return Err(ApiError::BadRequest(format!(
                        "inputs: expected the input \"{INPUT_KEY}\" (serialized tf.train.Examples), found [{}]",
                        names.join(", ")
                    )));
                }
            };
            if tensor.dtype != DataType::DtString as i32 {
                let found = DataType::try_from(tensor.dtype).map_or("an unknown type", |d| d.as_str_name());
                return Err(ApiError::BadRequest(format!(
                    "inputs: expected a DT_STRING tensor of serialized tf.train.Examples, found {found}"
                )));
            }
            for f in &req.output_filter {
                if f != CLASSES_KEY && f != SCORES_KEY {
                    return Err(ApiError::BadRequest(format!(
                        "output_filter: no output \"{f}\" (the signature's outputs are \"{CLASSES_KEY}\" and \"{SCORES_KEY}\")"
                    )));
                }
            }
            let rows = parse_serialized(&tensor.string_val, &loaded)?;
            let n = rows.len();
            let want = |k: &str| req.output_filter.is_empty() || req.output_filter.iter().any(|f| f == k);
            let mut outputs = std::collections::BTreeMap::new();
            if want(CLASSES_KEY) {
                outputs.insert(
                    CLASSES_KEY.to_string(),
                    TensorProto {
                        dtype: DataType::DtString as i32,
                        tensor_shape: Some(shape(&[n as i64, 2])),
                        string_val: (0..n).flat_map(|_| [b"0".to_vec(), b"1".to_vec()]).collect(),
                        ..TensorProto::default()
                    },
                );
            }
            if want(SCORES_KEY) {
                outputs.insert(
                    SCORES_KEY.to_string(),
                    TensorProto {
                        dtype: DataType::DtFloat as i32,
                        tensor_shape: Some(shape(&[n as i64, 2])),
                        float_val: scores_of(&loaded, &rows).into_iter().flatten().collect(),
                        ..TensorProto::default()
                    },
                );
            }
            Ok((PredictResponse { model_spec: Some(answered_spec(&name, &loaded)), outputs }, n as u64))
        })
        .await
    }

    async fn get_model_metadata(
        &self,
        req: Request<GetModelMetadataRequest>,
    ) -> Result<Response<GetModelMetadataResponse>, Status> {
        self.timed("metadata", async {
            let req = req.into_inner();
            let (name, loaded) = self.loaded(req.model_spec.as_ref())?;
            if req.metadata_field.is_empty() {
                return Err(ApiError::BadRequest(format!(
                    "metadata_field: empty (the metadata served is \"{SIGNATURE_DEF_FIELD}\")"
                )));
            }
            if let Some(f) = req.metadata_field.iter().find(|f| *f != SIGNATURE_DEF_FIELD) {
                return Err(ApiError::BadRequest(format!(
                    "metadata_field: \"{f}\" is not served (the metadata served is \"{SIGNATURE_DEF_FIELD}\")"
                )));
            }
            let mut map = SignatureDefMap::default();
            map.signature_def.insert(SERVING_SIGNATURE.to_string(), sparky_savedmodel::serving_signature());
            let any = prost_types::Any {
                type_url: "type.googleapis.com/tensorflow.serving.SignatureDefMap".to_string(),
                value: map.encode_to_vec(),
            };
            let mut metadata = std::collections::BTreeMap::new();
            metadata.insert(SIGNATURE_DEF_FIELD.to_string(), any);
            Ok((GetModelMetadataResponse { model_spec: Some(answered_spec(&name, &loaded)), metadata }, 0))
        })
        .await
    }
}

#[tonic::async_trait]
impl ModelService for Grpc {
    async fn get_model_status(
        &self,
        req: Request<GetModelStatusRequest>,
    ) -> Result<Response<GetModelStatusResponse>, Status> {
        self.timed("status", async {
            let req = req.into_inner();
            let (_, loaded) = self.loaded(req.model_spec.as_ref())?;
            let status = ModelVersionStatus {
                version: i64::try_from(loaded.version).unwrap_or(i64::MAX),
                state: model_version_status::State::Available as i32,
                status: Some(StatusProto { error_code: Code::Ok as i32, error_message: String::new() }),
            };
            Ok((GetModelStatusResponse { model_version_status: vec![status] }, 0))
        })
        .await
    }
}
