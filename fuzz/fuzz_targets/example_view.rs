//! Arbitrary bytes as a `tf.train.Example`: sparky's borrowed reader against
//! prost.
//!
//! Asserts that `ExampleView::to_proto` and `Example::decode` agree: both
//! `Ok` with the same message (compared by re-encoding, since floats may be
//! NaN), or both `Err`; sparky may also answer `Unsupported` (a map entry
//! with its value given twice, which no writer produces). Also that every
//! feature's announced value count matches the values it yields, and that
//! iterating the features never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use sparky_tfrecord::example::{ExampleError, ExampleView, FeatureRef};
use sparky_tfrecord::proto::Example;

fuzz_target!(|data: &[u8]| {
    let ours = ExampleView::new(data).to_proto();
    let theirs = Example::decode(data);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a.encode_to_vec(), b.encode_to_vec(), "ours {a:?}\nprost {b:?}"),
        (Err(ExampleError::Unsupported { .. }), _) | (Err(_), Err(_)) => {}
        _ => panic!("ours {ours:?}\nprost {theirs:?}"),
    }
    if let Err(e) = &ours {
        let _ = e.to_string();
    }
    for entry in ExampleView::new(data).features() {
        let Ok((_, f)) = entry else { break };
        match f {
            FeatureRef::Empty => {}
            FeatureRef::Int64(l) => {
                let v = l.int64s();
                assert_eq!(v.len(), l.len());
                let mut n = 0;
                l.for_each_int64(|x| {
                    assert_eq!(x, v[n]);
                    n += 1;
                });
                assert_eq!(n, v.len());
                assert!(l.floats().is_empty() && l.bytes().is_empty());
            }
            FeatureRef::Float(l) => {
                assert_eq!(l.floats().len(), l.len());
                assert!(l.int64s().is_empty() && l.bytes().is_empty());
            }
            FeatureRef::Bytes(l) => {
                assert_eq!(l.bytes().len(), l.len());
                assert!(l.int64s().is_empty() && l.floats().is_empty());
            }
        }
    }
});
