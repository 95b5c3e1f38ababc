//! One severity level for a match, from whatever the record gives: a CVSS v3
//! vector (its base score, computed per the CVSS v3.1 specification), an
//! Ubuntu priority, or Debian's urgency.
//!
//! CVSS v4 vectors and v2 vectors are not scored (v4's score needs the
//! specification's lookup tables; v2 is obsolete), so a record that has only
//! those, and no distribution rating, is [`Level::Unknown`] rather than
//! guessed at. Where a record has several, the highest level counts.

use std::fmt;

use crate::osv::Severity;

/// A severity level, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    /// Every level, most severe first.
    pub const ALL: [Level; 5] = [
        Level::Critical,
        Level::High,
        Level::Medium,
        Level::Low,
        Level::Unknown,
    ];

    /// The level's name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unknown => "unknown",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// The level named `name`.
    pub fn parse(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.as_str() == name)
    }

    /// The level of a CVSS base score (`0.0` is "none", read as low).
    pub fn of_score(score: f64) -> Level {
        match score {
            s if s >= 9.0 => Level::Critical,
            s if s >= 7.0 => Level::High,
            s if s >= 4.0 => Level::Medium,
            _ => Level::Low,
        }
    }

    /// The level of a Debian urgency or an Ubuntu priority (`unimportant`
    /// and `negligible` are low; `not yet assigned` and anything else is
    /// unknown).
    pub fn of_rating(rating: &str) -> Level {
        let rating = rating.trim().trim_end_matches('*').trim();
        match rating.to_ascii_lowercase().as_str() {
            "critical" => Level::Critical,
            "high" | "important" => Level::High,
            "medium" | "moderate" => Level::Medium,
            "low" | "unimportant" | "negligible" => Level::Low,
            _ => Level::Unknown,
        }
    }

    /// The highest level among `scores` and the distribution's `urgency`.
    pub fn assess(scores: &[Severity], urgency: Option<&str>) -> Level {
        let scored = scores.iter().map(|severity| match severity.kind.as_str() {
            "CVSS_V3" => cvss3_base_score(&severity.score).map_or(Level::Unknown, Level::of_score),
            "Ubuntu" => Level::of_rating(&severity.score),
            _ => Level::Unknown,
        });
        scored
            .chain(urgency.map(Level::of_rating))
            .max()
            .unwrap_or(Level::Unknown)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CVSS v3.0/v3.1 base score of `vector`
/// (`CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H`), or `None` if a base
/// metric is missing or unknown.
pub fn cvss3_base_score(vector: &str) -> Option<f64> {
    if !vector.starts_with("CVSS:3.") {
        return None;
    }
    let value = |name: &str| -> Option<String> {
        vector.split('/').skip(1).find_map(|metric| {
            let (key, value) = metric.split_once(':')?;
            (key == name).then(|| value.to_owned())
        })
    };
    let changed = match value("S")?.as_str() {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let attack_vector = match value("AV")?.as_str() {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let complexity = match value("AC")?.as_str() {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let privileges = match (value("PR")?.as_str(), changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let interaction = match value("UI")?.as_str() {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let impact_of = |name: &str| -> Option<f64> {
        match value(name)?.as_str() {
            "H" => Some(0.56),
            "L" => Some(0.22),
            "N" => Some(0.0),
            _ => None,
        }
    };
    let (c, i, a) = (impact_of("C")?, impact_of("I")?, impact_of("A")?);
    let base_impact = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if changed {
        7.52 * (base_impact - 0.029) - 3.25 * (base_impact - 0.02).powi(15)
    } else {
        6.42 * base_impact
    };
    if impact <= 0.0 {
        return Some(0.0);
    }
    let exploitability = 8.22 * attack_vector * complexity * privileges * interaction;
    let sum = if changed {
        1.08 * (impact + exploitability)
    } else {
        impact + exploitability
    };
    Some(round_up(sum.min(10.0)))
}

/// CVSS v3.1's "Roundup": the smallest one-decimal number not below `value`,
/// computed so that floating-point noise does not push 4.0 to 4.1.
fn round_up(value: f64) -> f64 {
    let scaled = (value * 100_000.0).round() as i64;
    if scaled % 10_000 == 0 {
        scaled as f64 / 100_000.0
    } else {
        ((scaled / 10_000) + 1) as f64 / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(vector: &str) -> Option<f64> {
        cvss3_base_score(vector)
    }

    #[test]
    fn base_scores_match_the_specifications_examples() {
        // Scores as NVD's calculator gives them.
        for (vector, expected) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ] {
            assert_eq!(score(vector), Some(expected), "{vector}");
        }
    }

    #[test]
    fn incomplete_or_foreign_vectors_have_no_score() {
        for vector in [
            "",
            "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
            "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:Q/C:H/I:H/A:H",
        ] {
            assert_eq!(score(vector), None, "{vector}");
        }
    }

    #[test]
    fn the_highest_of_all_ratings_counts() {
        let cvss = |vector: &str| Severity {
            kind: "CVSS_V3".into(),
            score: vector.into(),
        };
        let ubuntu = |priority: &str| Severity {
            kind: "Ubuntu".into(),
            score: priority.into(),
        };
        assert_eq!(Level::assess(&[], None), Level::Unknown);
        assert_eq!(Level::assess(&[], Some("not yet assigned")), Level::Unknown);
        assert_eq!(Level::assess(&[], Some("unimportant")), Level::Low);
        assert_eq!(Level::assess(&[], Some("medium*")), Level::Medium);
        assert_eq!(Level::assess(&[ubuntu("high")], Some("low")), Level::High);
        assert_eq!(
            Level::assess(
                &[cvss("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")],
                Some("low")
            ),
            Level::Critical
        );
        assert_eq!(
            Level::assess(&[cvss("CVSS:4.0/AV:N/AC:L/AT:N")], None),
            Level::Unknown
        );
    }

    #[test]
    fn levels_round_trip_through_their_names() {
        for level in Level::ALL {
            assert_eq!(Level::parse(level.as_str()), Some(level));
        }
        assert_eq!(Level::parse("severe"), None);
        assert!(Level::Critical > Level::High && Level::Low > Level::Unknown);
    }
}
