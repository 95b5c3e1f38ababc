//! Parsing os-release(5) files: `KEY=value` lines with shell-style quoting and escapes.

use std::collections::HashMap;

/// The assignments of an os-release file. Comments, blank lines, lines that are not a
/// valid assignment and values with an unterminated quote are ignored, as the format asks.
pub(super) fn parse(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            if !is_variable_name(key) {
                return None;
            }
            Some((key.to_owned(), unquote(value)?))
        })
        .collect()
}

fn is_variable_name(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The value of one shell word: single quotes are literal, double quotes allow the
/// escapes `\$`, `` \` ``, `\"` and `\\`, and a backslash outside quotes escapes any
/// character. The word ends at unquoted whitespace; `None` if a quote is unterminated.
fn unquote(word: &str) -> Option<String> {
    let mut value = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => value.push(c),
                }
            },
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        escaped @ ('$' | '`' | '"' | '\\') => value.push(escaped),
                        other => {
                            value.push('\\');
                            value.push(other);
                        }
                    },
                    c => value.push(c),
                }
            },
            '\\' => value.extend(chars.next()),
            c if c.is_whitespace() => break,
            c => value.push(c),
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_escapes() {
        let text = concat!(
            "# a comment\n",
            "ID=ubuntu\n",
            "NAME=\"Ubuntu\"\n",
            "PRETTY_NAME='Ubuntu 24.04.1 LTS'\n",
            "VERSION=\"24.04 \\\"Noble\\\" \\$HOME \\\\ \\n\"\n",
            "ESCAPED=a\\ b\n",
            "CONCAT=\"a\"'b'c\n",
            "TRAILING=\"x\" # comment\n",
            "UNTERMINATED=\"oops\n",
            "1BAD=x\n",
            "not an assignment\n",
            "  INDENTED=yes\r\n",
            "EMPTY=\n",
        );
        let parsed = parse(text);
        let get = |key: &str| parsed.get(key).map(String::as_str);
        assert_eq!(get("ID"), Some("ubuntu"));
        assert_eq!(get("NAME"), Some("Ubuntu"));
        assert_eq!(get("PRETTY_NAME"), Some("Ubuntu 24.04.1 LTS"));
        assert_eq!(get("VERSION"), Some("24.04 \"Noble\" $HOME \\ \\n"));
        assert_eq!(get("ESCAPED"), Some("a b"));
        assert_eq!(get("CONCAT"), Some("abc"));
        assert_eq!(get("TRAILING"), Some("x"));
        assert_eq!(get("UNTERMINATED"), None);
        assert_eq!(get("1BAD"), None);
        assert_eq!(get("INDENTED"), Some("yes"));
        assert_eq!(get("EMPTY"), Some(""));
        assert_eq!(parsed.len(), 9);
    }
}
