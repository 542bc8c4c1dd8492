//! Properties of the request parser: a raw row gives the same prepared row
//! whether it comes as a TSV line or as an object of raw fields, and no body,
//! however malformed, panics or answers anything but a 400.

mod common;

use std::sync::OnceLock;

use proptest::prelude::*;
use sparky_serve::{ApiError, Loaded};

fn loaded() -> &'static Loaded {
    static L: OnceLock<(common::Fixture, Loaded)> = OnceLock::new();
    &L.get_or_init(|| {
        let f = common::fixture();
        let l = sparky_serve::models::load(&f.export(), 1).unwrap();
        (f, l)
    })
    .1
}

/// One raw field: missing, or a value (integers as text, categoricals as 8
/// hex digits, some of them seen in training, or other text).
fn int_field() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![Just(None), (-3i64..100_000).prop_map(Some)]
}

fn cat_field() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        (0u32..64).prop_map(|v| Some(format!("{:08x}", v.wrapping_mul(2_654_435_761)))),
        any::<u32>().prop_map(|v| Some(format!("{v:08x}"))),
        "[a-zA-Z0-9 é]{1,12}".prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn tsv_lines_and_objects_of_the_same_row_agree(
        ints in prop::collection::vec(int_field(), 13),
        cats in prop::collection::vec(cat_field(), 26),
        nulls in any::<bool>(),
    ) {
        let l = loaded();
        let mut fields: Vec<String> = ints.iter().map(|v| v.map(|x| x.to_string()).unwrap_or_default()).collect();
        fields.extend(cats.iter().map(|c| c.clone().unwrap_or_default()));
        let line = fields.join("\t");
        let mut obj = serde_json::Map::new();
        for (i, v) in ints.iter().enumerate() {
            match v {
                Some(x) => { obj.insert(format!("integer-feature-{}", i + 1), serde_json::json!(x)); }
                None if nulls => { obj.insert(format!("integer-feature-{}", i + 1), serde_json::Value::Null); }
                None => {}
            }
        }
        for (i, c) in cats.iter().enumerate() {
            match c {
                Some(x) => { obj.insert(format!("categorical-feature-{}", i + 1), serde_json::json!(x)); }
                None if nulls => { obj.insert(format!("categorical-feature-{}", i + 1), serde_json::Value::Null); }
                None => {}
            }
        }
        if obj.is_empty() {
            obj.insert("integer-feature-1".into(), serde_json::Value::Null);
        }
        let body = serde_json::json!({ "instances": [line, obj] }).to_string();
        let parsed = sparky_serve::json::parse_predict(body.as_bytes(), l).unwrap();
        prop_assert_eq!(parsed.rows.len(), 2);
        prop_assert_eq!(&parsed.rows[0], &parsed.rows[1]);
    }

    #[test]
    fn no_body_panics_or_answers_other_than_400(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let l = loaded();
        match sparky_serve::json::parse_predict(&body, l) {
            Ok(_) | Err(ApiError::BadRequest(_)) => {}
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
        match sparky_serve::json::parse_classify(&body, l) {
            Ok(_) | Err(ApiError::BadRequest(_)) => {}
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }

    #[test]
    fn json_shaped_garbage_is_a_400(
        body in r#"\{"(instances|inputs|examples|context|signature_name)": ?(\[|\{)("b64"|"integer-feature-[0-9]{1,2}"|"categorical-feature-[0-9]{1,2}"|[0-9.e+-]{1,8}|"[^"]{0,10}"|null|true|\{|\[|\]|\}|,|:| ){0,24}"#
    ) {
        let l = loaded();
        for r in [sparky_serve::json::parse_predict(body.as_bytes(), l).map(|_| ()), sparky_serve::json::parse_classify(body.as_bytes(), l).map(|_| ())] {
            match r {
                Ok(()) | Err(ApiError::BadRequest(_)) => {}
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }
    }
}
