//! The criteo-serve binary: it prints where it listens, answers, drains and
//! exits 0 on SIGTERM, and refuses a port in use or a bad command line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, Progress};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_prepared::schema::Mode;

const BIN: &str = env!("CARGO_BIN_EXE_criteo-serve");

/// A job folder with an export, trained on a few generated rows.
fn job(dir: &Path) -> PathBuf {
    for (name, first, rows, mode) in [("train", 0, 3000, Mode::Train), ("eval", 3000, 500, Mode::Evaluate)] {
        let g = Generator::new(GeneratorConfig { seed: 3, labelled: true });
        let mut out = Vec::new();
        sparky_datagen::generate(&g, first, rows, 1, &mut out).unwrap();
        let tsv = dir.join(format!("{name}.tsv"));
        std::fs::write(&tsv, out).unwrap();
        let mut c = PrepareConfig::new(vec![Source::File(tsv)], dir.join(name), mode, dir.join("model"));
        c.sync = false;
        prepare::run(&c, &Progress::default()).unwrap();
    }
    let mut c = sparky_trainer::TrainConfig::new(dir.join("job"), dir.join("train"), dir.join("eval"));
    c.epochs = Some(1);
    c.threads = 1;
    sparky_trainer::run(&c, &Progress::default(), &|_| {}).unwrap();
    dir.join("job")
}

/// Starts the binary and reads stderr until it says where REST listens (the
/// caller waits for the child).
#[allow(clippy::zombie_processes)]
fn spawn(args: &[&str]) -> (Child, SocketAddr, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(BIN).args(args).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "criteo-serve exited before listening");
        if let Some(addr) = line.trim().strip_prefix("criteo-serve: REST on http://") {
            return (child, addr.parse().unwrap(), err);
        }
    }
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    (status, text.split_once("\r\n\r\n").unwrap().1.to_string())
}

#[test]
fn serves_then_drains_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path());
    let base = job.join("export/Servo");
    let (mut child, addr, mut err) = spawn(&[
        "--model-base-path",
        base.to_str().unwrap(),
        "--model-name",
        "ctr",
        "--port",
        "0",
        "--grpc-port",
        "0",
        "--poll-seconds",
        "0.2",
    ]);
    let (status, body) = get(addr, "/v1/models/ctr");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("AVAILABLE"), "{body}");
    assert_eq!(get(addr, "/v1/models/sparky").0, 404);
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "exit {status:?}: {rest}");
    assert!(rest.contains("stopping") && rest.contains("stopped after scoring 0 rows"), "{rest}");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(BIN)
        .args(["--model-base-path", dir.path().to_str().unwrap(), "--port", &port, "--no-grpc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port} for REST")), "{err}");
}

#[test]
fn bad_command_lines_exit_2_and_help_teaches() {
    let out = Command::new(BIN).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--model-base-path"));
    let out = Command::new(BIN).args(["--model", "nopath"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected NAME=PATH"));
    let out = Command::new(BIN).args(["--model-base-path", ".", "--max-body", "lots"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [":predict", ":classify", "/metadata", "PredictionService", "--max-body", "SIGTERM"] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn a_sigterm_sent_as_soon_as_the_address_is_printed_drains() {
    let dir = tempfile::tempdir().unwrap();
    // No export: the server starts all the same (answering 503) and must still
    // treat the signal as a stop, not die of it.
    let (mut child, _, mut err) =
        spawn(&["--model-base-path", dir.path().to_str().unwrap(), "--port", "0", "--no-grpc"]);
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "exit {status:?}: {rest}");
    assert!(rest.contains("stopped after scoring 0 rows"), "{rest}");
}
