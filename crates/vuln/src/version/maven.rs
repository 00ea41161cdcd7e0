//! Maven versions, ordered as Maven's `ComparableVersion` orders them. No maintained crate
//! implements the ordering, so it is written here from Maven's documented rules:
//!
//! - the version is split into items at `.`, at `-` (which opens a nested list) and at each
//!   change between digits and letters (which also opens a nested list);
//! - numbers compare numerically; words are qualifiers ordered
//!   `alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp`, any other
//!   word after those, alphabetically; `a1`, `b1`, `m1` mean alpha, beta, milestone;
//! - trailing zeros and release qualifiers are dropped from each list (`1.0.0 = 1 = 1-ga`);
//! - a number is newer than a word or a list, a list newer than a word.

use std::cmp::Ordering;

/// A parsed Maven version.
#[derive(Debug, Clone)]
pub struct MavenVersion {
    text: String,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Digits without leading zeros ("" is zero).
    Int(String),
    /// A qualifier's sort key.
    Str(String),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
/// The sort key of a release (`""`, `ga`, `final`, `release`).
const RELEASE_KEY: &str = "5";

fn qualifier_key(word: &str) -> String {
    match QUALIFIERS.iter().position(|q| *q == word) {
        Some(n) => n.to_string(),
        None => format!("{}-{word}", QUALIFIERS.len()),
    }
}

fn word_item(word: &str, followed_by_digit: bool) -> Item {
    let word = match word {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        w => w,
    };
    Item::Str(qualifier_key(word))
}

fn int_item(digits: &str) -> Item {
    Item::Int(digits.trim_start_matches('0').to_string())
}

impl MavenVersion {
    /// Parses a Maven version; every string is one.
    pub fn parse(text: &str) -> MavenVersion {
        let lower = text.trim().to_ascii_lowercase();
        // The list being filled is the last one on the path from the root; lists are built
        // bottom-up when the path is unwound.
        let mut path: Vec<Vec<Item>> = vec![Vec::new()];
        let mut is_digit = false;
        let mut start = 0;
        let chars: Vec<char> = lower.chars().collect();
        let word = |from: usize, to: usize| -> String { chars[from..to].iter().collect() };
        for (i, &c) in chars.iter().enumerate() {
            let list = path.last_mut().expect("path holds the root");
            match c {
                '.' | '-' => {
                    if i == start {
                        list.push(Item::Int(String::new()));
                    } else if is_digit {
                        list.push(int_item(&word(start, i)));
                    } else {
                        list.push(word_item(&word(start, i), false));
                    }
                    start = i + 1;
                    if c == '-' {
                        path.push(Vec::new());
                    }
                }
                d if d.is_ascii_digit() => {
                    if !is_digit && i > start {
                        list.push(word_item(&word(start, i), true));
                        start = i;
                        path.push(Vec::new());
                    }
                    is_digit = true;
                }
                _ => {
                    if is_digit && i > start {
                        list.push(int_item(&word(start, i)));
                        start = i;
                        path.push(Vec::new());
                    }
                    is_digit = false;
                }
            }
        }
        if chars.len() > start {
            let item = if is_digit {
                int_item(&word(start, chars.len()))
            } else {
                word_item(&word(start, chars.len()), false)
            };
            path.last_mut().expect("path holds the root").push(item);
        }
        while path.len() > 1 {
            let mut list = path.pop().expect("checked");
            normalize(&mut list);
            path.last_mut().expect("checked").push(Item::List(list));
        }
        let mut items = path.pop().expect("path holds the root");
        normalize(&mut items);
        MavenVersion {
            text: text.to_string(),
            items,
        }
    }
}

/// Drops trailing "null" items (zero, release, empty list), stopping at a non-null item that
/// is not a list.
fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if is_null(&list[i]) {
            list.remove(i);
        } else if !matches!(list[i], Item::List(_)) {
            break;
        }
    }
}

fn is_null(item: &Item) -> bool {
    match item {
        Item::Int(d) => d.is_empty(),
        Item::Str(k) => k == RELEASE_KEY,
        Item::List(l) => l.is_empty(),
    }
}

