//! The gRPC services, called with tonic's client of TF Serving's
//! `PredictionService` and `ModelService`: scores equal criteo-predict's,
//! metadata and status as TF Serving reports them, errors as gRPC codes.

mod common;

use common::{batch_lines, fixture, records, start};
use prost::Message as _;
use sparky_proto::tensorflow::serving::{
    ClassificationRequest, ExampleList, ExampleListWithContext, GetModelMetadataRequest, GetModelStatusRequest, Input,
    ModelSpec, PredictRequest, SignatureDefMap, input, model_spec,
};
use sparky_proto::tensorflow::{DataType, Example, Feature, Features, Int64List, TensorProto, feature};
use sparky_serve::grpc::services::model_service_client::ModelServiceClient;
use sparky_serve::grpc::services::prediction_service_client::PredictionServiceClient;
use tonic::Code;
use tonic::transport::Channel;

fn spec(name: &str) -> Option<ModelSpec> {
    Some(ModelSpec { name: name.into(), ..ModelSpec::default() })
}

fn strings(records: &[Vec<u8>]) -> TensorProto {
    TensorProto { dtype: DataType::DtString as i32, string_val: records.to_vec(), ..TensorProto::default() }
}

/// The scores (p0, p1) of batch lines.
fn batch_scores(lines: &[String]) -> Vec<[f32; 2]> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            [v["scores"][0].as_f64().unwrap() as f32, v["scores"][1].as_f64().unwrap() as f32]
        })
        .collect()
}

fn int_feature(v: i64) -> Feature {
    Feature { kind: Some(feature::Kind::Int64List(Int64List { value: vec![v] })) }
}

