//! Input files: resolving `--in`, mapping files into memory, and splitting
//! them into line-aligned chunks that threads can parse independently.

use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why inputs could not be found or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Nothing matched.
    #[error("no input files match {0}")]
    NoMatch(String),
    /// A named path does not exist.
    #[error("{}: no such file or folder", .0.display())]
    NotFound(PathBuf),
    /// An entry of an input folder that is not a file.
    #[error("{}: not a file (inputs are files; name the files you mean, or a glob such as 'DIR/*.tsv')", .0.display())]
    NotAFile(PathBuf),
    /// Reading failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Mapping a file failed, or it is not a regular file.
    #[error(transparent)]
    Map(#[from] sparky_io::Error),
    /// A GZIP input is damaged.
    #[error("{}: at compressed byte {offset}: {source}{}", path.display(), if *trailing { " (bytes after the last complete gzip member: a damaged or concatenated file?)" } else { "" })]
    Gzip {
        /// The file.
        path: PathBuf,
        /// Compressed bytes consumed when the fault was found.
        offset: u64,
        /// True when the fault follows at least one complete member.
        trailing: bool,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing the decompressed copy of a stream input failed.
    #[error("{input}: writing its decompressed copy into {}: {source}", dir.display())]
    Spool {
        /// The input, as named.
        input: String,
        /// The folder of the copy (the output folder).
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InputError + '_ {
    move |source| InputError::Io { path: path.to_path_buf(), source }
}

/// Where the lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file; `.gz` files are decompressed.
    File(PathBuf),
}

impl Source {
    /// How the source is named in messages.
    #[must_use]
    pub fn display_name(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".to_string(),
            Source::File(p) => p.display().to_string(),
        }
    }

    /// True when the source must be copied to a plain file before it can be
    /// mapped (standard input, `.gz`).
    #[must_use]
    pub fn needs_spool(&self) -> bool {
        match self {
            Source::Stdin => true,
            Source::File(p) => is_gzip(p),
        }
    }
}

fn is_gzip(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "gz")
}

/// Matches `name` against a pattern with `*` (any run) and `?` (one byte).
#[must_use]
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// Data files of a folder: entries whose names start with neither `.` nor
/// `_` (Hadoop's convention for markers such as `_SUCCESS` and folders such
/// as `_temporary`), sorted. Any other entry must be a regular file: a
/// folder there is refused rather than silently passed over.
///
/// # Errors
/// The folder cannot be read, or holds a data entry that is not a file.
pub fn folder_files(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let path = entry.path();
        if !path.is_file() {
            return Err(InputError::NotAFile(path));
        }
        out.push(path);
    }
    out.sort();
    Ok(out)
}

/// Resolves an input argument: `-` (standard input), a file, a folder (its
/// data files), or a glob whose last component holds `*` or `?`.
pub fn resolve(spec: &Path) -> Result<Vec<Source>, InputError> {
    if spec.as_os_str() == "-" {
        return Ok(vec![Source::Stdin]);
    }
    let text = spec.to_string_lossy();
    let name = spec.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.contains(['*', '?']) && !spec.exists() {
        let dir = match spec.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(InputError::NotFound(dir.to_path_buf()));
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let n = entry.file_name();
            let n = n.to_string_lossy();
            if n.starts_with('.') || n.starts_with('_') || !glob_match(name.as_bytes(), n.as_bytes()) {
                continue;
            }
            let path = entry.path();
            if !path.is_file() {
                return Err(InputError::NotAFile(path));
            }
            files.push(Source::File(path));
        }
        files.sort_by_key(Source::display_name);
        if files.is_empty() {
            return Err(InputError::NoMatch(text.into_owned()));
        }
        return Ok(files);
    }
    if spec.is_dir() {
        let files = folder_files(spec)?;
        if files.is_empty() {
            return Err(InputError::NoMatch(format!("{text} (an empty folder)")));
        }
        return Ok(files.into_iter().map(Source::File).collect());
    }
    if spec.is_file() {
        return Ok(vec![Source::File(spec.to_path_buf())]);
    }
    Err(InputError::NotFound(spec.to_path_buf()))
}

/// A buffered reader that counts the bytes its reader consumed.
struct Counted<R> {
    inner: R,
    consumed: Arc<AtomicU64>,
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A source's plain bytes, and for `.gz` the count of compressed bytes
/// consumed so far.
type Plain = (Box<dyn BufRead + Send>, Option<Arc<AtomicU64>>);

/// A reader of a source's plain bytes (decompressing `.gz`), and for `.gz`
/// the count of compressed bytes consumed (for error positions).
fn open_counted(source: &Source) -> Result<Plain, InputError> {
    match source {
        Source::Stdin => Ok((Box::new(io::BufReader::with_capacity(1 << 20, io::stdin())), None)),
        Source::File(p) => {
            let f = File::open(p).map_err(io_err(p))?;
            if is_gzip(p) {
                let consumed = Arc::new(AtomicU64::new(0));
                let counted = Counted { inner: io::BufReader::with_capacity(1 << 20, f), consumed: consumed.clone() };
                let gz = flate2::bufread::MultiGzDecoder::new(counted);
                Ok((Box::new(io::BufReader::with_capacity(1 << 20, gz)), Some(consumed)))
            } else {
                Ok((Box::new(io::BufReader::with_capacity(1 << 20, f)), None))
            }
        }
    }
}

/// A reader of a source's plain bytes (decompressing `.gz`).
///
/// # Errors
/// The file cannot be opened.
pub fn open_plain(source: &Source) -> Result<Box<dyn BufRead + Send>, InputError> {
    open_counted(source).map(|(r, _)| r)
}

/// A plain copy of a stream source, deleted when dropped.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
}

