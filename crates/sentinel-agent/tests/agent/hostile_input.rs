//! Hostile input: the inventory parsers never panic on arbitrary bytes, and stay linear
//! on pathological shapes.

use proptest::prelude::*;
use sentinel_agent::inventory::{apk, dpkg, rpm};

/// Bytes biased towards the characters the formats give meaning to.
fn structured_bytes() -> impl Strategy<Value = Vec<u8>> {
    let meaningful = prop::sample::select(
        b"\n\r \t:()-.\\'\"PVAo#=Status: install ok installed\nPackage: Version: Source: (none)"
            .to_vec(),
    );
    prop::collection::vec(prop_oneof![any::<u8>(), meaningful], 0..2048)
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in structured_bytes()) {
        let text = String::from_utf8_lossy(&bytes);
        for collection in [
            dpkg::parse_status(&text),
            rpm::parse_query_output(&text),
            apk::parse_installed(&text),
        ] {
            let packages = collection.inventory.packages();
            prop_assert!(packages.windows(2).all(|pair| pair[0] < pair[1]));
            prop_assert_eq!(collection.inventory.digest().len(), 64);
        }
    }

    #[test]
    fn rpm_lines_of_six_arbitrary_fields_never_panic(
        fields in prop::collection::vec("[^\t\n]{0,24}", 6)
    ) {
        let parsed = rpm::parse_query_output(&fields.join("\t"));
        prop_assert!(parsed.inventory.packages().len() <= 1 && parsed.warnings.len() <= 1);
    }
}

#[test]
fn pathological_shapes_parse() {
    let blank_lines = "\n".repeat(1_000_000);
    let one_long_line = "Package: ".to_owned() + &"x".repeat(1_000_000);
    let many_continuations = "Package: a\nStatus: install ok installed\nVersion: 1\n".to_owned()
        + &" .\n".repeat(500_000);
    let many_colons = ":".repeat(1_000_000);
    for text in [
        &blank_lines,
        &one_long_line,
        &many_continuations,
        &many_colons,
    ] {
        let _ = dpkg::parse_status(text);
        let _ = apk::parse_installed(text);
        let _ = rpm::parse_query_output(text);
    }
    assert_eq!(
        dpkg::parse_status(&many_continuations)
            .inventory
            .packages()
            .len(),
        1
    );
}
