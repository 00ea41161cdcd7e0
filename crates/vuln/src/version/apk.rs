//! Alpine package versions, ordered as apk-tools orders them (`src/version.c`). No maintained
//! crate implements the ordering, so it is written here.
//!
//! A version is `digit{.digit}...{letter}{_suffix{digits}}...{~hash}{-rN}`. It is read as a
//! sequence of tokens and two versions compare token by token while the kinds agree. Where the
//! kinds first differ, a pre-release suffix (`_alpha`, `_beta`, `_pre`, `_rc`) is older than
//! anything, and otherwise the side that goes on with an earlier kind of token is newer:
//! `1.0_rc1 < 1 < 1.0 < 1.0a < 1.0.1` and `1.0 < 1.0-r1 < 1.0_p1`. A dotted part with a leading
//! zero compares as a string (`8.2.0015 < 8.2.002`), as Gentoo specifies.

use std::cmp::Ordering;
use std::str::FromStr;

/// A parsed apk version.
#[derive(Debug, Clone)]
pub struct ApkVersion {
    text: String,
    tokens: Vec<Token>,
}

/// Token kinds in apk-tools' order: a token may only be followed by one of a later kind (or
/// another digit / suffix group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    /// Numbers for digit kinds, the byte for letters, the suffix's place for suffixes.
    number: u64,
    /// The token's text as a byte range of the version, for string comparisons.
    start: u32,
    end: u32,
}

/// Suffixes in order; the gap at 5 is "no suffix".
const SUFFIXES: [(&str, u64); 9] = [
    ("alpha", 1),
    ("beta", 2),
    ("pre", 3),
    ("rc", 4),
    ("cvs", 6),
    ("svn", 7),
    ("git", 8),
    ("hg", 9),
    ("p", 10),
];
const SUFFIX_NONE: u64 = 5;

/// Why a string is not an apk version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an apk version: {0:?}")]
pub struct ApkVersionError(String);

impl FromStr for ApkVersion {
    type Err = ApkVersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || ApkVersionError(text.to_string());
        if text.len() > u32::MAX as usize {
            return Err(err());
        }
        let bytes = text.as_bytes();
        let mut tokens = Vec::new();
        let mut i = 0usize;
        let digits = |i: &mut usize| -> Option<(u64, usize)> {
            let start = *i;
            let mut n: u64 = 0;
            while let Some(d) = bytes.get(*i).filter(|b| b.is_ascii_digit()) {
                n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
                *i += 1;
            }
            (*i > start).then_some((n, start))
        };
        let (n, start) = digits(&mut i).ok_or_else(err)?;
        let mut last = Kind::InitialDigit;
        tokens.push(Token {
            kind: last,
            number: n,
            start: start as u32,
            end: i as u32,
        });
        while i < bytes.len() {
            let c = bytes[i];
            let token = match c {
                b'a'..=b'z' if last <= Kind::Digit => {
                    i += 1;
                    Token {
                        kind: Kind::Letter,
                        number: u64::from(c),
                        start: (i - 1) as u32,
                        end: i as u32,
                    }
                }
                b'.' | b'0'..=b'9' => {
                    if c == b'.' {
                        if last > Kind::Digit {
                            return Err(err());
                        }
                        i += 1;
                    }
                    let kind = match last {
                        Kind::InitialDigit | Kind::Digit => Kind::Digit,
                        Kind::Suffix => Kind::SuffixNo,
                        _ => return Err(err()),
                    };
                    let (n, start) = digits(&mut i).ok_or_else(err)?;
                    Token {
                        kind,
                        number: n,
                        start: start as u32,
                        end: i as u32,
                    }
                }
                b'_' if last <= Kind::SuffixNo => {
                    i += 1;
                    let start = i;
                    while bytes.get(i).is_some_and(u8::is_ascii_lowercase) {
                        i += 1;
                    }
                    let word = &text[start..i];
                    let (_, place) = SUFFIXES.iter().find(|(s, _)| *s == word).ok_or_else(err)?;
                    Token {
                        kind: Kind::Suffix,
                        number: *place,
                        start: start as u32,
                        end: i as u32,
                    }
                }
                b'~' if last < Kind::CommitHash => {
                    i += 1;
                    let start = i;
                    while bytes.get(i).is_some_and(u8::is_ascii_hexdigit) {
                        i += 1;
                    }
                    if i == start {
                        return Err(err());
                    }
                    Token {
                        kind: Kind::CommitHash,
                        number: 0,
                        start: start as u32,
                        end: i as u32,
                    }
                }
                b'-' if last < Kind::RevisionNo && bytes.get(i + 1) == Some(&b'r') => {
                    i += 2;
                    let (n, start) = digits(&mut i).ok_or_else(err)?;
                    Token {
                        kind: Kind::RevisionNo,
                        number: n,
                        start: start as u32,
                        end: i as u32,
                    }
                }
                _ => return Err(err()),
            };
            last = token.kind;
            tokens.push(token);
        }
        tokens.push(Token {
            kind: Kind::End,
            number: 0,
            start: i as u32,
            end: i as u32,
        });
        Ok(ApkVersion {
            text: text.to_string(),
            tokens,
        })
    }
}

