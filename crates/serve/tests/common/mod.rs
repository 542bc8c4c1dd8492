//! Shared by the server's tests: a trained export on generated rows, the
//! batch predictions to compare with, and a plain HTTP/1.1 client over a
//! TCP socket (so that tests can also send what no well-behaved client sends).
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, Progress};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_prepared::schema::Mode;
use sparky_serve::{ServeConfig, Server};

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The export folder the training wrote.
    pub fn export(&self) -> PathBuf {
        sparky_export::newest_export(&self.path("job")).expect("an export")
    }

    /// The export base folder (`job/export/Servo`).
    pub fn base(&self) -> PathBuf {
        self.path("job").join(sparky_export::EXPORT_BASE)
    }
}

fn generate(path: &Path, first: u64, rows: u64, labelled: bool) {
    let g = Generator::new(GeneratorConfig { seed: 5, labelled });
    let mut out = Vec::new();
    sparky_datagen::generate(&g, first, rows, 2, &mut out).unwrap();
    std::fs::write(path, out).unwrap();
}

fn prep(f: &Fixture, name: &str, mode: Mode) {
    let mut c =
        PrepareConfig::new(vec![Source::File(f.path(&format!("{name}.tsv")))], f.path(name), mode, f.path("model"));
    c.num_partitions = 2;
    c.sync = false;
    prepare::run(&c, &Progress::default()).unwrap();
}

/// Trains a small model on generated rows; keeps labelled (`test.tsv`) and
/// unlabelled (`blind.tsv`) raw rows, and the latter prepared in predict mode.
pub fn fixture() -> Fixture {
    let f = Fixture { dir: tempfile::tempdir().unwrap() };
    generate(&f.path("train.tsv"), 0, 6000, true);
    generate(&f.path("eval.tsv"), 6000, 1000, true);
    generate(&f.path("test.tsv"), 7000, 300, true);
    generate(&f.path("blind.tsv"), 7300, 300, false);
    prep(&f, "train", Mode::Train);
    prep(&f, "eval", Mode::Evaluate);
    prep(&f, "blind", Mode::Predict);
    let mut c = sparky_trainer::TrainConfig::new(f.path("job"), f.path("train"), f.path("eval"));
    c.epochs = Some(1);
    c.threads = 1;
    sparky_trainer::run(&c, &Progress::default(), &|_| {}).unwrap();
    f
}

/// A server of the fixture's model as "sparky", REST and gRPC on free ports
/// of 127.0.0.1, no polling (tests poll when they mean to).
pub fn start(base: &Path) -> Server {
    start_with(base, |_| {})
}

pub fn start_with(base: &Path, tweak: impl FnOnce(&mut ServeConfig)) -> Server {
    let mut c = ServeConfig::new(vec![("sparky".into(), base.to_path_buf())]);
    c.rest_addr = "127.0.0.1:0".parse().unwrap();
    c.grpc_addr = Some("127.0.0.1:0".parse().unwrap());
    c.poll = None;
    c.threads = 2;
    tweak(&mut c);
    Server::start(c, Arc::new(|_: &str| {})).unwrap()
}

/// The lines of a text file.
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
}

/// The serialized Examples of a prepared folder, in part order.
pub fn records(dir: &Path) -> Vec<Vec<u8>> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("part-"))
        .collect();
    parts.sort();
    let mut out = Vec::new();
    for p in parts {
        let mut r = sparky_tfrecord::RecordReader::open(&p).unwrap();
        let mut buf = Vec::new();
        while r.read_record(&mut buf).unwrap() {
            out.push(buf.clone());
        }
    }
    out
}

/// criteo-predict's output lines for a prepared folder or raw TSV files, in
/// input order (the batch run's parts concatenated).
pub fn batch_lines(f: &Fixture, input: &Path, tsv: bool) -> Vec<String> {
    let out = f.path(&format!("batch-{}", input.file_name().unwrap().to_string_lossy()));
    let export = sparky_export::ExportDir::load(&f.export()).unwrap();
    let cfg = sparky_predict::BatchConfig {
        output: out.clone(),
        output_format: sparky_predict::OutputFormat::Json,
        strict: true,
        overwrite: true,
        threads: 1,
    };
    if tsv {
        let s = sparky_predict::RawScorer::new(export).unwrap();
        sparky_predict::run_tsv(&s, &[input.to_path_buf()], &cfg, &Progress::default()).unwrap();
    } else {
        let s = sparky_predict::Scorer::new(export);
        let dir = match sparky_predict::Input::resolve(input, None, false).unwrap() {
            sparky_predict::Input::Prepared(d) => d,
            sparky_predict::Input::Tsv(_) => unreachable!("a prepared folder"),
        };
        sparky_predict::run_prepared(&s, &dir, &cfg, &Progress::default()).unwrap();
    }
    let mut parts: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("prediction.results-"))
        .collect();
    parts.sort();
    parts.iter().flat_map(|p| lines(p)).collect()
}

/// An HTTP answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error in {}", self.body)).to_string()
    }
}

/// Sends raw bytes and reads the answer until the server closes.
pub fn raw(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // A server may answer (413) and close before reading all of a large body.
    let _ = s.write_all(request);
    read_answer(&mut s)
}

pub fn read_answer(s: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    Answer { status, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Answer {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    raw(addr, &req)
}

pub fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, b"")
}

pub fn post(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Answer {
    request(addr, "POST", path, body.to_string().as_bytes())
}
