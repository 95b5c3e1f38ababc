//! Turning whatever the engine or the script threw into a [`DecodeError`].
//!
//! QuickJS reports resource exhaustion as ordinary exceptions, so they are told
//! apart here by what the engine itself throws: an `InternalError` "out of memory"
//! (or `null`, when even that error object could not be allocated), and a
//! `RangeError` "Maximum call stack size exceeded" (QuickJS-ng; the original QuickJS
//! throws `InternalError` "stack overflow"). A script can throw the same values
//! itself and be reported the same way; it gains nothing by it. Time-outs are not
//! read from the exception at all: the interrupt handler records them (see
//! `sandbox`), so no script can pass one off as something else or the reverse.

use rquickjs::{Coerced, Ctx, Value};

use crate::DecodeError;

/// Bytes of an exception text kept in [`DecodeError::Exception`] and friends.
pub(crate) const TEXT_LIMIT: usize = 512;

/// Where in a decode the exception was raised; it decides what a plain
/// exception means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Compiling and running the script's top level, finding `decodeUplink`.
    Load,
    /// Building `input` or calling `decodeUplink`.
    Call,
    /// Serializing the result.
    Output,
}

/// The error for a failed engine call, reading (and clearing) the pending
/// exception if there is one.
pub(crate) fn classify(ctx: &Ctx<'_>, error: rquickjs::Error, phase: Phase) -> DecodeError {
    match error {
        rquickjs::Error::Exception => from_thrown(&ctx.catch(), phase),
        rquickjs::Error::Allocation => DecodeError::OutOfMemory,
        rquickjs::Error::InvalidString(_) if phase == Phase::Load => {
            DecodeError::Syntax("the script contains a NUL character".to_owned())
        }
        other => plain(phase, other.to_string()),
    }
}

fn from_thrown(thrown: &Value<'_>, phase: Phase) -> DecodeError {
    // QuickJS-ng throws null when it cannot allocate the "out of memory" error.
    if thrown.is_null() {
        return DecodeError::OutOfMemory;
    }
    let Some(error) = thrown.as_object().filter(|_| thrown.is_error()) else {
        return plain(phase, describe_value(thrown));
    };
    let name = string_property(error, "name");
    let message = string_property(error, "message");
    match (name.as_deref(), message.as_deref()) {
        (Some("InternalError"), Some("out of memory")) => DecodeError::OutOfMemory,
        (Some("RangeError"), Some("Maximum call stack size exceeded"))
        | (Some("InternalError"), Some("stack overflow")) => DecodeError::StackOverflow,
        (name, message) => {
            let mut text = match (name, message) {
                (Some(name), Some(message)) if !message.is_empty() => format!("{name}: {message}"),
                (Some(name), _) => name.to_owned(),
                (None, Some(message)) => message.to_owned(),
                (None, None) => "an error without a message".to_owned(),
            };
            if let Some(stack) = string_property(error, "stack") {
                let stack = stack.trim_end();
                if !stack.is_empty() {
                    text.push('\n');
                    text.push_str(stack);
                }
            }
            if phase == Phase::Load && name == Some("SyntaxError") {
                DecodeError::Syntax(truncate(text))
            } else {
                plain(phase, text)
            }
        }
    }
}

fn plain(phase: Phase, text: String) -> DecodeError {
    match phase {
        Phase::Load | Phase::Call => DecodeError::Exception(truncate(text)),
        Phase::Output => DecodeError::BadOutput(truncate(text)),
    }
}

/// A string property, if it is one; anything else (or a getter that throws) is
/// treated as absent.
fn string_property(object: &rquickjs::Object<'_>, key: &str) -> Option<String> {
    let value: Value = object.get(key).ok()?;
    value.as_string()?.to_string().ok()
}

/// `String(value)` for something thrown that is not an Error object.
fn describe_value(value: &Value<'_>) -> String {
    match value.get::<Coerced<String>>() {
        Ok(Coerced(text)) => text,
        Err(_) => format!("a thrown {} that cannot be shown", value.type_name()),
    }
}

/// Cuts `text` to at most [`TEXT_LIMIT`] bytes on a character boundary.
pub(crate) fn truncate(mut text: String) -> String {
    if text.len() > TEXT_LIMIT {
        let mut end = TEXT_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_short_text_and_cuts_on_a_char_boundary() {
        assert_eq!(truncate("short".to_owned()), "short");
        let long = "é".repeat(400); // 800 bytes
        let cut = truncate(long);
        assert!(cut.ends_with('…'));
        assert!(cut.len() <= TEXT_LIMIT + '…'.len_utf8());
        assert!(cut.trim_end_matches('…').chars().all(|c| c == 'é'));
    }
}
