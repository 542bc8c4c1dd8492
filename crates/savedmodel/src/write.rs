//! Encodes a `SavedModel` to a file without a second in-memory copy, and
//! commits the file atomically.
//!
//! `Message::encode_to_vec` would hold the whole encoding (weights and all)
//! beside the message. Instead the outer frames (`SavedModel.meta_graphs`,
//! `MetaGraphDef.graph_def`, `GraphDef.node`) are written here, each as a
//! field key and a length, and every node is encoded by prost on its own into
//! a reused buffer. The result is byte for byte what prost would write for the
//! whole message (fields in declaration order, which is field-number order in
//! these messages); a test checks it.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use prost::Message;
use sparky_io::AtomicFile;
use sparky_proto::tensorflow::{GraphDef, MetaGraphDef, SavedModel};

use crate::{MAX_PROTO_BYTES, SAVED_MODEL_FILE, SavedModelError};

/// Wire type of length-delimited fields.
const LEN: u64 = 2;

fn put_varint(out: &mut impl Write, mut v: u64) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf[n] = byte;
            n += 1;
            break;
        }
        buf[n] = byte | 0x80;
        n += 1;
    }
    out.write_all(&buf[..n])
}

/// The key and length of a length-delimited field.
fn put_frame(out: &mut impl Write, field: u32, len: usize) -> io::Result<()> {
    put_varint(out, (u64::from(field) << 3) | LEN)?;
    put_varint(out, len as u64)
}

fn put_message(out: &mut impl Write, m: &impl Message, scratch: &mut Vec<u8>) -> io::Result<()> {
    scratch.clear();
    m.encode(scratch).unwrap_or_else(|_| unreachable!("a Vec grows as needed"));
    out.write_all(scratch)
}

fn put_graph(out: &mut impl Write, graph: &GraphDef, scratch: &mut Vec<u8>) -> io::Result<()> {
    // Field 1: each node, framed.
    for node in &graph.node {
        put_frame(out, 1, node.encoded_len())?;
        put_message(out, node, scratch)?;
    }
    // Then the remaining fields, which prost writes after the nodes.
    let rest = GraphDef { node: Vec::new(), versions: graph.versions.clone() };
    put_message(out, &rest, scratch)
}

fn put_meta_graph(out: &mut impl Write, mg: &MetaGraphDef, scratch: &mut Vec<u8>) -> io::Result<()> {
    // Field 1 (meta_info_def), field 2 (graph_def) framed by hand, field 5
    // (signature_def): prost's order.
    let head =
        MetaGraphDef { meta_info_def: mg.meta_info_def.clone(), graph_def: None, signature_def: Default::default() };
    put_message(out, &head, scratch)?;
    if let Some(graph) = &mg.graph_def {
        put_frame(out, 2, graph.encoded_len())?;
        put_graph(out, graph, scratch)?;
    }
    let tail = MetaGraphDef { meta_info_def: None, graph_def: None, signature_def: mg.signature_def.clone() };
    put_message(out, &tail, scratch)
}

/// Writes `sm` as prost would encode it, streaming node by node.
pub(crate) fn encode_streaming(out: &mut impl Write, sm: &SavedModel) -> io::Result<()> {
    let mut scratch = Vec::new();
    let head = SavedModel { saved_model_schema_version: sm.saved_model_schema_version, meta_graphs: Vec::new() };
    put_message(out, &head, &mut scratch)?;
    for mg in &sm.meta_graphs {
        put_frame(out, 2, mg.encoded_len())?;
        put_meta_graph(out, mg, &mut scratch)?;
    }
    Ok(())
}

/// Writes `dir/saved_model.pb` atomically (see [`sparky_io::AtomicFile`]).
pub(crate) fn write_file(dir: &Path, sm: &SavedModel) -> Result<(), SavedModelError> {
    let bytes = sm.encoded_len() as u64;
    if bytes > MAX_PROTO_BYTES {
        return Err(SavedModelError::TooLarge { bytes });
    }
    let path = dir.join(SAVED_MODEL_FILE);
    let io_err = |source| SavedModelError::Io { path: path.clone(), source };
    // An I/O error names the file, as every other error of this crate does.
    let plain = |e: sparky_io::Error| match e {
        sparky_io::Error::Io { path, source } => SavedModelError::Io { path, source },
        other => SavedModelError::Commit(other),
    };
    let file = AtomicFile::create(&path).map_err(plain)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    encode_streaming(&mut w, sm).map_err(io_err)?;
    let file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.commit().map_err(plain)?;
    Ok(())
}
