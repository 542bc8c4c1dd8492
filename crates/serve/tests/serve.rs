//! criteo-serve's APIs end to end: a server on 127.0.0.1 (port 0) with a
//! model trained on generated rows, called over REST (a plain HTTP/1.1
//! client) and gRPC (tonic's client of TF Serving's services). Every score is
//! checked against criteo-predict's batch output, to the bit.

mod common;

use base64::Engine as _;
use common::{Fixture, batch_lines, fixture, get, lines, post, records, request, start};
use serde_json::{Value, json};
use std::sync::OnceLock;

/// One fixture for the whole file: training a model is the slow part.
fn shared() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(fixture)
}

/// A batch line without its `"id": N, ` (TSV lines are numbered in batch
/// output; a request's instances carry no id).
fn without_id(line: &str) -> String {
    match line.strip_prefix("{\"id\": ") {
        Some(rest) => format!("{{{}", &rest[rest.find(", ").unwrap() + 2..]),
        None => line.to_string(),
    }
}

/// The objects of a `predictions` answer, each as its exact text.
fn prediction_texts(body: &str) -> Vec<String> {
    let inner = body.strip_prefix("{\"predictions\": [").unwrap().strip_suffix("]}").unwrap();
    if inner.is_empty() {
        return Vec::new();
    }
    inner.split("}, {").map(|s| format!("{{{}}}", s.trim_start_matches('{').trim_end_matches('}'))).collect()
}

/// A raw TSV line (labelled) as an object of raw fields: empty fields absent
/// or null in turn, integers as numbers, the label under "clicked".
fn object_of(line: &str, k: usize) -> Value {
    let fields: Vec<&str> = line.split('\t').collect();
    let mut m = serde_json::Map::new();
    m.insert("clicked".into(), json!(fields[0].parse::<i64>().unwrap()));
    for (i, v) in fields[1..14].iter().enumerate() {
        let name = format!("integer-feature-{}", i + 1);
        if v.is_empty() {
            if (i + k).is_multiple_of(2) {
                m.insert(name, Value::Null);
            }
        } else {
            m.insert(name, json!(v.parse::<i64>().unwrap()));
        }
    }
    for (i, v) in fields[14..].iter().enumerate() {
        let name = format!("categorical-feature-{}", i + 1);
        if v.is_empty() {
            if !(i + k).is_multiple_of(2) {
                m.insert(name, Value::Null);
            }
        } else {
            m.insert(name, json!(v));
        }
    }
    Value::Object(m)
}

#[test]
fn predict_scores_equal_batch_prediction_for_every_instance_kind() {
    let f = shared();
    let server = start(&f.base());
    let addr = server.rest_addr();
    let tsv = lines(&f.path("test.tsv"));
    let expected: Vec<String> = batch_lines(f, &f.path("test.tsv"), true).iter().map(|l| without_id(l)).collect();
    assert_eq!(expected.len(), tsv.len());

    // Raw TSV lines, labelled and not.
    let a = post(addr, "/v1/models/sparky:predict", &json!({ "instances": tsv }));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(prediction_texts(&a.body), expected);
    let unlabelled: Vec<String> = tsv.iter().map(|l| l.split_once('\t').unwrap().1.to_string()).collect();
    let a = post(addr, "/v1/models/sparky:predict", &json!({ "instances": unlabelled }));
    assert_eq!(prediction_texts(&a.body), expected);

    // Objects of raw fields, with a signature name.
    let objects: Vec<Value> = tsv.iter().enumerate().map(|(k, l)| object_of(l, k)).collect();
    let a =
        post(addr, "/v1/models/sparky:predict", &json!({ "signature_name": "serving_default", "instances": objects }));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(prediction_texts(&a.body), expected);

    // Serialized prepared Examples (predict mode: each carries its id).
    let b64: Vec<Value> = records(&f.path("blind"))
        .iter()
        .map(|r| json!({ "b64": base64::engine::general_purpose::STANDARD.encode(r) }))
        .collect();
    let expected_blind = batch_lines(f, &f.path("blind"), false);
    assert_eq!(b64.len(), expected_blind.len());
    let a = post(addr, "/v1/models/sparky:predict", &json!({ "instances": b64 }));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(prediction_texts(&a.body), expected_blind);
    // The same, addressed by version and with the input named.
    let version = f.export().file_name().unwrap().to_string_lossy().into_owned();
    let named: Vec<Value> = b64.iter().map(|b| json!({ "inputs": b })).collect();
    let a = post(addr, &format!("/v1/models/sparky/versions/{version}:predict"), &json!({ "instances": named }));
    assert_eq!(prediction_texts(&a.body), expected_blind);

    // A mixed request answers in request order.
    let mixed = json!({ "instances": [tsv[3], objects[1], b64[2]] });
    let a = post(addr, "/v1/models/sparky:predict", &mixed);
    assert_eq!(prediction_texts(&a.body), vec![expected[3].clone(), expected[1].clone(), expected_blind[2].clone()]);
    server.shutdown().unwrap();
}