impl Spool {
    /// Copies `source` into a hidden file in `dir`.
    ///
    /// # Errors
    /// The source cannot be read (a damaged `.gz` names the compressed byte
    /// where decoding failed), or the copy cannot be written.
    pub fn create(source: &Source, dir: &Path, index: usize) -> Result<Self, InputError> {
        let path = dir.join(format!(".spool-{}-{index}.tsv.tmp", std::process::id()));
        let spool = Spool { path };
        let (mut reader, consumed) = open_counted(source)?;
        let name = source.display_name();
        let spool_err = |source| InputError::Spool { input: name.clone(), dir: dir.to_path_buf(), source };
        let file = File::create(&spool.path).map_err(spool_err)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, file);
        let mut buf = vec![0u8; 1 << 16];
        let mut copied = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(match &consumed {
                        Some(c) => InputError::Gzip {
                            path: PathBuf::from(&name),
                            offset: c.load(Ordering::Relaxed),
                            trailing: copied > 0,
                            source,
                        },
                        None => InputError::Io { path: PathBuf::from(&name), source },
                    });
                }
            };
            w.write_all(&buf[..n]).map_err(spool_err)?;
            copied += n as u64;
        }
        w.flush().map_err(spool_err)?;
        Ok(spool)
    }

    /// The copy's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An input mapped into memory.
pub struct Mapped {
    /// How to name it in messages.
    pub name: String,
    file: sparky_io::MappedFile,
    _spool: Option<Spool>,
}

impl Mapped {
    /// Maps a plain file.
    ///
    /// # Errors
    /// The file cannot be opened or mapped, or is not a regular file.
    pub fn open(path: &Path, name: String, spool: Option<Spool>) -> Result<Self, InputError> {
        let file = sparky_io::MappedFile::open(path)?;
        Ok(Self { name, file, _spool: spool })
    }

    /// The bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.file.bytes()
    }

    /// Drops bytes `range` from the process's resident set once they have
    /// been read (see [`sparky_io::MappedFile::release`]).
    pub fn release(&self, range: std::ops::Range<usize>) {
        self.file.release(range);
    }
}

/// Maps every source, copying stream sources (standard input, `.gz`) into
/// hidden spool files in `spool_dir` first.
pub fn map_all(sources: &[Source], spool_dir: &Path) -> Result<Vec<Mapped>, InputError> {
    let mut out = Vec::with_capacity(sources.len());
    for (i, s) in sources.iter().enumerate() {
        let name = s.display_name();
        match s {
            Source::File(p) if !s.needs_spool() => out.push(Mapped::open(p, name, None)?),
            _ => {
                let spool = Spool::create(s, spool_dir, i)?;
                let p = spool.path().to_path_buf();
                out.push(Mapped::open(&p, name, Some(spool))?);
            }
        }
    }
    Ok(out)
}

/// A run of whole lines of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Index of the input.
    pub input: usize,
    /// Byte range in the input.
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
    /// 1-based line number of the first line within its input.
    pub first_line: u64,
    /// 0-based index of the first line over all inputs.
    pub global_line: u64,
    /// Lines in the chunk (a last line without `\n` counts).
    pub lines: u64,
}

/// Number of lines in `bytes`: its `\n`s, plus one for an unterminated last line.
#[must_use]
pub fn count_lines(bytes: &[u8]) -> u64 {
    let n = memchr::memchr_iter(b'\n', bytes).count() as u64;
    n + u64::from(bytes.last().is_some_and(|&b| b != b'\n'))
}

