//! Every way a decoder can fail maps to its own error.

use sentinel_decoders::{DecodeError, Limits, check};

use crate::{returning, run};

fn bad_output(code: &str) -> String {
    match run(code, &[1, 2, 3], 1) {
        Err(DecodeError::BadOutput(reason)) => reason,
        other => panic!("expected BadOutput, got {other:?}"),
    }
}

#[test]
fn a_syntax_error_is_syntax() {
    for code in [
        "function decodeUplink(input) { return { data: { }; }",
        "function decodeUplink(input) {",
        "import x from 'x'; function decodeUplink(input) { return { data: {} }; }",
        "export function decodeUplink(input) { return { data: {} }; }",
    ] {
        let outcome = run(code, &[], 1);
        assert!(
            matches!(&outcome, Err(DecodeError::Syntax(message)) if message.contains("SyntaxError")),
            "{code} gave {outcome:?}"
        );
        assert!(matches!(
            check(code, &crate::limits()),
            Err(DecodeError::Syntax(_))
        ));
    }
}

#[test]
fn a_nul_character_is_syntax() {
    let code = "function decodeUplink(input) { return { data: {} }; }\0";
    assert!(matches!(run(code, &[], 1), Err(DecodeError::Syntax(_))));
}

#[test]
fn no_decode_uplink_is_missing_function() {
    for code in [
        "",
        "function decode(input) { return { data: {} }; }",
        "var decodeUplink = 42;",
        "function Decoder(bytes, port) { return {}; }",
    ] {
        assert_eq!(
            run(code, &[], 1),
            Err(DecodeError::MissingFunction),
            "{code}"
        );
        assert_eq!(
            check(code, &crate::limits()),
            Err(DecodeError::MissingFunction)
        );
    }
}

#[test]
fn check_accepts_every_way_of_defining_decode_uplink() {
    for code in [
        "function decodeUplink(input) { return { data: {} }; }",
        "var decodeUplink = function (input) { return { data: {} }; };",
        "let decodeUplink = (input) => ({ data: {} });",
        "const decodeUplink = (input) => ({ data: {} });",
        "globalThis.decodeUplink = function (input) { return { data: {} }; };",
    ] {
        assert_eq!(check(code, &crate::limits()), Ok(()), "{code}");
        assert!(run(code, &[], 1).is_ok(), "{code}");
    }
}

#[test]
fn a_throw_is_an_exception_with_its_message() {
    let outcome = run(
        "function decodeUplink(input) { throw new Error('sensor ' + input.fPort + ' unplugged'); }",
        &[],
        7,
    );
    let Err(DecodeError::Exception(message)) = outcome else {
        panic!("expected Exception, got {outcome:?}");
    };
    assert!(
        message.starts_with("Error: sensor 7 unplugged"),
        "{message}"
    );
    assert!(
        message.contains("decodeUplink"),
        "the stack names the function: {message}"
    );

    let outcome = run(
        "function decodeUplink(input) { throw 'plain ' + 'string'; }",
        &[],
        1,
    );
    assert_eq!(
        outcome,
        Err(DecodeError::Exception("plain string".to_owned()))
    );

    let outcome = run(
        "function decodeUplink(input) { return input.nope.deeper; }",
        &[],
        1,
    );
    assert!(
        matches!(&outcome, Err(DecodeError::Exception(m)) if m.starts_with("TypeError")),
        "{outcome:?}"
    );
}

#[test]
fn a_throw_at_top_level_is_an_exception_for_check_too() {
    let code = "throw new RangeError('not configured'); function decodeUplink(input) {}";
    let outcome = check(code, &crate::limits());
    assert!(
        matches!(&outcome, Err(DecodeError::Exception(m)) if m.starts_with("RangeError: not configured")),
        "{outcome:?}"
    );
}

#[test]
fn a_long_exception_message_is_truncated() {
    let outcome = run(
        "function decodeUplink(input) { throw new Error('x'.repeat(100000)); }",
        &[],
        1,
    );
    let Err(DecodeError::Exception(message)) = outcome else {
        panic!("expected Exception, got {outcome:?}");
    };
    assert!(message.len() <= 520, "{} bytes", message.len());
    assert!(message.ends_with('…'));
}