#[test]
fn columnar_inputs_answer_outputs() {
    let f = shared();
    let server = start(&f.base());
    let addr = server.rest_addr();
    let tsv: Vec<String> = lines(&f.path("test.tsv")).into_iter().take(5).collect();
    let rows = post(addr, "/v1/models/sparky:predict", &json!({ "instances": tsv })).json();
    for body in [json!({ "inputs": tsv }), json!({ "inputs": { "inputs": tsv } })] {
        let a = post(addr, "/v1/models/sparky:predict", &body);
        assert_eq!(a.status, 200, "{}", a.body);
        let out = a.json();
        for (i, p) in rows["predictions"].as_array().unwrap().iter().enumerate() {
            assert_eq!(out["outputs"]["scores"][i], p["scores"]);
            assert_eq!(out["outputs"]["classes"][i], json!(["0", "1"]));
        }
    }
    let a = post(addr, "/v1/models/sparky:predict", &json!({ "inputs": { "images": tsv } }));
    assert_eq!(a.status, 400);
    assert!(a.error().contains("unknown input \"images\""), "{}", a.body);
    server.shutdown().unwrap();
}

#[test]
fn classify_takes_prepared_ids_and_raw_values_with_a_context() {
    let f = shared();
    let server = start(&f.base());
    let addr = server.rest_addr();
    let tsv = lines(&f.path("test.tsv"));
    let expected: Vec<Value> =
        post(addr, "/v1/models/sparky:predict", &json!({ "instances": tsv[..20] })).json()["predictions"]
            .as_array()
            .unwrap()
            .clone();
    // Raw values as strings; integers shared by every example moved to the context.
    let mut examples = Vec::new();
    for (k, l) in tsv[..20].iter().enumerate() {
        examples.push(object_of(l, k));
    }
    let a = post(addr, "/v1/models/sparky:classify", &json!({ "examples": examples }));
    assert_eq!(a.status, 200, "{}", a.body);
    let results = a.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 20);
    for (r, p) in results.iter().zip(&expected) {
        assert_eq!(r[0][0], "0");
        assert_eq!(r[1][0], "1");
        assert_eq!(r[0][1], p["scores"][0]);
        assert_eq!(r[1][1], p["scores"][1]);
    }
    // Prepared ids as integers: the decoded Examples of the blind rows.
    let recs = records(&f.path("blind"));
    let b64: Vec<Value> =
        recs.iter().take(10).map(|r| json!({ "b64": base64::engine::general_purpose::STANDARD.encode(r) })).collect();
    let want = post(addr, "/v1/models/sparky:predict", &json!({ "instances": b64 })).json();
    let mut examples = Vec::new();
    let mut decoder = sparky_prepared::reader::RowDecoder::new(None);
    let mut row = sparky_prepared::reader::Row::default();
    for r in recs.iter().take(10) {
        decoder.decode(r, &mut row).unwrap();
        let mut m = serde_json::Map::new();
        for (i, v) in row.ints().iter().enumerate() {
            m.insert(format!("integer-feature-{}", i + 1), json!(v));
        }
        for (i, v) in row.ids().iter().enumerate() {
            m.insert(format!("categorical-feature-{}", i + 1), json!(v));
        }
        examples.push(Value::Object(m));
    }
    // One feature moved to the context: examples without it take the context's.
    let shared_value = examples[0]["integer-feature-1"].clone();
    let mut context = serde_json::Map::new();
    context.insert("integer-feature-1".into(), shared_value.clone());
    for e in examples.iter_mut().filter(|e| e["integer-feature-1"] == shared_value) {
        e.as_object_mut().unwrap().remove("integer-feature-1");
    }
    let a = post(addr, "/v1/models/sparky:classify", &json!({ "examples": examples, "context": context }));
    assert_eq!(a.status, 200, "{}", a.body);
    for (r, p) in a.json()["results"].as_array().unwrap().iter().zip(want["predictions"].as_array().unwrap()) {
        assert_eq!(r[1][1], p["scores"][1]);
    }
    server.shutdown().unwrap();
}