impl ApkVersion {
    fn text_of(&self, t: &Token) -> &[u8] {
        &self.text.as_bytes()[t.start as usize..t.end as usize]
    }

    /// Where a token stands when the two versions differ in kind at one position.
    fn rank(t: &Token) -> u8 {
        match t.kind {
            Kind::Suffix if t.number < SUFFIX_NONE => 0,
            Kind::End => 1,
            Kind::RevisionNo => 2,
            Kind::CommitHash => 3,
            Kind::SuffixNo => 4,
            Kind::Suffix => 5,
            Kind::Letter => 6,
            Kind::Digit => 7,
            Kind::InitialDigit => 8,
        }
    }

    fn cmp_token(&self, a: &Token, other: &ApkVersion, b: &Token) -> Ordering {
        if a.kind != b.kind {
            return Self::rank(a).cmp(&Self::rank(b));
        }
        let (ta, tb) = (self.text_of(a), other.text_of(b));
        let as_string = match a.kind {
            Kind::Digit => ta.first() == Some(&b'0') || tb.first() == Some(&b'0'),
            Kind::CommitHash | Kind::End => true,
            _ => false,
        };
        if as_string {
            ta.cmp(tb)
        } else {
            a.number.cmp(&b.number)
        }
    }
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.tokens.iter().zip(&other.tokens) {
            let ord = self.cmp_token(a, other, b);
            if ord != Ordering::Equal || a.kind == Kind::End {
                return ord;
            }
        }
        Ordering::Equal
    }
}

same_text_ordering!(ApkVersion);

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ApkVersion {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn table_from_apk_tools_and_secdb() {
        let less = [
            ("1.0", "1.1"),
            ("1", "1.0"),
            ("1.0_alpha1", "1.0"),
            ("1.0_alpha", "1.0_beta"),
            ("1.0_beta", "1.0_pre"),
            ("1.0_pre", "1.0_rc"),
            ("1.0_rc1", "1.0"),
            ("1", "1.0_rc1"),
            ("1.0", "1.0_cvs"),
            ("1.0_cvs", "1.0_svn"),
            ("1.0_git", "1.0_hg"),
            ("1.0_hg", "1.0_p1"),
            ("1.0_p1", "1.0_p2"),
            ("1.0_p9", "1.0_p10"),
            ("1.0-r0", "1.0-r1"),
            ("1.0-r9", "1.0-r10"),
            ("1.0", "1.0-r1"),
            ("1.0-r1", "1.0_p1"),
            ("1.0a", "1.0b"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0.1"),
            ("8.2.0015", "8.2.002"),
            ("1.001", "1.01"),
            ("1.01", "1.1"),
            ("1.2.3_rc1-r0", "1.2.3-r0"),
            ("1.1.1d-r0", "1.1.1d-r2"),
            ("1.1.1d-r3", "1.1.1g-r0"),
            ("2.9.9-r3", "2.9.10-r0"),
            ("0.9.8y", "1.0.1e-r0"),
            ("1.0_alpha1", "1.0_alpha2"),
            ("1.0_alpha1", "1.0_alpha_p1"),
            ("1.0_alpha_beta", "1.0_alpha1"),
            ("7.66.0-r3", "7.66.0-r4"),
            ("1.31.1-r9", "1.31.1-r10"),
            ("1.0~abc", "1.0~abd"),
            ("1.0", "1.0~abc"),
            ("1.0~abc", "1.0~abc-r1"),
            ("1.0_rc1", "1.0~abc"),
        ];
        for (a, b) in less {
            assert_eq!(v(a).cmp(&v(b)), Ordering::Less, "{a} < {b}");
            assert_eq!(v(b).cmp(&v(a)), Ordering::Greater, "{b} > {a}");
        }
        assert_eq!(v("1.0-r0"), v("1.0-r0"));
        assert_eq!(v("01.2"), v("1.2"), "the first part is always numeric");
        assert_eq!(v("1.0-r0").to_string(), "1.0-r0");
    }

    #[test]
    fn rejects_what_apk_rejects() {
        for bad in [
            "",
            "a1",
            "1.0_foo",
            "1.0-x1",
            "1..",
            "1.0-",
            "1.0-r",
            "1.0_rc1a",
            "1.0 ",
            "1.0-r1.2",
            "1.0~",
            "1.0-r1_p1",
            "1.0a.1",
        ] {
            assert!(bad.parse::<ApkVersion>().is_err(), "{bad:?}");
        }
        for good in [
            "1.0_",
            "1_alpha_beta2_p3",
            "1.2.3a_rc1~deadbeef-r12",
            "20191127-r2",
        ] {
            // `1.0_` is an empty suffix word, which apk rejects too.
            assert_eq!(
                good.parse::<ApkVersion>().is_ok(),
                good != "1.0_",
                "{good:?}"
            );
        }
    }
}