#[test]
fn a_hostile_thrown_object_is_still_reported() {
    // Its toString throws again; the sandbox must not propagate that.
    let code = "function decodeUplink(input) { throw { toString: function () { throw 1; } }; }";
    assert!(matches!(run(code, &[], 1), Err(DecodeError::Exception(_))));
    // Error whose message getter throws.
    let code = "function decodeUplink(input) { var e = new Error('x'); Object.defineProperty(e, 'message', { get: function () { throw 2; } }); throw e; }";
    assert!(matches!(run(code, &[], 1), Err(DecodeError::Exception(_))));
}

#[test]
fn results_that_are_not_objects_are_bad_output() {
    for expression in [
        "undefined",
        "null",
        "42",
        "'data'",
        "[1, 2]",
        "true",
        "function () {}",
    ] {
        let code = format!("function decodeUplink(input) {{ return {expression}; }}");
        let reason = bad_output(&code);
        assert!(
            reason.contains("must return an object"),
            "{expression}: {reason}"
        );
    }
    let reason = bad_output("function decodeUplink(input) { }");
    assert!(reason.contains("undefined"), "{reason}");
}

#[test]
fn a_missing_or_non_object_data_is_bad_output() {
    for result in [
        "{}",
        "{ data: 5 }",
        "{ data: [1] }",
        "{ data: 'x' }",
        "{ data: null }",
    ] {
        let code = format!("function decodeUplink(input) {{ return {result}; }}");
        let reason = bad_output(&code);
        assert!(reason.contains("data"), "{result}: {reason}");
    }
}

#[test]
fn warnings_and_errors_must_be_strings() {
    for result in [
        "{ data: {}, warnings: [1] }",
        "{ data: {}, warnings: 'careful' }",
        "{ data: {}, errors: [{}] }",
    ] {
        let code = format!("function decodeUplink(input) {{ return {result}; }}");
        let reason = bad_output(&code);
        assert!(reason.contains("string"), "{result}: {reason}");
    }
}

#[test]
fn non_json_values_are_bad_output() {
    for (expression, expected) in [
        ("NaN", "non-finite"),
        ("1 / 0", "non-finite"),
        ("{ deep: [-Infinity] }", "non-finite"),
        ("function () {}", "function"),
        ("Symbol('s')", "symbol"),
        ("10n", "bigint"),
    ] {
        let reason = bad_output(&returning(expression));
        assert!(reason.contains(expected), "{expression}: {reason}");
    }
    let reason = bad_output(
        "function decodeUplink(input) { var data = {}; data.self = data; return { data: data }; }",
    );
    assert!(reason.contains("circular"), "{reason}");
}

#[test]
fn a_promise_result_is_bad_output() {
    let reason = bad_output("async function decodeUplink(input) { return { data: {} }; }");
    assert!(reason.contains("Promise"), "{reason}");
}

#[test]
fn output_over_the_cap_is_bad_output() {
    let limits = Limits::default();
    let over = limits.max_output_bytes;
    let reason = bad_output(&returning(&format!("'x'.repeat({over})")));
    assert!(reason.contains("over the limit"), "{reason}");

    // Under the cap in UTF-16 units, over it in UTF-8 bytes.
    let units = limits.max_output_bytes / 2 + 100;
    let reason = bad_output(&returning(&format!("'é'.repeat({units})")));
    assert!(reason.contains("over the limit"), "{reason}");

    // Just under the cap is accepted.
    let under = limits.max_output_bytes - 100;
    assert!(run(&returning(&format!("'x'.repeat({under})")), &[], 1).is_ok());
}

#[test]
fn a_to_json_that_throws_is_bad_output() {
    let reason = bad_output(&returning(
        "{ toJSON: function () { throw new Error('no json'); } }",
    ));
    assert!(reason.contains("no json"), "{reason}");
}
