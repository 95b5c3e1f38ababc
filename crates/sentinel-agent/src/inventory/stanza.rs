//! Splitting dpkg- and apk-style databases into blank-line separated stanzas.

use super::numbered_lines;

/// A run of non-blank lines, each with its 1-based line number.
pub(super) struct Stanza<'a> {
    /// The line number of the stanza's first line.
    pub(super) first_line: usize,
    pub(super) lines: Vec<(usize, &'a str)>,
}

/// The stanzas of `text`, in order. Lines holding only whitespace separate stanzas, and
/// `\r\n` line endings are accepted.
pub(super) fn stanzas(text: &str) -> impl Iterator<Item = Stanza<'_>> {
    let mut lines = numbered_lines(text).peekable();
    std::iter::from_fn(move || {
        while lines.next_if(|(_, line)| line.trim().is_empty()).is_some() {}
        let mut stanza = Vec::new();
        while let Some(line) = lines.next_if(|(_, line)| !line.trim().is_empty()) {
            stanza.push(line);
        }
        let first_line = stanza.first()?.0;
        Some(Stanza {
            first_line,
            lines: stanza,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_whitespace_lines_separate_stanzas() {
        let text = "\n\nA: 1\r\nB: 2\r\n\r\n  \t\nC: 3\n\n";
        let found: Vec<_> = stanzas(text)
            .map(|s| {
                (
                    s.first_line,
                    s.lines.iter().map(|(_, l)| *l).collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(found, [(3, vec!["A: 1", "B: 2"]), (7, vec!["C: 3"])]);
    }

    #[test]
    fn empty_input_has_no_stanzas() {
        assert_eq!(stanzas("").count(), 0);
        assert_eq!(stanzas("\n \n\r\n").count(), 0);
    }
}
