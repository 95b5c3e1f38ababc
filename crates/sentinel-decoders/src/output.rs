//! Reading what `decodeUplink` returned: serialized to JSON inside the sandbox
//! (under the same time and memory limits), capped in size, then checked against
//! the `{ data, warnings, errors }` shape in Rust.

use rquickjs::{Ctx, Function, Value};
use serde_json::{Map, Value as Json};

use crate::DecodeError;
use crate::exception::{Phase, classify};

/// What a decoder produced.
///
/// A non-empty `errors` is the decoder saying it could not decode the uplink
/// (both ChirpStack and The Things Stack use it that way); `data` is then
/// whatever it returned, often empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// The decoded measurements.
    pub data: Map<String, Json>,
    /// Problems the decoder reported without failing.
    pub warnings: Vec<String>,
    /// Reasons the decoder gave for failing.
    pub errors: Vec<String>,
}

impl Decoded {
    /// Whether the decoder reported that it failed (a non-empty `errors`).
    pub fn is_failure(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// The serializer, compiled before any user code runs so that the script cannot
/// replace what it captures. `JSON.stringify` would quietly turn `NaN` and
/// `Infinity` into `null` and drop functions; here they are refused instead.
/// Values that are `undefined` are dropped from objects as JSON does.
const SERIALIZER: &str = r#"(function (stringify) {
    'use strict';
    function refuse(key, value) {
        var kind = typeof value;
        if (kind === 'number' && (value !== value || value === 1 / 0 || value === -1 / 0)) {
            throw 'non-finite number ' + value + ' at key "' + key + '"';
        }
        if (kind === 'function' || kind === 'symbol' || kind === 'bigint') {
            throw kind + ' at key "' + key + '" is not JSON';
        }
        return value;
    }
    return function (result, limit) {
        var json = stringify(result, refuse);
        // Each UTF-16 unit is at least one UTF-8 byte: cheap to refuse here, before
        // a big string is copied out of the sandbox. Rust checks the exact bytes.
        if (typeof json === 'string' && json.length > limit) {
            throw 'the result is over ' + json.length + ' bytes of JSON, over the limit of ' + limit;
        }
        return json;
    };
})(JSON.stringify)"#;

/// Compiles the serializer; to be called before the user's script runs.
pub(crate) fn serializer<'js>(ctx: &Ctx<'js>) -> Result<Function<'js>, DecodeError> {
    ctx.eval::<Function, _>(SERIALIZER)
        .map_err(|error| classify(ctx, error, Phase::Call))
}

/// Serializes and checks the value `decodeUplink` returned.
pub(crate) fn read<'js>(
    ctx: &Ctx<'js>,
    result: Value<'js>,
    serializer: &Function<'js>,
    max_output_bytes: usize,
) -> Result<Decoded, DecodeError> {
    if result.is_promise() {
        return Err(bad(
            "decodeUplink returned a Promise; decoders must be synchronous",
        ));
    }
    if !result.is_object() || result.is_array() || result.is_function() {
        return Err(bad(format!(
            "decodeUplink must return an object such as {{ data: {{...}} }}, not {}",
            kind_of(&result)
        )));
    }
    let json: Value = serializer
        .call((result, max_output_bytes))
        .map_err(|error| classify(ctx, error, Phase::Output))?;
    let Some(json) = json.as_string() else {
        return Err(bad("the result cannot be serialized as JSON"));
    };
    let json = json
        .to_string()
        .map_err(|error| classify(ctx, error, Phase::Output))?;
    if json.len() > max_output_bytes {
        return Err(bad(format!(
            "the result is {} bytes of JSON, over the limit of {max_output_bytes}",
            json.len()
        )));
    }
    let json: Json = serde_json::from_str(&json)
        .map_err(|error| bad(format!("the result is not valid JSON: {error}")))?;
    validate(json)
}

/// Checks the `{ data, warnings, errors }` shape of a serialized result.
pub(crate) fn validate(result: Json) -> Result<Decoded, DecodeError> {
    let Json::Object(mut result) = result else {
        return Err(bad("the result must be an object"));
    };
    let warnings = strings(result.remove("warnings"), "warnings")?;
    let errors = strings(result.remove("errors"), "errors")?;
    let data = match result.remove("data") {
        Some(Json::Object(data)) => data,
        None | Some(Json::Null) if !errors.is_empty() => Map::new(),
        None => return Err(bad("the result has no data object")),
        Some(other) => {
            return Err(bad(format!(
                "data must be an object, not {}",
                json_kind(&other)
            )));
        }
    };
    Ok(Decoded {
        data,
        warnings,
        errors,
    })
}

/// An optional array of strings (absent and `null` mean empty).
fn strings(value: Option<Json>, field: &str) -> Result<Vec<String>, DecodeError> {
    match value {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| match item {
                Json::String(text) => Ok(text),
                other => Err(bad(format!(
                    "{field}[{index}] must be a string, not {}",
                    json_kind(&other)
                ))),
            })
            .collect(),
        Some(other) => Err(bad(format!(
            "{field} must be an array of strings, not {}",
            json_kind(&other)
        ))),
    }
}

fn bad(reason: impl Into<String>) -> DecodeError {
    DecodeError::BadOutput(reason.into())
}

fn kind_of(value: &Value<'_>) -> &'static str {
    if value.is_array() {
        "an array"
    } else if value.is_function() {
        "a function"
    } else if value.is_null() {
        "null"
    } else {
        value.type_name()
    }
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_result_is_read() {
        let decoded = validate(json!({
            "data": { "temperature": 21.5 },
            "warnings": ["battery low"],
            "errors": []
        }));
        let Ok(decoded) = decoded else {
            panic!("expected a result, got {decoded:?}");
        };
        assert_eq!(decoded.data.get("temperature"), Some(&json!(21.5)));
        assert_eq!(decoded.warnings, ["battery low"]);
        assert!(!decoded.is_failure());
    }

    #[test]
    fn errors_without_data_are_a_reported_failure() {
        let decoded = validate(json!({ "errors": ["unknown fPort 9"] }));
        let Ok(decoded) = decoded else {
            panic!("expected a result, got {decoded:?}");
        };
        assert!(decoded.is_failure());
        assert!(decoded.data.is_empty());
        assert_eq!(decoded.errors, ["unknown fPort 9"]);
    }

    #[test]
    fn a_missing_or_wrong_shape_is_bad_output() {
        for result in [
            json!({}),
            json!({ "data": null }),
            json!({ "data": [1, 2] }),
            json!({ "data": "x" }),
            json!({ "data": {}, "warnings": "careful" }),
            json!({ "data": {}, "warnings": [1] }),
            json!({ "data": {}, "errors": [null] }),
            json!({ "data": {}, "errors": {} }),
            json!([]),
        ] {
            let outcome = validate(result.clone());
            assert!(
                matches!(outcome, Err(DecodeError::BadOutput(_))),
                "{result} gave {outcome:?}"
            );
        }
    }
}
