//! A decoder has no ambient authority: no host objects, no modules, and nothing
//! it does survives into the next decode.

use serde_json::json;

use crate::{decoded, value_of};

#[test]
fn host_objects_do_not_exist() {
    for name in [
        "require",
        "fetch",
        "XMLHttpRequest",
        "std",
        "os",
        "process",
        "module",
        "exports",
        "Deno",
        "Bun",
        "setTimeout",
        "setInterval",
        "print",
        "console",
        "scriptArgs",
        "WebAssembly",
        "performance",
    ] {
        assert_eq!(
            value_of(&format!("typeof {name}")),
            json!("undefined"),
            "{name}"
        );
    }
}

/// Every global a decoder sees: the language's own built-ins (QuickJS-ng's base
/// objects and the intrinsics the sandbox adds), nothing of the host. A change in
/// the engine that adds a global fails here so that it gets reviewed.
const GLOBALS: &[&str] = &[
    "AggregateError",
    "Array",
    "ArrayBuffer",
    "AsyncDisposableStack",
    "Atomics",
    "BigInt",
    "BigInt64Array",
    "BigUint64Array",
    "Boolean",
    "DataView",
    "Date",
    "DisposableStack",
    "Error",
    "EvalError",
    "Float16Array",
    "Float32Array",
    "Float64Array",
    "Function",
    "Infinity",
    "Int16Array",
    "Int32Array",
    "Int8Array",
    "InternalError",
    "Iterator",
    "JSON",
    "Map",
    "Math",
    "NaN",
    "Number",
    "Object",
    "Promise",
    "RangeError",
    "ReferenceError",
    "Reflect",
    "RegExp",
    "Set",
    "SharedArrayBuffer",
    "String",
    "SuppressedError",
    "Symbol",
    "SyntaxError",
    "TypeError",
    "URIError",
    "Uint16Array",
    "Uint32Array",
    "Uint8Array",
    "Uint8ClampedArray",
    "WeakMap",
    "WeakSet",
    "decodeURI",
    "decodeURIComponent",
    "decodeUplink",
    "encodeURI",
    "encodeURIComponent",
    "escape",
    "eval",
    "globalThis",
    "isFinite",
    "isNaN",
    "parseFloat",
    "parseInt",
    "queueMicrotask",
    "undefined",
    "unescape",
];

#[test]
fn the_globals_are_the_language_built_ins_only() {
    let globals = value_of("Object.getOwnPropertyNames(globalThis).sort()");
    let mut expected: Vec<&str> = GLOBALS.to_vec();
    expected.sort_unstable();
    assert_eq!(globals, json!(expected));
}

#[test]
fn dynamic_import_fails() {
    let code = r#"
    function decodeUplink(input) {
      var out = { data: { loaded: false, error: "" } };
      import("os").then(
        function () { out.data.loaded = true; },
        function (e) { out.data.error = String(e); }
      );
      import("./anything.js").catch(function (e) { out.data.second = String(e); });
      return out;
    }"#;
    let decoded = decoded(code, &[], 1);
    assert_eq!(decoded.data.get("loaded"), Some(&json!(false)));
    let error = decoded
        .data
        .get("error")
        .and_then(|e| e.as_str())
        .unwrap_or_default();
    assert!(error.contains("could not load module"), "{error}");
    let second = decoded
        .data
        .get("second")
        .and_then(|e| e.as_str())
        .unwrap_or_default();
    assert!(second.contains("could not load module"), "{second}");
}

#[test]
fn eval_and_function_constructor_reach_nothing_more() {
    assert_eq!(value_of("eval('typeof require')"), json!("undefined"));
    assert_eq!(
        value_of("Function('return typeof std')()"),
        json!("undefined")
    );
    assert_eq!(value_of("(0, eval)('this') === globalThis"), json!(true));
}

#[test]
fn global_changes_do_not_leak_into_the_next_decode() {
    let polluter = r#"
    var calls = (globalThis.calls || 0) + 1;
    globalThis.calls = calls;
    globalThis.secret = "device A";
    Object.prototype.injected = "yes";
    Array.prototype.map = function () { return ["hijacked"]; };
    JSON.stringify = function () { return "{}"; };
    Date = function () { return "fake"; };
    function decodeUplink(input) { return { data: { calls: calls } }; }
    "#;
    for _ in 0..3 {
        let decoded = decoded(polluter, &[], 1);
        assert_eq!(
            decoded.data.get("calls"),
            Some(&json!(1)),
            "state leaked between decodes"
        );
    }
    let observer = r#"
    function decodeUplink(input) {
      return { data: {
        secret: typeof secret,
        calls: typeof calls,
        injected: typeof ({}).injected,
        mapped: [1, 2].map(function (x) { return x * 2; }),
        isDate: input.recvTime instanceof Date,
      } };
    }"#;
    let decoded = decoded(observer, &[], 1);
    assert_eq!(
        serde_json::Value::Object(decoded.data),
        json!({ "secret": "undefined", "calls": "undefined", "injected": "undefined", "mapped": [2, 4], "isDate": true })
    );
}

#[test]
fn tampering_with_built_ins_inside_a_decode_cannot_forge_the_input_or_output_path() {
    // The script replaces Date and JSON before decodeUplink runs: the input was
    // built with the real Date and the result is serialized with the real JSON.
    let code = r#"
    Date = function () { throw new Error("hijacked Date"); };
    JSON.stringify = function () { return '{"data":{"forged":true}}'; };
    Number.isFinite = function () { return true; };
    function decodeUplink(input) { return { data: { year: input.recvTime.getUTCFullYear() } }; }
    "#;
    let decoded = decoded(code, &[], 1);
    assert_eq!(
        serde_json::Value::Object(decoded.data),
        json!({ "year": 2024 })
    );
}
