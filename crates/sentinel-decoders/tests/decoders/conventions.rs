//! Decoders written as ChirpStack v4 and The Things Stack document them produce
//! exactly the data they should.

use serde_json::json;

use crate::{decoded, run, value_of};

/// A ChirpStack-style temperature/humidity decoder: big-endian signed int16
/// tenths of a degree, then an unsigned byte of relative humidity.
const CHIRPSTACK_CLIMATE: &str = r#"
function decodeUplink(input) {
  var bytes = input.bytes;
  var raw = (bytes[0] << 8) | bytes[1];
  if (raw & 0x8000) { raw -= 0x10000; }
  return {
    data: {
      temperature: raw / 10,
      humidity: bytes[2],
    }
  };
}
"#;

#[test]
fn chirpstack_climate_decoder_reads_signed_big_endian() {
    // 0x00D7 = 215 -> 21.5 °C, 0x37 = 55 %
    let warm = decoded(CHIRPSTACK_CLIMATE, &[0x00, 0xD7, 0x37], 2);
    assert_eq!(
        serde_json::Value::Object(warm.data),
        json!({ "temperature": 21.5, "humidity": 55 })
    );
    assert!(warm.warnings.is_empty());
    assert!(warm.errors.is_empty());

    // 0xFF9C = -100 -> -10 °C (JSON has no integer/float distinction: it is -10)
    let cold = decoded(CHIRPSTACK_CLIMATE, &[0xFF, 0x9C, 0x5A], 2);
    assert_eq!(
        serde_json::Value::Object(cold.data),
        json!({ "temperature": -10, "humidity": 90 })
    );
}

/// A Things Stack-style decoder that branches on the port and reports errors.
const TTS_PORTS: &str = r#"
function decodeUplink(input) {
  switch (input.fPort) {
    case 1:
      return { data: { battery_mv: (input.bytes[0] << 8) | input.bytes[1] } };
    case 2:
      return { data: { door: input.bytes[0] === 1 ? "open" : "closed" } };
    default:
      return { errors: ["unknown FPort " + input.fPort] };
  }
}
"#;

#[test]
fn tts_decoder_branches_on_fport() {
    let battery = decoded(TTS_PORTS, &[0x0C, 0xE4], 1);
    assert_eq!(
        serde_json::Value::Object(battery.data),
        json!({ "battery_mv": 3300 })
    );

    let door = decoded(TTS_PORTS, &[1], 2);
    assert_eq!(
        serde_json::Value::Object(door.data),
        json!({ "door": "open" })
    );

    let unknown = decoded(TTS_PORTS, &[1], 9);
    assert!(unknown.is_failure());
    assert!(unknown.data.is_empty());
    assert_eq!(unknown.errors, ["unknown FPort 9"]);
}

/// A decoder that decodes and also warns, the way TTS documents warnings.
const TTS_WARNINGS: &str = r#"
function decodeUplink(input) {
  var warnings = [];
  var volts = input.bytes[0] / 50;
  if (volts < 3.0) { warnings.push("battery low"); }
  return { data: { battery_v: volts }, warnings: warnings, errors: [] };
}
"#;

#[test]
fn tts_decoder_returns_warnings_with_data() {
    let low = decoded(TTS_WARNINGS, &[140], 1);
    assert!(!low.is_failure());
    assert_eq!(low.warnings, ["battery low"]);
    assert_eq!(
        serde_json::Value::Object(low.data),
        json!({ "battery_v": 2.8 })
    );

    let fine = decoded(TTS_WARNINGS, &[175], 1);
    assert_eq!(
        serde_json::Value::Object(fine.data),
        json!({ "battery_v": 3.5 })
    );
    assert!(fine.warnings.is_empty());
}

#[test]
fn input_has_the_documented_shape() {
    let code = r#"
    function decodeUplink(input) {
      return { data: {
        bytes: input.bytes,
        isArray: Array.isArray(input.bytes),
        fPort: input.fPort,
        recvTime: input.recvTime.toISOString(),
        isDate: input.recvTime instanceof Date,
        variables: input.variables,
        keys: Object.keys(input).sort(),
      } };
    }"#;
    let decoded = decoded(code, &[0, 127, 255], 42);
    assert_eq!(
        serde_json::Value::Object(decoded.data),
        json!({
            "bytes": [0, 127, 255],
            "isArray": true,
            "fPort": 42,
            "recvTime": "2024-05-01T12:34:56.789Z",
            "isDate": true,
            "variables": {},
            "keys": ["bytes", "fPort", "recvTime", "variables"],
        })
    );
}

#[test]
fn decoders_may_use_sloppy_mode_helpers_and_built_ins() {
    // An undeclared assignment (sloppy mode), a `const` arrow function, DataView
    // for IEEE-754 floats, and a helper at top level.
    let code = r#"
    total = 0;
    function toFloat(bytes) {
      var view = new DataView(new Uint8Array(bytes).buffer);
      return view.getFloat32(0, false);
    }
    const decodeUplink = (input) => {
      total = input.bytes.reduce((sum, b) => sum + b, 0);
      return { data: { celsius: toFloat(input.bytes), total: total, hex: input.bytes.map(b => b.toString(16).padStart(2, "0")).join("") } };
    };"#;
    // 0x41AC0000 = 21.5f32
    let decoded = decoded(code, &[0x41, 0xAC, 0x00, 0x00], 3);
    assert_eq!(
        serde_json::Value::Object(decoded.data),
        json!({ "celsius": 21.5, "total": 0x41 + 0xAC, "hex": "41ac0000" })
    );
}

#[test]
fn dates_serialize_as_iso_strings_and_undefined_fields_are_dropped() {
    assert_eq!(value_of("new Date(0)"), json!("1970-01-01T00:00:00.000Z"));
    assert_eq!(
        value_of("{ kept: 1, dropped: undefined }"),
        json!({ "kept": 1 })
    );
    assert_eq!(value_of("[1, undefined]"), json!([1, null]));
}

#[test]
fn promise_callbacks_run_before_the_result_is_read() {
    let code = r#"
    function decodeUplink(input) {
      var result = { data: { step: "sync" } };
      Promise.resolve().then(function () { result.data.step = "microtask"; });
      return result;
    }"#;
    let decoded = decoded(code, &[], 1);
    assert_eq!(decoded.data.get("step"), Some(&json!("microtask")));
}

#[test]
fn an_empty_payload_is_fine() {
    let decoded = decoded(
        "function decodeUplink(input) { return { data: { n: input.bytes.length } }; }",
        &[],
        0,
    );
    assert_eq!(decoded.data.get("n"), Some(&json!(0)));
    assert!(run(CHIRPSTACK_CLIMATE, &[], 2).is_ok());
}