#[test]
fn status_and_metadata_are_reported_as_tf_serving_does() {
    let f = shared();
    let server = start(&f.base());
    let addr = server.rest_addr();
    let version = f.export().file_name().unwrap().to_string_lossy().into_owned();
    let a = get(addr, "/v1/models/sparky");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json(),
        json!({ "model_version_status": [{ "version": version, "state": "AVAILABLE",
                 "status": { "error_code": "OK", "error_message": "" } }] })
    );
    assert_eq!(get(addr, &format!("/v1/models/sparky/versions/{version}")).status, 200);
    let m = get(addr, "/v1/models/sparky/metadata").json();
    assert_eq!(m["model_spec"]["name"], "sparky");
    assert_eq!(m["model_spec"]["version"], version);
    let sig = &m["metadata"]["signature_def"]["signature_def"]["serving_default"];
    assert_eq!(sig["method_name"], "tensorflow/serving/predict");
    assert_eq!(sig["inputs"]["inputs"]["dtype"], "DT_STRING");
    assert_eq!(sig["inputs"]["inputs"]["name"], "input_example_tensor:0");
    assert_eq!(sig["inputs"]["inputs"]["tensor_shape"]["dim"][0]["size"], "-1");
    assert_eq!(sig["outputs"]["scores"]["dtype"], "DT_FLOAT");
    assert_eq!(sig["outputs"]["classes"]["tensor_shape"]["dim"][1]["size"], "2");
    assert_eq!(get(addr, "/healthz").status, 200);
    let metrics = get(addr, "/metrics");
    assert!(
        metrics.body.contains("sparky_requests_total{protocol=\"rest\",api=\"status\",code=\"200\"} 2"),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains(&format!("sparky_model_version{{model=\"sparky\"}} {version}")), "{}", metrics.body);
    server.shutdown().unwrap();
}

