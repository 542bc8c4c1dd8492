//! The prediction writer: Cloud ML Engine style JSON lines.
//!
//! One line per scored row, `{"id": 7, "classes": ["0", "1"], "scores": [p0, p1]}`
//! (the `id` only where the input carries one), with `p0 = 1 - p1` computed in
//! 32-bit floats, numbers formatted with `itoa`/`ryu` into a reused buffer: no
//! allocation per row.

/// The file name of output part `i` of `n`, as Cloud ML Engine's batch
/// prediction names them.
#[must_use]
pub fn part_name(i: usize, n: usize) -> String {
    format!("prediction.results-{i:05}-of-{n:05}")
}

/// The file listing the records that could not be scored.
pub const ERRORS_FILE: &str = "prediction.errors_stats-00000-of-00001";

/// The two class scores of a click probability: `[1 - p, p]`.
#[inline]
#[must_use]
pub fn class_scores(p1: f32) -> [f32; 2] {
    [1.0 - p1, p1]
}

/// Appends one JSON line for a row with click probability `p1`.
///
/// ```
/// let mut out = Vec::new();
/// sparky_predict::writer::write_json_line(&mut out, Some(3), 0.25);
/// assert_eq!(out, b"{\"id\": 3, \"classes\": [\"0\", \"1\"], \"scores\": [0.75, 0.25]}\n");
/// ```
#[inline]
pub fn write_json_line(out: &mut Vec<u8>, id: Option<i64>, p1: f32) {
    write_prediction(out, id, p1);
    out.push(b'\n');
}

/// Appends the JSON object of one prediction, as [`write_json_line`] writes
/// it but without the line end: the element of a `predictions` array that
/// criteo-serve answers.
#[inline]
pub fn write_prediction(out: &mut Vec<u8>, id: Option<i64>, p1: f32) {
    let [p0, p1] = class_scores(p1);
    let mut ints = itoa::Buffer::new();
    let mut floats = ryu::Buffer::new();
    out.push(b'{');
    if let Some(id) = id {
        out.extend_from_slice(b"\"id\": ");
        out.extend_from_slice(ints.format(id).as_bytes());
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"\"classes\": [\"0\", \"1\"], \"scores\": [");
    out.extend_from_slice(floats.format_finite(p0).as_bytes());
    out.extend_from_slice(b", ");
    out.extend_from_slice(floats.format_finite(p1).as_bytes());
    out.extend_from_slice(b"]}");
}

/// Appends a JSON line reporting that a row could not be scored (streaming
/// mode answers every input line).
pub fn write_error_line(out: &mut Vec<u8>, line: u64, reason: &str) {
    let msg = serde_json::json!({ "line": line, "error": reason });
    out.extend_from_slice(msg.to_string().as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_as_json_and_scores_sum_to_one() {
        let mut out = Vec::new();
        for (i, p) in [0.0f32, 1.0, 0.5, 1e-7, 0.999_999, 0.123_456_79].iter().enumerate() {
            out.clear();
            write_json_line(&mut out, (i % 2 == 0).then_some(i as i64 - 3), *p);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["classes"], serde_json::json!(["0", "1"]));
            let s = v["scores"].as_array().unwrap();
            let (p0, p1) = (s[0].as_f64().unwrap(), s[1].as_f64().unwrap());
            assert_eq!(p1 as f32, *p);
            assert!((p0 + p1 - 1.0).abs() < 1e-6, "{p0} + {p1}");
            assert_eq!(v.get("id").and_then(serde_json::Value::as_i64), (i % 2 == 0).then_some(i as i64 - 3));
        }
        assert_eq!(part_name(3, 12), "prediction.results-00003-of-00012");
    }
}