/// Compares an item with another or with nothing (`None`).
fn cmp_item(a: &Item, b: Option<&Item>) -> Ordering {
    match (a, b) {
        (Item::Int(d), None) => {
            if d.is_empty() {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        (Item::Int(x), Some(Item::Int(y))) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
        (Item::Int(_), Some(_)) => Ordering::Greater,
        (Item::Str(k), None) => k.as_str().cmp(RELEASE_KEY),
        (Item::Str(_), Some(Item::Int(_) | Item::List(_))) => Ordering::Less,
        (Item::Str(x), Some(Item::Str(y))) => x.cmp(y),
        (Item::List(l), None) => l
            .first()
            .map_or(Ordering::Equal, |first| cmp_item(first, None)),
        (Item::List(_), Some(Item::Int(_))) => Ordering::Less,
        (Item::List(_), Some(Item::Str(_))) => Ordering::Greater,
        (Item::List(x), Some(Item::List(y))) => cmp_lists(x, y),
    }
}

fn cmp_lists(x: &[Item], y: &[Item]) -> Ordering {
    for i in 0..x.len().max(y.len()) {
        let ord = match (x.get(i), y.get(i)) {
            (Some(l), r) => cmp_item(l, r),
            (None, Some(r)) => cmp_item(r, None).reverse(),
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

impl Ord for MavenVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_lists(&self.items, &other.items)
    }
}

same_text_ordering!(MavenVersion);

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> MavenVersion {
        MavenVersion::parse(s)
    }

    /// The ordered list from Maven's ComparableVersionTest.
    #[test]
    fn versions_in_order() {
        let ordered = [
            "1",
            "1.1",
            "1.2",
            "1.2.3",
            "1.2.4",
            "1.3",
            "1.10",
            "2.0-alpha-1",
            "2.0-alpha-2",
            "2.0-beta-1",
            "2.0-rc-1",
            "2.0-SNAPSHOT",
            "2.0",
            "2.0-sp-1",
            "2.0.1",
            "2.0.1-xyz",
            "2.0.1-123",
            "3.0",
            "10.0",
        ];
        for w in ordered.windows(2) {
            assert_eq!(v(w[0]).cmp(&v(w[1])), Ordering::Less, "{} < {}", w[0], w[1]);
            assert_eq!(
                v(w[1]).cmp(&v(w[0])),
                Ordering::Greater,
                "{} > {}",
                w[1],
                w[0]
            );
        }
    }

    #[test]
    fn equal_spellings() {
        let groups: &[&[&str]] = &[
            &[
                "1",
                "1.0",
                "1.0.0",
                "1-0",
                "1.0-0",
                "1-ga",
                "1.ga",
                "1-final",
                "1.0.0-release",
                "1-GA",
            ],
            &["1a1", "1-a1", "1.0-alpha1", "1-alpha-1", "1alpha1"],
            &["1b2", "1-beta-2", "1.0beta2"],
            &["1m3", "1.0-milestone-3", "1-MILESTONE3"],
            &["1rc", "1cr", "1-rc", "1.0-CR"],
        ];
        for group in groups {
            for a in *group {
                for b in *group {
                    assert_eq!(v(a), v(b), "{a} = {b}");
                }
            }
        }
    }

    #[test]
    fn qualifiers_and_numbers() {
        let less = [
            ("1-alpha", "1-beta"),
            ("1-beta", "1-milestone"),
            ("1-milestone", "1-rc"),
            ("1-rc", "1-snapshot"),
            ("1-snapshot", "1"),
            ("1", "1-sp"),
            ("1-sp", "1-abc"),
            ("1-abc", "1-abd"),
            ("1-abc", "1.1"),
            ("1.0.0-alpha", "1.0.0"),
            ("2.12.7.1", "2.12.7.2"),
            ("2.9.10.7", "2.9.10.8"),
            ("2.13.4", "2.13.4.2"),
            ("5.3.17", "5.3.18"),
            ("1.2.3-1", "1.2.3.1"),
            ("9999999999999999999", "10000000000000000000"),
        ];
        for (a, b) in less {
            assert_eq!(v(a).cmp(&v(b)), Ordering::Less, "{a} < {b}");
            assert_eq!(v(b).cmp(&v(a)), Ordering::Greater, "{b} > {a}");
        }
    }
}
