//! The wire formats and the command signature, from both ends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sentinel_protocol::command::{
    Command, CommandAction, Interpreter, is_package_name, truncate_output,
};
use sentinel_protocol::signing::{CommandSigner, CommandVerifier, Rejection, SignedCommand};
use uuid::Uuid;

fn command(device_id: Uuid) -> Command {
    Command {
        id: Uuid::new_v4(),
        org_id: Uuid::new_v4(),
        device_id,
        issued_at: 1_000,
        expires_at: 2_000,
        issued_by: "ada@example.org".into(),
        action: CommandAction::RunScript {
            interpreter: Interpreter::Sh,
            script: "echo hi".into(),
            timeout_seconds: 10,
        },
    }
}

fn signer() -> CommandSigner {
    CommandSigner::generate()
        .map(|(s, _)| s)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn verifier(signer: &CommandSigner) -> CommandVerifier {
    CommandVerifier::from_hex(&signer.public_key_hex()).unwrap()
}

fn sign(signer: &CommandSigner, command: &Command) -> SignedCommand {
    signer.sign(command).unwrap()
}

#[test]
fn a_signed_command_opens_for_its_device_only_and_before_expiry() {
    let signer = signer();
    let device = Uuid::new_v4();
    let original = command(device);
    let signed = sign(&signer, &original);
    assert_eq!(verifier(&signer).open(&signed, device, 1_500), Ok(original));
    assert_eq!(
        verifier(&signer).open(&signed, Uuid::new_v4(), 1_500),
        Err(Rejection::WrongDevice)
    );
    assert_eq!(
        verifier(&signer).open(&signed, device, 2_000),
        Err(Rejection::Expired)
    );
}

#[test]
fn altered_or_foreign_commands_are_refused() {
    let signer = signer();
    let device = Uuid::new_v4();
    let signed = sign(&signer, &command(device));

    // Another organization's key.
    let other = signer_other();
    assert_eq!(
        verifier(&other).open(&signed, device, 1_500),
        Err(Rejection::BadSignature)
    );

    // The payload altered in transit: a different script, same signature.
    let mut altered = command(device);
    altered.id = signed.id;
    altered.action = CommandAction::RunScript {
        interpreter: Interpreter::Sh,
        script: "rm -rf /".into(),
        timeout_seconds: 10,
    };
    let forged = SignedCommand {
        payload: sign(&other, &altered).payload,
        ..signed.clone()
    };
    assert_eq!(
        verifier(&signer).open(&forged, device, 1_500),
        Err(Rejection::BadSignature)
    );

    // Delivered under another id.
    let moved = SignedCommand {
        id: Uuid::new_v4(),
        ..signed.clone()
    };
    assert_eq!(
        verifier(&signer).open(&moved, device, 1_500),
        Err(Rejection::IdMismatch)
    );

    // Garbage.
    let garbage = SignedCommand {
        payload: "%%%".into(),
        ..signed
    };
    assert_eq!(
        verifier(&signer).open(&garbage, device, 1_500),
        Err(Rejection::Malformed)
    );
}

fn signer_other() -> CommandSigner {
    signer()
}

#[test]
fn a_signed_but_invalid_action_is_refused() {
    let signer = signer();
    let device = Uuid::new_v4();
    let mut bad = command(device);
    bad.action = CommandAction::InstallPackage {
        name: "-oAPT::Update::Pre-Invoke=sh".into(),
    };
    let signed = sign(&signer, &bad);
    assert!(matches!(
        verifier(&signer).open(&signed, device, 1_500),
        Err(Rejection::Invalid(_))
    ));
}

#[test]
fn requests_parse_with_or_without_params_and_are_checked() {
    assert_eq!(
        CommandAction::from_request("reboot", None),
        Ok(CommandAction::Reboot {})
    );
    assert_eq!(
        CommandAction::from_request("reboot", Some(serde_json::json!({}))),
        Ok(CommandAction::Reboot {})
    );
    assert!(CommandAction::from_request("reboot", Some(serde_json::json!({"now": true}))).is_err());
    assert!(CommandAction::from_request("format_disk", None).is_err());
    let script = CommandAction::from_request(
        "run_script",
        Some(serde_json::json!({"interpreter": "bash", "script": "uptime"})),
    );
    assert_eq!(
        script,
        Ok(CommandAction::RunScript {
            interpreter: Interpreter::Bash,
            script: "uptime".into(),
            timeout_seconds: 300
        })
    );
    for params in [
        serde_json::json!({"interpreter": "perl", "script": "1"}),
        serde_json::json!({"interpreter": "sh", "script": ""}),
        serde_json::json!({"interpreter": "sh", "script": "x".repeat(64 * 1024 + 1)}),
        serde_json::json!({"interpreter": "sh", "script": "true", "timeout_seconds": 0}),
        serde_json::json!({"interpreter": "sh", "script": "true", "timeout_seconds": 3601}),
        serde_json::json!({"interpreter": "sh", "script": "true", "timeout_seconds": "5"}),
        serde_json::json!({"interpreter": "sh", "script": "true", "user": "root"}),
    ] {
        assert!(
            CommandAction::from_request("run_script", Some(params.clone())).is_err(),
            "{params}"
        );
    }
}

#[test]
fn package_names_cannot_smuggle_options_versions_or_paths() {
    for good in [
        "openssl",
        "libssl3",
        "g++",
        "python3.11",
        "NetworkManager",
        "lib_x-1",
    ] {
        assert!(is_package_name(good), "{good}");
    }
    for bad in [
        "",
        "-y",
        "--purge",
        "foo=1.0",
        "foo>=1",
        "../x",
        "/etc/passwd",
        "a b",
        "*",
        "x;rm",
        &"a".repeat(129),
    ] {
        assert!(!is_package_name(bad), "{bad}");
    }
}

#[test]
fn output_is_cut_at_a_character_boundary() {
    assert_eq!(truncate_output("héllo", 2), ("h", true));
    assert_eq!(truncate_output("héllo", 3), ("hé", true));
    assert_eq!(truncate_output("hi", 3), ("hi", false));
}

#[test]
fn a_command_key_is_64_hex_digits_and_nothing_else() {
    let signer = signer();
    let key = signer.public_key_hex();
    assert!(CommandVerifier::from_hex(&key.to_uppercase()).is_some());
    assert!(CommandVerifier::from_hex(&"0".repeat(64)).is_some());
    for bad in [
        "+0".repeat(32),
        "0".repeat(62),
        "0".repeat(66),
        format!("{}g", &key[..63]),
    ] {
        assert!(CommandVerifier::from_hex(&bad).is_none(), "{bad}");
    }
}
