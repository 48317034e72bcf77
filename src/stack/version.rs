//! Engine versions as a stack's per-version defaults compare them: the leading dotted
//! numbers of a version string (`0.6.1.post1+rocm` → 0.6.1), part by part, a missing
//! part counting as 0.

use std::cmp::Ordering;

/// The leading dotted numbers of `v` (`"0.6.1.post1+rocm"` → `[0, 6, 1]`; a leading
/// `v` is skipped). None when it starts with no number.
pub fn numeric_parts(v: &str) -> Option<Vec<u64>> {
    let v = v.trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    let mut parts = Vec::new();
    for p in v.split('.') {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            break;
        }
        parts.push(digits.parse().ok()?);
        if digits.len() < p.len() {
            break;
        }
    }
    (!parts.is_empty()).then_some(parts)
}

/// `a` against `b`, part by part (missing parts are 0); None when either has no number.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (numeric_parts(a)?, numeric_parts(b)?);
    let n = a.len().max(b.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    Some(
        (0..n)
            .map(|i| at(&a, i).cmp(&at(&b, i)))
            .fold(Ordering::Equal, Ordering::then),
    )
}

/// Whether `version` (when known) is at least `since` (when given): an unknown or
/// unparsable version takes the stack's default, which is to apply.
pub fn at_least(version: Option<&str>, since: Option<&str>) -> bool {
    match (version, since) {
        (Some(v), Some(s)) => compare(v, s).is_none_or(|o| o != Ordering::Less),
        _ => true,
    }
}

/// Whether `version` is known and at least `until` (when given): a rule that ends at
/// `until` is dropped only for a named version past it.
pub fn reached(version: Option<&str>, until: Option<&str>) -> bool {
    match (version, until) {
        (Some(v), Some(u)) => compare(v, u).is_some_and(|o| o != Ordering::Less),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_their_leading_numbers() {
        assert_eq!(numeric_parts("0.6.1.post1+rocm"), Some(vec![0, 6, 1]));
        assert_eq!(numeric_parts("v0.5.3"), Some(vec![0, 5, 3]));
        assert_eq!(numeric_parts("1.2.0rc6"), Some(vec![1, 2, 0]));
        assert_eq!(numeric_parts("unknown"), None);
        assert_eq!(compare("0.10.2", "0.9.0"), Some(Ordering::Greater));
        assert_eq!(compare("0.5.2", "0.5.3"), Some(Ordering::Less));
        assert_eq!(compare("0.9", "0.9.0"), Some(Ordering::Equal));
        assert!(at_least(Some("0.5.3"), Some("0.5.3")));
        assert!(!at_least(Some("0.5.2"), Some("0.5.3")));
        assert!(at_least(None, Some("0.5.3")));
        assert!(at_least(Some("main"), Some("0.5.3")));
        assert!(at_least(Some("0.1.0"), None));
        assert!(reached(Some("0.6.5"), Some("0.6.5")));
        assert!(reached(Some("0.6.6"), Some("0.6.5")));
        assert!(!reached(Some("0.6.4"), Some("0.6.5")));
        assert!(
            !reached(None, Some("0.6.5")),
            "an unnamed version keeps the rule"
        );
        assert!(!reached(Some("nightly"), Some("0.6.5")));
        assert!(!reached(Some("0.7.0"), None));
    }
}
