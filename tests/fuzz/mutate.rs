//! Byte-level mutations of seed inputs, deterministic per seed.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Fragments that hit parsers' edge cases: numbers at and beyond type limits,
/// non-finite spellings, separators, quotes and brackets.
const TOKENS: &[&str] = &[
    "-1",
    "0",
    "-0",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "1e308",
    "1e-320",
    "4294967295",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999",
    "0.5",
    "-1e9",
    "1e400",
    "\"",
    "\"\"",
    ",",
    ",,",
    "\n",
    "\r\n",
    "\t",
    " ",
    "{",
    "}",
    "[",
    "]",
    ":",
    "=",
    "null",
    "true",
    "[]",
    "{}",
    "\u{feff}",
    "é",
    "\u{0}",
    "#",
    "'",
    "\\",
    "[[",
    "]]",
    "0x10",
    "1_000",
];

/// A mutator drawing from one seed.
pub(crate) struct Mutator {
    rng: ChaCha8Rng,
}

impl Mutator {
    pub(crate) fn new(seed: u64) -> Self {
        Mutator {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }

    /// `seed` with one to four mutations; `other` is spliced from.
    pub(crate) fn mutate(&mut self, seed: &[u8], other: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        let n = 1 + self.below(4);
        for _ in 0..n {
            self.one(&mut v, other);
        }
        v
    }

    fn one(&mut self, v: &mut Vec<u8>, other: &[u8]) {
        let len = v.len();
        match self.below(9) {
            // Overwrite a byte.
            0 if len > 0 => {
                let i = self.below(len);
                v[i] = self.rng.random();
            }
            // Insert a fragment.
            1 | 2 => {
                let i = self.below(len + 1);
                let t = TOKENS[self.below(TOKENS.len())].as_bytes();
                v.splice(i..i, t.iter().copied());
            }
            // Replace a number-like run with a fragment.
            3 if len > 0 => {
                let i = self.below(len);
                let mut j = i;
                while j < len && (v[j].is_ascii_alphanumeric() || b".-+".contains(&v[j])) {
                    j += 1;
                }
                let t = TOKENS[self.below(TOKENS.len())].as_bytes();
                v.splice(i..j.max(i + 1).min(len), t.iter().copied());
            }
            // Delete a range.
            4 if len > 0 => {
                let i = self.below(len);
                let j = (i + 1 + self.below(32)).min(len);
                v.drain(i..j);
            }
            // Duplicate a range (long lines, repeated keys and rows).
            5 if len > 0 => {
                let i = self.below(len);
                let j = (i + 1 + self.below(256)).min(len);
                let copy = v[i..j].to_vec();
                let at = self.below(len + 1);
                v.splice(at..at, copy);
            }
            // Truncate.
            6 => {
                let i = self.below(len + 1);
                v.truncate(i);
            }
            // Splice a range of another seed.
            7 if !other.is_empty() => {
                let i = self.below(other.len());
                let j = (i + 1 + self.below(128)).min(other.len());
                let at = self.below(len + 1);
                v.splice(at..at, other[i..j].iter().copied());
            }
            // Flip a bit.
            _ if len > 0 => {
                let i = self.below(len);
                v[i] ^= 1 << self.below(8);
            }
            _ => v.extend_from_slice(TOKENS[self.below(TOKENS.len())].as_bytes()),
        }
    }
}
