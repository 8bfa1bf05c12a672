//! `InputDigitsRegex`: the regex dialect digits are matched with.
//!
//! Handlers written for the hosted service run on JavaScript and Java, whose regex dialects
//! have look-ahead, look-behind and back-references (`^(?!1900)1\d{10}$` refuses premium
//! numbers). Rust's `regex` crate has none of them, by design: it guarantees linear-time
//! matching. So a pattern is compiled with `regex` when it can be, which is nearly always,
//! and with `fancy-regex` (a backtracking engine that delegates the plain parts to `regex`)
//! only when it needs look-around or back-references. Backtracking can take exponential
//! time on a hostile pattern, so each match has a step limit: past it the match fails
//! (counted as no match) instead of stalling the call.

use crate::prelude::*;
use core::fmt;

/// Backtracking steps one match may take. Digit strings are at most 128 characters; a
/// reasonable look-around pattern needs a few hundred steps, and this many take well under
/// a millisecond.
pub const BACKTRACK_LIMIT: usize = 100_000;

/// A compiled `InputDigitsRegex`.
#[derive(Clone)]
pub struct DigitsPattern {
    pattern: String,
    engine: Engine,
}

#[derive(Clone)]
enum Engine {
    /// Linear time: everything Rust's `regex` syntax covers.
    Plain(regex::Regex),
    /// Look-around or back-references, with a step limit.
    Backtracking(fancy_regex::Regex),
}

/// Why a pattern could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// Not a valid pattern in either dialect.
    Invalid(String),
    /// The match gave up after [`BACKTRACK_LIMIT`] steps.
    TooComplex,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(why) => f.write_str(why),
            Self::TooComplex => write!(
                f,
                "the match gave up after {BACKTRACK_LIMIT} backtracking steps"
            ),
        }
    }
}

impl DigitsPattern {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        let engine = match regex::Regex::new(pattern) {
            Ok(plain) => Engine::Plain(plain),
            Err(plain_error) => fancy_regex::RegexBuilder::new(pattern)
                .backtrack_limit(BACKTRACK_LIMIT)
                .build()
                .map(Engine::Backtracking)
                .map_err(|_| PatternError::Invalid(plain_error.to_string()))?,
        };
        Ok(Self {
            pattern: pattern.to_owned(),
            engine,
        })
    }

    /// Whether the pattern matches somewhere in `digits` (find semantics, like JavaScript's
    /// `RegExp.test`).
    pub fn is_match(&self, digits: &str) -> Result<bool, PatternError> {
        match &self.engine {
            Engine::Plain(r) => Ok(r.is_match(digits)),
            Engine::Backtracking(r) => r.is_match(digits).map_err(|_| PatternError::TooComplex),
        }
    }

    /// Whether the pattern needed the backtracking engine.
    pub fn is_backtracking(&self) -> bool {
        matches!(self.engine, Engine::Backtracking(_))
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

impl fmt::Debug for DigitsPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DigitsPattern").field(&self.pattern).finish()
    }
}

/// Checks `pattern`'s syntax without compiling it (parsing costs a few microseconds,
/// compiling ten times that): the `regex` syntax first, then the backtracking dialect.
pub(crate) fn check_syntax(pattern: &str) -> Result<(), String> {
    match regex_syntax::ParserBuilder::new()
        .nest_limit(64)
        .build()
        .parse(pattern)
    {
        Ok(_) => Ok(()),
        Err(plain) => fancy_regex::Expr::parse_tree(pattern)
            .map(|_| ())
            .map_err(|_| plain.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_patterns_use_the_linear_time_engine() {
        let p = DigitsPattern::new(r"^\d{2}#$").unwrap();
        assert!(!p.is_backtracking());
        assert_eq!(p.is_match("12#"), Ok(true));
        assert_eq!(p.is_match("123#"), Ok(false));
        assert_eq!(
            DigitsPattern::new("[0-9]").unwrap().is_match("x5"),
            Ok(true)
        );
    }

    #[test]
    fn look_ahead_refuses_premium_numbers() {
        let p = DigitsPattern::new(r"^(?!1900)1\d{10}$").unwrap();
        assert!(p.is_backtracking());
        assert_eq!(p.is_match("12065550100"), Ok(true));
        assert_eq!(p.is_match("19005550100"), Ok(false));
        assert_eq!(p.is_match("1206555010"), Ok(false));
    }

    #[test]
    fn look_behind_and_back_references() {
        let p = DigitsPattern::new(r"(?<=\*)\d+#$").unwrap();
        assert_eq!(p.is_match("*123#"), Ok(true));
        assert_eq!(p.is_match("123#"), Ok(false));
        let twice = DigitsPattern::new(r"^(\d)\1$").unwrap();
        assert_eq!(twice.is_match("77"), Ok(true));
        assert_eq!(twice.is_match("78"), Ok(false));
    }

    #[test]
    fn a_hostile_pattern_gives_up_instead_of_stalling() {
        // Catastrophic backtracking: every way of splitting the digits into `(\d)\1?` is
        // tried before the `x` after the end fails.
        let p = DigitsPattern::new(r"^(?:(\d)\1?)+$x").unwrap();
        let digits = "1".repeat(128);
        assert_eq!(p.is_match(&digits), Err(PatternError::TooComplex));
    }

    #[test]
    fn invalid_patterns_name_the_problem() {
        for bad in ["([0-9]", "(?!1", "[", r"\"] {
            let err = DigitsPattern::new(bad).unwrap_err();
            assert!(
                matches!(err, PatternError::Invalid(ref why) if !why.is_empty()),
                "{bad}"
            );
            assert!(check_syntax(bad).is_err(), "{bad}");
        }
        assert!(check_syntax(r"^(?!1900)1\d{10}$").is_ok());
        assert!(check_syntax(r"^\d{4}$").is_ok());
        // JavaScript's named back-reference and a literal brace.
        assert!(check_syntax(r"^(?<n>\d)\k<n>$").is_ok());
        assert_eq!(DigitsPattern::new("1{").unwrap().is_match("21{"), Ok(true));
    }
}
