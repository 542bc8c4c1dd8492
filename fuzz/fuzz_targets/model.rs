//! Arbitrary bytes as sparky model files: the exported `LinearModel` and
//! training checkpoints, each an `Envelope`.
//!
//! Input: one mode byte, then
//! - mode 0: an envelope, read as a model (`envelope::decode` with
//!   `MODEL_TYPE`, then `LinearModel::from_proto`);
//! - mode 1: an envelope, read as a checkpoint (`CHECKPOINT_TYPE`, then
//!   `SharedModel::from_checkpoint`);
//! - modes 2 and 3: as 0 and 1, but the bytes are the payload and the
//!   harness frames them in a valid envelope, so that the payload decoders
//!   and the checks of the layout are reached.
//!
//! Asserts that loading never panics nor allocates far more than the input
//! (libFuzzer's `-malloc_limit_mb` catches that), and that what loads is
//! coherent: one weight per layout slot, and the model (or the checkpoint)
//! written back out loads again to the same thing.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use sparky_export::{CHECKPOINT_TYPE, MODEL_TYPE, envelope};
use sparky_linear::{LinearModel, SharedModel};
use sparky_proto::sparky::model::v1 as pb;

fn check_model(m: &LinearModel) {
    assert_eq!(m.weights.len(), m.layout.num_weights());
    assert!(m.weights.iter().all(|w| w.is_finite()));
    let back = LinearModel::from_proto(m.to_proto()).expect("a loaded model reloads");
    assert_eq!(&back, m);
    // Every feature's range lies inside the weights, and they tile them.
    let mut at = 1;
    for i in 0..sparky_linear::layout::NUM_INT {
        let r = m.layout.int_range(i);
        assert_eq!(r.start, at);
        at = r.end;
    }
    for c in 0..sparky_linear::layout::NUM_CAT {
        let r = m.layout.cat_range(c);
        assert_eq!(r.start, at);
        at = r.end;
    }
    assert_eq!(at, m.weights.len());
}

fn check_checkpoint(ck: &pb::Checkpoint) {
    let Ok(shared) = SharedModel::from_checkpoint(ck) else { return };
    let model = shared.snapshot();
    check_model(&model);
    assert_eq!(shared.global_step(), ck.global_step);
    let again = shared.checkpoint(ck.epoch, ck.blocks_in_epoch, ck.examples_seen, ck.seed);
    let reloaded = SharedModel::from_checkpoint(&again).expect("a checkpoint written back reloads");
    assert_eq!(reloaded.snapshot(), model);
    assert_eq!(
        again.encode_to_vec(),
        reloaded.checkpoint(ck.epoch, ck.blocks_in_epoch, ck.examples_seen, ck.seed).encode_to_vec()
    );
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let path = Path::new("model.pb");
    let framed;
    let (bytes, checkpoint) = match mode % 4 {
        0 => (rest, false),
        1 => (rest, true),
        m => {
            // A valid envelope around the fuzzed payload.
            let env = pb::Envelope {
                magic: envelope::MAGIC.into(),
                format_version: envelope::VERSION,
                payload_type: if m == 3 { CHECKPOINT_TYPE } else { MODEL_TYPE }.into(),
                payload_crc32c: crc32c::crc32c(rest),
                payload: rest.to_vec(),
            };
            framed = env.encode_to_vec();
            (framed.as_slice(), m == 3)
        }
    };
    if checkpoint {
        if let Ok(ck) = envelope::decode::<pb::Checkpoint>(path, bytes, CHECKPOINT_TYPE) {
            check_checkpoint(&ck);
        }
    } else {
        match envelope::decode::<pb::LinearModel>(path, bytes, MODEL_TYPE) {
            Ok(p) => {
                if let Ok(m) = LinearModel::from_proto(p) {
                    check_model(&m);
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
