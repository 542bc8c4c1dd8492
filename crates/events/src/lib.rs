//! TensorBoard event files, written natively. Scalars are stored as 32-bit floats.
//!
//! An event file (`events.out.tfevents.<seconds>.<host>`) is a TFRecord file
//! of `tensorflow.Event` messages: first one whose `file_version` is
//! `brain.Event:2`, then one per logged step with `Summary` values. TensorBoard
//! shows every `simple_value` as a scalar chart named by its tag. Each run
//! (for example training in `JOB_DIR`, evaluation in `JOB_DIR/eval`) writes
//! its own file in its own folder.
//!
//! ```
//! use sparky_events::EventWriter;
//!
//! let dir = tempfile::tempdir()?;
//! let mut w = EventWriter::create(dir.path())?;
//! w.add_scalars(100, &[("loss", 0.5), ("global_step/sec", 1234.0)])?;
//! w.flush()?;
//! let events = sparky_events::read_scalars(w.path())?;
//! assert_eq!(events, vec![(100, "loss".to_string(), 0.5), (100, "global_step/sec".to_string(), 1234.0)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use sparky_proto::tensorflow::{Event, Summary, event, summary};
use sparky_tfrecord::RecordWriter;

/// The `file_version` TensorBoard expects in the first event.
pub const FILE_VERSION: &str = "brain.Event:2";

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's host name, as TensorBoard's writers put it in file names.
#[must_use]
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    // Keep file names tame.
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    if clean.is_empty() { "localhost".into() } else { clean }
}

/// Appends events to one event file.
pub struct EventWriter {
    records: RecordWriter<BufWriter<File>>,
    path: PathBuf,
    buf: Vec<u8>,
}

impl EventWriter {
    /// Creates `dir` if needed and starts a new event file in it.
    pub fn create(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let start = now();
        let host = hostname();
        // A unique name even when two writers start in the same second.
        let mut secs = start as u64;
        let path = loop {
            let p = dir.join(format!("events.out.tfevents.{secs}.{host}"));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&p) {
                Ok(f) => break (p, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => secs += 1,
                Err(e) => return Err(e),
            }
        };
        let (path, file) = path;
        let mut w = Self { records: RecordWriter::new(BufWriter::new(file)), path, buf: Vec::new() };
        w.write(&Event { wall_time: start, step: 0, what: Some(event::What::FileVersion(FILE_VERSION.into())) })?;
        w.flush()?;
        Ok(w)
    }

    /// The file being written.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, e: &Event) -> io::Result<()> {
        self.buf.clear();
        e.encode(&mut self.buf).expect("a Vec grows as needed");
        self.records.write_record(&self.buf)
    }

    /// Logs scalars at `step`, one event holding them all.
    pub fn add_scalars(&mut self, step: u64, values: &[(&str, f64)]) -> io::Result<()> {
        let summary = Summary {
            value: values
                .iter()
                .map(|(tag, v)| summary::Value {
                    tag: (*tag).to_string(),
                    value: Some(summary::value::Value::SimpleValue(*v as f32)),
                    ..Default::default()
                })
                .collect(),
        };
        self.write(&Event { wall_time: now(), step: step as i64, what: Some(event::What::Summary(summary)) })
    }

    /// Pushes what was logged to the file, so TensorBoard sees it now.
    pub fn flush(&mut self) -> io::Result<()> {
        self.records.flush()
    }
}

/// Reads the scalar values of an event file: (step, tag, value), in order.
pub fn read_scalars(path: &Path) -> Result<Vec<(i64, String, f64)>, sparky_tfrecord::Error> {
    let mut r = sparky_tfrecord::RecordReader::open(path)?;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while r.read_record(&mut buf)? {
        let Ok(e) = Event::decode(buf.as_slice()) else {
            continue;
        };
        if let Some(event::What::Summary(s)) = e.what {
            for v in s.value {
                if let Some(summary::value::Value::SimpleValue(x)) = v.value {
                    out.push((e.step, v.tag, f64::from(x)));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_starts_with_the_version_event() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.add_scalars(5, &[("auc", 0.75)]).unwrap();
        w.flush().unwrap();
        let name = w.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        let mut r = sparky_tfrecord::RecordReader::open(w.path()).unwrap();
        let mut buf = Vec::new();
        assert!(r.read_record(&mut buf).unwrap());
        let first = Event::decode(buf.as_slice()).unwrap();
        assert_eq!(first.what, Some(event::What::FileVersion(FILE_VERSION.into())));
        assert!(first.wall_time > 1.0e9);
        assert_eq!(read_scalars(w.path()).unwrap(), vec![(5, "auc".to_string(), 0.75)]);
        // A second writer in the same folder gets its own file.
        let w2 = EventWriter::create(dir.path()).unwrap();
        assert_ne!(w2.path(), w.path());
    }
}
