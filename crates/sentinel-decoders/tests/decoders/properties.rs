//! Property tests: arbitrary uplinks and arbitrary scripts never crash the
//! sandbox, and a simple decoder's result always matches a Rust model of it.

use proptest::prelude::*;
use sentinel_decoders::{DecodeError, PAYLOAD_CEILING_BYTES, check};

use crate::run;

/// Sums the payload, echoes the port, and divides the first two bytes, which is
/// non-finite when the second is zero or missing.
const SIMPLE: &str = r#"
function decodeUplink(input) {
  var b = input.bytes;
  if (input.fPort === 0) { throw new Error("port 0 is reserved"); }
  if (input.fPort === 224) { return { errors: ["test port"] }; }
  var sum = 0;
  for (var i = 0; i < b.length; i++) { sum += b[i]; }
  return { data: { port: input.fPort, len: b.length, sum: sum, ratio: b[0] / b[1] } };
}
"#;

/// Mostly short payloads rich in zeros (so that the ratio is often missing or
/// non-finite), and some of any length up to past the ceiling.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..8),
        1 => proptest::collection::vec(any::<u8>(), 0..=PAYLOAD_CEILING_BYTES + 64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_uplinks_give_the_modelled_result(
        bytes in payload(),
        f_port in any::<u8>(),
    ) {
        let outcome = run(SIMPLE, &bytes, f_port);
        let ratio = match (bytes.first(), bytes.get(1)) {
            (Some(a), Some(b)) if *b != 0 => Some(f64::from(*a) / f64::from(*b)),
            _ => None,
        };
        if bytes.len() > PAYLOAD_CEILING_BYTES {
            prop_assert_eq!(outcome, Err(DecodeError::PayloadTooLarge));
        } else if f_port == 0 {
            prop_assert!(matches!(&outcome, Err(DecodeError::Exception(m)) if m.contains("reserved")), "{:?}", outcome);
        } else if f_port == 224 {
            let decoded = outcome.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert!(decoded.is_failure());
        } else if let Some(ratio) = ratio {
            let decoded = outcome.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            let sum: u64 = bytes.iter().map(|b| u64::from(*b)).sum();
            prop_assert_eq!(decoded.data.get("port").and_then(|v| v.as_u64()), Some(u64::from(f_port)));
            prop_assert_eq!(decoded.data.get("len").and_then(|v| v.as_u64()), Some(bytes.len() as u64));
            prop_assert_eq!(decoded.data.get("sum").and_then(|v| v.as_u64()), Some(sum));
            let got = decoded.data.get("ratio").and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
            prop_assert!((got - ratio).abs() < 1e-12, "ratio {} != {}", got, ratio);
        } else {
            prop_assert!(matches!(&outcome, Err(DecodeError::BadOutput(m)) if m.contains("non-finite")), "{:?}", outcome);
        }
    }

    #[test]
    fn arbitrary_scripts_never_crash_check_or_decode(
        code in proptest::collection::vec(
            prop_oneof![
                any::<char>(),
                proptest::sample::select(vec!['(', ')', '{', '}', '[', ']', ';', '=', '+', '"', '\'', '`', '/', '\\', '\n', 'x', '1', '.', ',']),
            ],
            0..300,
        ).prop_map(|chars| chars.into_iter().collect::<String>()),
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        f_port in any::<u8>(),
    ) {
        let checked = check(&code, &crate::limits());
        prop_assert!(checked.is_err() || checked == Ok(()));
        let outcome = run(&code, &bytes, f_port);
        prop_assert!(!matches!(outcome, Err(DecodeError::PayloadTooLarge | DecodeError::Unavailable)), "{:?}", outcome);
    }

    #[test]
    fn arbitrary_thrown_values_are_exceptions(text in "[a-zA-Z0-9 ]{0,40}") {
        let code = format!("function decodeUplink(input) {{ throw new Error({text:?}); }}");
        let outcome = run(&code, &[], 1);
        let expected = if text.is_empty() { "Error".to_owned() } else { format!("Error: {text}") };
        prop_assert!(matches!(&outcome, Err(DecodeError::Exception(m)) if m.starts_with(&expected)), "{:?}", outcome);
    }
}