#[test]
fn bad_requests_are_answered_with_the_right_status_and_message() {
    let f = shared();
    let server = start_small_body(&f.base());
    let addr = server.rest_addr();
    let tsv = lines(&f.path("test.tsv"));
    let bad = |body: &str| {
        let a = request(addr, "POST", "/v1/models/sparky:predict", body.as_bytes());
        assert_eq!(a.status, 400, "{body} -> {}", a.body);
        a.error()
    };
    assert!(bad("{\"instances\": [").contains("malformed request"));
    assert!(bad("[1, 2]").contains("instances"));
    assert!(bad("{}").contains("neither \"instances\" nor \"inputs\""));
    assert!(bad("{\"instances\": 5}").contains("expected a list of instances, found an integer"));
    assert!(bad("{\"instances\": [], \"extra\": 1}").contains("unknown field \"extra\""));
    assert!(bad("{\"instances\": [], \"instances\": []}").contains("once"));
    assert!(bad("{\"instances\": [7]}").contains("instance 0: expected"));
    let m = bad("{\"instances\": [{}, {\"integer-feature-2\": true}]}");
    assert!(m.contains("instance 0") && m.contains("empty object"), "{m}");
    let m = bad("{\"instances\": [{\"integer-feature-1\": 1}, {\"integer-feature-2\": \"x1\"}]}");
    assert!(m.contains("instance 1: field \"integer-feature-2\"") && m.contains("not an integer"), "{m}");
    let m = bad("{\"instances\": [{\"categorical-feature-3\": 17}]}");
    assert!(m.contains("instance 0: field \"categorical-feature-3\"") && m.contains("found an integer"), "{m}");
    let m = bad("{\"instances\": [{\"integer-feature-1\": 1, \"integer-feature-1\": 2}]}");
    assert!(m.contains("field \"integer-feature-1\": given twice"), "{m}");
    let m = bad("{\"instances\": [{\"integer-feature-14\": 1}]}");
    assert!(m.contains("field \"integer-feature-14\": unknown field"), "{m}");
    let m = bad("{\"instances\": [{\"b64\": \"!!\"}]}");
    assert!(m.contains("instance 0: field \"b64\": not base64"), "{m}");
    let m = bad("{\"instances\": [{\"integer-feature-1\": 1, \"b64\": \"AAAA\"}]}");
    assert!(m.contains("only field"), "{m}");
    let m = bad(&json!({ "instances": [tsv[0], "1\t2\t3"] }).to_string());
    assert!(m.contains("instance 1: TSV line: 3 tab-separated fields"), "{m}");
    let m = bad(&json!({ "signature_name": "other", "instances": [tsv[0]] }).to_string());
    assert!(m.contains("no signature \"other\""), "{m}");
    let m =
        request(addr, "POST", "/v1/models/sparky:classify", b"{\"examples\": [{\"categorical-feature-1\": 99999999}]}")
            .error();
    assert!(m.contains("example 0: field \"categorical-feature-1\": prepared id 99999999 is outside"), "{m}");

    // Routes, versions, methods.
    let a = post(addr, "/v1/models/other:predict", &json!({ "instances": [] }));
    assert_eq!(a.status, 404);
    assert!(a.error().contains("no model named \"other\""));
    let a = post(addr, "/v1/models/sparky/versions/1:predict", &json!({ "instances": [] }));
    assert_eq!(a.status, 404);
    assert!(a.error().contains("no version 1"));
    let a = post(addr, "/v1/models/sparky/versions/latest:predict", &json!({ "instances": [] }));
    assert_eq!(a.status, 400);
    assert!(a.error().contains("version \"latest\" is not a number"));
    assert_eq!(get(addr, "/v1/models/sparky:predict").status, 405);
    assert_eq!(post(addr, "/v1/models/sparky", &json!({})).status, 405);
    assert_eq!(get(addr, "/nowhere").status, 404);

    // Over the body limit: announced, and streamed without a length.
    let big = vec![b' '; 10 << 20];
    let a = request(addr, "POST", "/v1/models/sparky:predict", &big);
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.error().contains("--max-body"));
    let mut chunked = b"POST /v1/models/sparky:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..40 {
        chunked.extend_from_slice(format!("{:x}\r\n", 64 << 10).as_bytes());
        chunked.extend_from_slice(&vec![b' '; 64 << 10]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    use std::io::Write;
    // The server may answer and close before all is sent.
    let _ = s.write_all(&chunked);
    assert_eq!(common::read_answer(&mut s).status, 413);

    // A body that never finishes: answered 408 at the timeout.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /v1/models/sparky:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inst").unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let a = common::read_answer(&mut s);
    assert_eq!(a.status, 408, "{}", a.body);

    // The server still answers after all of that.
    let a = post(addr, "/v1/models/sparky:predict", &json!({ "instances": [tsv[0]] }));
    assert_eq!(a.status, 200, "{}", a.body);
    server.shutdown().unwrap();
}

fn start_small_body(base: &std::path::Path) -> sparky_serve::Server {
    common::start_with(base, |c| {
        c.max_body = 1 << 20;
        c.request_timeout = std::time::Duration::from_millis(500);
    })
}