#[test]
fn tf_serving_clients_get_criteo_predict_scores() {
    let f = fixture();
    let server = start(&f.base());
    let url = format!("http://{}", server.grpc_addr().unwrap());
    let recs = records(&f.path("blind"));
    let expected = batch_scores(&batch_lines(&f, &f.path("blind"), false));
    let version = f.export().file_name().unwrap().to_string_lossy().parse::<i64>().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
        let mut client = PredictionServiceClient::new(channel.clone());

        // Predict: serialized prepared Examples, as a client of the SavedModel sends them.
        let mut req = PredictRequest { model_spec: spec("sparky"), ..PredictRequest::default() };
        req.inputs.insert("inputs".into(), strings(&recs));
        let resp = client.predict(req.clone()).await.unwrap().into_inner();
        let scores = &resp.outputs["scores"];
        assert_eq!(scores.dtype, DataType::DtFloat as i32);
        let dims: Vec<i64> = scores.tensor_shape.as_ref().unwrap().dim.iter().map(|d| d.size).collect();
        assert_eq!(dims, vec![recs.len() as i64, 2]);
        let got: Vec<[f32; 2]> = scores.float_val.chunks(2).map(|c| [c[0], c[1]]).collect();
        assert_eq!(got, expected, "bit-identical to criteo-predict");
        let classes = &resp.outputs["classes"];
        assert_eq!(classes.string_val[..4], [b"0".to_vec(), b"1".to_vec(), b"0".to_vec(), b"1".to_vec()]);
        let answered = resp.model_spec.unwrap();
        assert_eq!(answered.version_choice, Some(model_spec::VersionChoice::Version(version)));
        assert_eq!(answered.signature_name, "serving_default");

        // An output filter; a version asked for by number.
        req.output_filter = vec!["scores".into()];
        req.model_spec.as_mut().unwrap().version_choice = Some(model_spec::VersionChoice::Version(version));
        let resp = client.predict(req.clone()).await.unwrap().into_inner();
        assert_eq!(resp.outputs.keys().collect::<Vec<_>>(), vec!["scores"]);

        // Classify: the same rows as feature maps of prepared ids, one feature in the context.
        let mut decoder = sparky_prepared::reader::RowDecoder::new(None);
        let mut row = sparky_prepared::reader::Row::default();
        let mut examples = Vec::new();
        for r in &recs[..10] {
            decoder.decode(r, &mut row).unwrap();
            let mut feats = Features::default();
            for (i, v) in row.ints().iter().enumerate().skip(1) {
                feats.feature.insert(format!("integer-feature-{}", i + 1), int_feature(*v));
            }
            for (i, v) in row.ids().iter().enumerate() {
                feats.feature.insert(format!("categorical-feature-{}", i + 1), int_feature(*v));
            }
            if row.ints()[0] != 3 {
                feats.feature.insert("integer-feature-1".into(), int_feature(row.ints()[0]));
            }
            examples.push(Example { features: Some(feats) });
        }
        let mut context = Features::default();
        context.feature.insert("integer-feature-1".into(), int_feature(3));
        let req = ClassificationRequest {
            model_spec: spec("sparky"),
            input: Some(Input {
                kind: Some(input::Kind::ExampleListWithContext(ExampleListWithContext {
                    examples,
                    context: Some(Example { features: Some(context) }),
                })),
            }),
        };
        let resp = client.classify(req).await.unwrap().into_inner();
        let result = resp.result.unwrap();
        assert_eq!(result.classifications.len(), 10);
        for (c, e) in result.classifications.iter().zip(&expected) {
            assert_eq!(c.classes[0].label, "0");
            assert_eq!(c.classes[1].label, "1");
            assert_eq!([c.classes[0].score, c.classes[1].score], *e);
        }

        // Metadata: the serving_default signature, packed in an Any.
        let req = GetModelMetadataRequest { model_spec: spec("sparky"), metadata_field: vec!["signature_def".into()] };
        let resp = client.get_model_metadata(req).await.unwrap().into_inner();
        let any = &resp.metadata["signature_def"];
        assert_eq!(any.type_url, "type.googleapis.com/tensorflow.serving.SignatureDefMap");
        let map = SignatureDefMap::decode(any.value.as_slice()).unwrap();
        assert_eq!(map.signature_def["serving_default"], sparky_savedmodel::serving_signature());

        // Status.
        let mut models = ModelServiceClient::new(channel);
        let resp =
            models.get_model_status(GetModelStatusRequest { model_spec: spec("sparky") }).await.unwrap().into_inner();
        assert_eq!(resp.model_version_status.len(), 1);
        assert_eq!(resp.model_version_status[0].version, version);
        assert_eq!(resp.model_version_status[0].state, 30, "AVAILABLE");
        assert_eq!(resp.model_version_status[0].status.as_ref().unwrap().error_code, 0, "OK");

        // Errors, as gRPC codes with messages.
        let e = models.get_model_status(GetModelStatusRequest { model_spec: spec("other") }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let mut req = PredictRequest { model_spec: spec("sparky"), ..PredictRequest::default() };
        req.inputs.insert(
            "inputs".into(),
            TensorProto { dtype: DataType::DtFloat as i32, float_val: vec![1.0], ..TensorProto::default() },
        );
        let e = client.predict(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("DT_STRING"), "{}", e.message());
        let mut req = PredictRequest { model_spec: spec("sparky"), ..PredictRequest::default() };
        req.inputs.insert("inputs".into(), strings(&[recs[0].clone(), b"not an example".to_vec()]));
        let e = client.predict(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("record 1"), "{}", e.message());
        let mut req = PredictRequest { model_spec: spec("sparky"), ..PredictRequest::default() };
        req.model_spec.as_mut().unwrap().version_choice = Some(model_spec::VersionChoice::Version(1));
        req.inputs.insert("inputs".into(), strings(&recs[..1]));
        assert_eq!(client.predict(req).await.unwrap_err().code(), Code::NotFound);
        let req = ClassificationRequest {
            model_spec: spec("sparky"),
            input: Some(Input {
                kind: Some(input::Kind::ExampleList(ExampleList {
                    examples: vec![Example {
                        features: Some(Features {
                            feature: [("colour".to_string(), int_feature(1))].into_iter().collect(),
                        }),
                    }],
                })),
            }),
        };
        let e = client.classify(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("example 0: field \"colour\": unknown feature"), "{}", e.message());
    });
    // The client's connection closes with its runtime.
    drop(rt);
    server.shutdown().unwrap();
}

#[test]
fn shutdown_does_not_wait_forever_for_an_idle_client() {
    let f = fixture();
    let server = common::start_with(&f.base(), |c| c.drain_timeout = std::time::Duration::from_millis(300));
    let url = format!("http://{}", server.grpc_addr().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // A client that connected, called, and then stopped reading (its runtime
    // is not driven while the server stops).
    let _channel = rt.block_on(async {
        let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
        let mut models = ModelServiceClient::new(channel.clone());
        models.get_model_status(GetModelStatusRequest { model_spec: spec("sparky") }).await.unwrap();
        channel
    });
    let err = server.shutdown().unwrap_err();
    assert!(err.to_string().contains("still open after"), "{err}");
}