/// Splits every input into chunks of about `target` bytes that end at line
/// ends, and numbers their lines. Counting runs in parallel.
#[must_use]
pub fn chunks(inputs: &[Mapped], target: usize) -> Vec<Chunk> {
    use rayon::prelude::*;
    let target = target.max(1);
    let mut ranges = Vec::new();
    for (i, m) in inputs.iter().enumerate() {
        let b = m.bytes();
        let mut start = 0;
        while start < b.len() {
            let mut end = (start + target).min(b.len());
            if end < b.len() {
                end = match memchr::memchr(b'\n', &b[end - 1..]) {
                    Some(k) => end + k,
                    None => b.len(),
                };
            }
            ranges.push((i, start, end));
            start = end;
        }
    }
    let lines: Vec<u64> = ranges
        .par_iter()
        .map(|&(i, s, e)| {
            let n = count_lines(&inputs[i].bytes()[s..e]);
            // Keep resident memory independent of the input's size: the
            // pages stay in the page cache for the passes that follow.
            inputs[i].release(s..e);
            n
        })
        .collect();
    let mut out = Vec::with_capacity(ranges.len());
    let mut global = 0u64;
    let mut line_in_file = 1u64;
    let mut last_input = usize::MAX;
    for (&(input, start, end), &n) in ranges.iter().zip(&lines) {
        if input != last_input {
            line_in_file = 1;
            last_input = input;
        }
        out.push(Chunk { input, start, end, first_line: line_in_file, global_line: global, lines: n });
        line_in_file += n;
        global += n;
    }
    out
}

/// Reads a whole source into memory as plain bytes (used for small inputs in
/// tests and by callers that stream).
pub fn read_all(source: &Source) -> Result<Vec<u8>, InputError> {
    let mut out = Vec::new();
    open_plain(source)?
        .read_to_end(&mut out)
        .map_err(|source_err| InputError::Io { path: PathBuf::from(source.display_name()), source: source_err })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(glob_match(b"part-*", b"part-r-00000.tfrecord"));
        assert!(glob_match(b"*.tsv", b"a.tsv"));
        assert!(!glob_match(b"*.tsv", b"a.tsv.gz"));
        assert!(glob_match(b"day_?.gz", b"day_1.gz"));
        assert!(!glob_match(b"day_?.gz", b"day_10.gz"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYY"));
    }

    #[test]
    fn resolve_files_folders_globs() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.tsv", "a.tsv", "_SUCCESS", ".hidden", "c.txt"] {
            std::fs::write(dir.path().join(n), "x\n").unwrap();
        }
        let names = |v: Vec<Source>| -> Vec<String> {
            v.into_iter()
                .map(|s| match s {
                    Source::File(p) => p.file_name().unwrap().to_string_lossy().into_owned(),
                    Source::Stdin => "-".into(),
                })
                .collect()
        };
        assert_eq!(names(resolve(dir.path()).unwrap()), ["a.tsv", "b.tsv", "c.txt"]);
        assert_eq!(names(resolve(&dir.path().join("*.tsv")).unwrap()), ["a.tsv", "b.tsv"]);
        assert_eq!(names(resolve(&dir.path().join("c.txt")).unwrap()), ["c.txt"]);
        assert_eq!(names(resolve(Path::new("-")).unwrap()), ["-"]);
        assert!(matches!(resolve(&dir.path().join("*.gz")), Err(InputError::NoMatch(_))));
        assert!(matches!(resolve(&dir.path().join("nope")), Err(InputError::NotFound(_))));
    }

    #[test]
    fn chunks_cover_every_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b.gz");
        std::fs::write(&a, "l1\nl2 long line\nl3\nl4").unwrap();
        let mut gz = flate2::write::GzEncoder::new(File::create(&b).unwrap(), flate2::Compression::fast());
        gz.write_all(b"m1\nm2\n").unwrap();
        gz.finish().unwrap();
        let inputs = map_all(&[Source::File(a), Source::File(b)], dir.path()).unwrap();
        assert_eq!(inputs[1].bytes(), b"m1\nm2\n");
        for target in [1, 3, 5, 100] {
            let c = chunks(&inputs, target);
            let total: u64 = c.iter().map(|c| c.lines).sum();
            assert_eq!(total, 6, "target {target}");
            // Chunks tile each input and end at line ends.
            for w in c.windows(2) {
                if w[0].input == w[1].input {
                    assert_eq!(w[0].end, w[1].start);
                    assert_eq!(w[0].first_line + w[0].lines, w[1].first_line);
                    assert_eq!(inputs[w[0].input].bytes()[w[0].end - 1], b'\n');
                }
                assert_eq!(w[0].global_line + w[0].lines, w[1].global_line);
            }
        }
        drop(inputs);
        // The spool file is gone.
        assert!(
            std::fs::read_dir(dir.path())
                .unwrap()
                .all(|e| { !e.unwrap().file_name().to_string_lossy().starts_with(".spool") })
        );
    }

    #[test]
    fn gzip_with_trailing_junk_names_the_compressed_offset() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("x.tsv.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(b"a\nb\n").unwrap();
        enc.finish().unwrap();
        let good = std::fs::metadata(&gz).unwrap().len();
        let mut bytes = std::fs::read(&gz).unwrap();
        bytes.extend_from_slice(b"junk after the member");
        std::fs::write(&gz, &bytes).unwrap();
        let e = map_all(&[Source::File(gz.clone())], dir.path()).err().unwrap();
        match &e {
            InputError::Gzip { offset, trailing: true, .. } => assert!(*offset >= good, "{e}"),
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("at compressed byte") && e.to_string().contains("after the last"), "{e}");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().all(|f| !f
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".spool"))
        );
    }
}
