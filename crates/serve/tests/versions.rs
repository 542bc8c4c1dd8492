//! Versions: 503 until an export appears, the newest complete export served,
//! a damaged one skipped while the old keeps serving, a swap under load
//! with no failed request, and a graceful stop that lets requests finish.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{fixture, get, lines, post};
use serde_json::json;
use sparky_serve::PollEvent;

/// Copies an export folder to `base/<version>`, as an exporter would: under a
/// hidden name first, then renamed.
fn publish(export: &Path, base: &Path, version: u64) {
    let tmp = base.join(format!(".tmp-{version}"));
    copy_dir(export, &tmp);
    std::fs::rename(&tmp, base.join(version.to_string())).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn status_version(addr: std::net::SocketAddr) -> String {
    get(addr, "/v1/models/sparky").json()["model_version_status"][0]["version"].as_str().unwrap().to_string()
}

#[test]
fn versions_appear_swap_and_damaged_ones_are_skipped() {
    let f = fixture();
    let base = f.path("served");
    std::fs::create_dir_all(&base).unwrap();
    let server = common::start(&base);
    let addr = server.rest_addr();
    let tsv = lines(&f.path("test.tsv"));
    let body = json!({ "instances": tsv[..8] });

    // Nothing to serve yet: 503 everywhere a version is needed.
    let a = post(addr, "/v1/models/sparky:predict", &body);
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(a.error().contains("no version loaded yet"), "{}", a.body);
    assert_eq!(get(addr, "/v1/models/sparky").status, 503);
    assert_eq!(get(addr, "/healthz").status, 503);

    publish(&f.export(), &base, 100);
    let events = server.poll_now();
    assert_eq!(events, vec![PollEvent::Loaded { model: "sparky".into(), version: 100, replaced: None }]);
    let first = post(addr, "/v1/models/sparky:predict", &body);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(get(addr, "/healthz").status, 200);

    // A newer version is swapped in; the old one is no longer addressable,
    // and freed once no request holds it.
    let old = Arc::downgrade(&server.models().get("sparky").unwrap().current().unwrap());
    publish(&f.export(), &base, 200);
    assert_eq!(
        server.poll_now(),
        vec![PollEvent::Loaded { model: "sparky".into(), version: 200, replaced: Some(100) }]
    );
    assert_eq!(status_version(addr), "200");
    assert!(old.upgrade().is_none(), "version 100 is still held after the swap");
    assert_eq!(post(addr, "/v1/models/sparky/versions/100:predict", &body).status, 404);
    assert_eq!(post(addr, "/v1/models/sparky/versions/200:predict", &body).body, first.body);

    // A damaged newer version is skipped, once, and the old keeps serving.
    publish(&f.export(), &base, 300);
    let model = base.join("300").join(sparky_export::MODEL_FILE);
    let mut bytes = std::fs::read(&model).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&model, bytes).unwrap();
    let events = server.poll_now();
    assert!(
        matches!(&events[..], [PollEvent::Skipped { version: 300, reason, .. }] if reason.contains(sparky_export::MODEL_FILE)),
        "{events:?}"
    );
    assert!(server.poll_now().is_empty(), "a skipped version is not retried until it changes");
    assert_eq!(status_version(addr), "200");
    assert_eq!(post(addr, "/v1/models/sparky:predict", &body).body, first.body);
    // An export folder still being written (no manifest yet) is not seen at all.
    std::fs::create_dir_all(base.join("400")).unwrap();
    assert!(server.poll_now().is_empty());
    server.shutdown().unwrap();
}

#[test]
fn a_swap_under_load_fails_no_request() {
    let f = fixture();
    let base = f.path("served");
    std::fs::create_dir_all(&base).unwrap();
    publish(&f.export(), &base, 1);
    let server = common::start(&base);
    let addr = server.rest_addr();
    let tsv = lines(&f.path("test.tsv"));
    let body = json!({ "instances": tsv[..64] });
    let expected = post(addr, "/v1/models/sparky:predict", &body).body;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, done, body, expected) = (Arc::clone(&stop), Arc::clone(&done), body.clone(), expected.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let a = post(addr, "/v1/models/sparky:predict", &body);
                    assert_eq!(a.status, 200, "{}", a.body);
                    // Every version is a copy of one export: the same scores.
                    assert_eq!(a.body, expected);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for v in 2..=6 {
        publish(&f.export(), &base, v);
        let events = server.poll_now();
        assert!(matches!(&events[..], [PollEvent::Loaded { version, .. }] if *version == v), "{events:?}");
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert!(done.load(Ordering::Relaxed) >= 5, "requests were made during the swaps");
    assert_eq!(status_version(addr), "6");
    server.shutdown().unwrap();
}

#[test]
fn shutdown_lets_a_request_in_flight_finish() {
    let f = fixture();
    let server = common::start(&f.base());
    let addr = server.rest_addr();
    let tsv = lines(&f.path("test.tsv"));
    let body = json!({ "instances": tsv[..4] }).to_string();
    // Half a request now, the rest after the stop has begun.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    use std::io::Write;
    let head = format!(
        "POST /v1/models/sparky:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body.as_bytes()[..10]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let finisher = {
        let rest = body.as_bytes()[10..].to_vec();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            s.write_all(&rest).unwrap();
            common::read_answer(&mut s)
        })
    };
    server.shutdown().unwrap();
    let a = finisher.join().unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["predictions"].as_array().unwrap().len(), 4);
    // And the port no longer accepts.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn several_models_are_served_by_name() {
    let f = fixture();
    let other = f.path("other");
    std::fs::create_dir_all(&other).unwrap();
    publish(&f.export(), &other, 7);
    let server = common::start_with(&f.base(), |c| c.models.push(("ctr".into(), other.clone())));
    let addr = server.rest_addr();
    let tsv = lines(&f.path("test.tsv"));
    let body = json!({ "instances": tsv[..3] });
    let a = post(addr, "/v1/models/sparky:predict", &body);
    let b = post(addr, "/v1/models/ctr/versions/7:predict", &body);
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
    assert_eq!(a.body, b.body, "the same export under two names scores the same");
    assert_eq!(status_version(addr), f.export().file_name().unwrap().to_string_lossy());
    let metrics = get(addr, "/metrics").body;
    assert!(metrics.contains("sparky_model_version{model=\"ctr\"} 7"), "{metrics}");
    server.shutdown().unwrap();
}
