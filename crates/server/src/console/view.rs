//! What a console URL asks for: its query parameters, and the scope time every page has (a
//! preset — 1 h, 24 h, 7 d, 30 d, everything — or a start and end), so that a link reproduces
//! the page.

use std::str::FromStr;

/// The longest query string a page reads.
const MAX_QUERY: usize = 8 * 1024;

/// A page's query parameters, in order (a name may repeat).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// The parameters of a raw query string (an overlong one reads as none).
    pub fn parse(raw: Option<&str>) -> Query {
        let raw = raw.filter(|r| r.len() <= MAX_QUERY).unwrap_or("");
        Query {
            pairs: form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The fields of a form body (its size bounded by the caller).
    pub fn parse_form(body: &str) -> Query {
        Query {
            pairs: form_urlencoded::parse(body.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// This query with `changes` applied (an empty value removes the parameter), as a query
    /// string.
    pub fn with(&self, changes: &[(&str, &str)]) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            if v.is_empty() || changes.iter().any(|(c, _)| c == k) {
                continue;
            }
            out.append_pair(k, v);
        }
        for (k, v) in changes {
            if !v.is_empty() {
                out.append_pair(k, v);
            }
        }
        out.finish()
    }

    /// This query without the parameters named in `names`.
    pub fn without(&self, names: &[&str]) -> Query {
        Query {
            pairs: self
                .pairs
                .iter()
                .filter(|(k, _)| !names.contains(&k.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// This query, or when it names no scope time, this query with the scope of `default` (a
    /// query string).
    pub fn scoped_or(&self, default: &str) -> Query {
        if ["range", "since", "until"]
            .iter()
            .any(|k| self.get(k).is_some())
        {
            return self.clone();
        }
        let mut q = self.clone();
        q.pairs.extend(Query::parse(Some(default)).pairs);
        q
    }

    /// Only the parameters named in `keep`, as a query string.
    pub fn only(&self, keep: &[&str]) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            if !v.is_empty() && keep.contains(&k.as_str()) {
                out.append_pair(k, v);
            }
        }
        out.finish()
    }
}

/// The presets, with their length in milliseconds (`None`: everything).
pub const PRESETS: &[(&str, &str, Option<i64>)] = &[
    ("1h", "1 h", Some(3_600_000)),
    ("24h", "24 h", Some(86_400_000)),
    ("7d", "7 d", Some(7 * 86_400_000)),
    ("30d", "30 d", Some(30 * 86_400_000)),
    ("all", "All", None),
];

/// The preset a page opens with.
pub const DEFAULT_PRESET: &str = "7d";

/// The time a page covers.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The preset's name, or `custom` for a start and end.
    pub preset: String,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

impl Scope {
    /// The scope a query asks for: `since`/`until` (RFC 3339, or a browser's local date-time
    /// read as UTC) win over `range`; an unknown preset or time is an error naming it.
    pub fn of(q: &Query, now_ms: i64) -> Result<Scope, String> {
        let since = q.get("since").map(|t| time("since", t)).transpose()?;
        let until = q.get("until").map(|t| time("until", t)).transpose()?;
        if since.is_some() || until.is_some() {
            if let (Some(s), Some(u)) = (since, until)
                && s >= u
            {
                return Err("since: must be before until".into());
            }
            return Ok(Scope {
                preset: "custom".into(),
                since_ms: since,
                until_ms: until,
            });
        }
        let name = q.get("range").unwrap_or(DEFAULT_PRESET);
        let Some((name, _, len)) = PRESETS.iter().find(|(n, _, _)| *n == name) else {
            return Err(format!(
                "range {name:?}: expected one of {}",
                PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
            ));
        };
        Ok(Scope {
            preset: (*name).to_string(),
            since_ms: len.map(|l| now_ms - l),
            until_ms: None,
        })
    }

    /// `since` as RFC 3339, if bounded.
    pub fn since(&self) -> Option<String> {
        self.since_ms.map(rfc3339)
    }

    /// `until` as RFC 3339, if bounded.
    pub fn until(&self) -> Option<String> {
        self.until_ms.map(rfc3339)
    }

    /// The value of a `datetime-local` input for a bound (UTC, to the minute).
    pub fn input(ms: Option<i64>) -> String {
        ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map(|t| t.strftime("%Y-%m-%dT%H:%M").to_string())
            .unwrap_or_default()
    }

    /// A link that shows exactly this window to anyone who opens it later: a preset's window
    /// as absolute times.
    pub fn permalink(&self, q: &Query, now_ms: i64) -> String {
        let since = self.since().unwrap_or_default();
        let until = self.until().unwrap_or_else(|| rfc3339(now_ms));
        if self.since_ms.is_none() {
            return q.with(&[("range", "all"), ("since", ""), ("until", "")]);
        }
        q.with(&[("range", ""), ("since", &since), ("until", &until)])
    }
}

/// The query of a window around something that happened from `first_ms` to `last_ms`: the
/// hour before it to the hour after, so a profile opened from it shows it with some context.
pub fn window_around(first_ms: i64, last_ms: i64) -> String {
    const HOUR_MS: i64 = 3_600_000;
    let since = first_ms.div_euclid(HOUR_MS) * HOUR_MS - HOUR_MS;
    let until = (last_ms.div_euclid(HOUR_MS) + 2) * HOUR_MS;
    Query::default().with(&[("since", &rfc3339(since)), ("until", &rfc3339(until))])
}

fn time(name: &str, text: &str) -> Result<i64, String> {
    if let Ok(t) = jiff::Timestamp::from_str(text) {
        return Ok(t.as_millisecond());
    }
    // `<input type="datetime-local">` sends 2026-12-07T10:00 without a zone: read as UTC (the
    // console shows every time in UTC).
    jiff::civil::DateTime::from_str(text)
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp().as_millisecond())
        .ok_or_else(|| format!("{name} {text:?}: expected a time such as 2026-12-07T10:00:00Z"))
}

/// Unix milliseconds as RFC 3339 (UTC, to the second).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A stored RFC 3339 time as the console shows it: `2026-12-07 10:00:03 UTC`.
pub fn shown_time(text: &str) -> String {
    jiff::Timestamp::from_str(text)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_000_000_000;

    #[test]
    fn presets_and_custom_windows() {
        let s = Scope::of(&Query::parse(Some("range=24h")), NOW).unwrap();
        assert_eq!(
            (s.preset.as_str(), s.since_ms, s.until_ms),
            ("24h", Some(NOW - 86_400_000), None)
        );
        let d = Scope::of(&Query::parse(None), NOW).unwrap();
        assert_eq!(d.preset, DEFAULT_PRESET);
        let all = Scope::of(&Query::parse(Some("range=all")), NOW).unwrap();
        assert_eq!((all.since_ms, all.until_ms), (None, None));
        let c = Scope::of(
            &Query::parse(Some(
                "range=1h&since=2026-12-01T00:00:00Z&until=2026-12-02T00:00",
            )),
            NOW,
        )
        .unwrap();
        assert_eq!(c.preset, "custom");
        assert_eq!(c.since().as_deref(), Some("2026-12-01T00:00:00Z"));
        assert_eq!(c.until().as_deref(), Some("2026-12-02T00:00:00Z"));
        assert_eq!(Scope::input(c.since_ms), "2026-12-01T00:00");
    }

    #[test]
    fn bad_scopes_name_the_parameter() {
        let e = Scope::of(&Query::parse(Some("range=2w")), NOW).unwrap_err();
        assert!(
            e.starts_with("range \"2w\": expected one of 1h, 24h"),
            "{e}"
        );
        let e = Scope::of(&Query::parse(Some("since=yesterday")), NOW).unwrap_err();
        assert!(e.starts_with("since \"yesterday\""), "{e}");
        let e = Scope::of(
            &Query::parse(Some(
                "since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
            )),
            NOW,
        )
        .unwrap_err();
        assert_eq!(e, "since: must be before until");
    }

    #[test]
    fn a_permalink_fixes_a_preset_window() {
        let q = Query::parse(Some("range=24h&severity=high"));
        let s = Scope::of(&q, NOW).unwrap();
        let link = s.permalink(&q, NOW);
        let again = Query::parse(Some(&link));
        assert_eq!(again.get("severity"), Some("high"));
        assert_eq!(again.get("range"), None);
        let fixed = Scope::of(&again, NOW + 3_600_000).unwrap();
        assert_eq!(fixed.since_ms, Some((NOW - 86_400_000) / 1000 * 1000));
        assert_eq!(fixed.until_ms, Some(NOW / 1000 * 1000));
    }

    #[test]
    fn a_window_covers_the_hours_around() {
        let first = "2026-11-20T09:00:30Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        let last = "2026-11-20T09:04:15Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        let q = Query::parse(Some(&window_around(first, last)));
        assert_eq!(q.get("since"), Some("2026-11-20T08:00:00Z"));
        assert_eq!(q.get("until"), Some("2026-11-20T11:00:00Z"));
    }

    #[test]
    fn queries_change_and_keep_parameters() {
        let q = Query::parse(Some("a=1&b=2&b=3&c="));
        assert_eq!(q.get("c"), None);
        assert_eq!(q.all("b").collect::<Vec<_>>(), ["2", "3"]);
        assert_eq!(q.with(&[("a", "9"), ("b", "")]), "a=9");
        assert_eq!(q.only(&["b"]), "b=2&b=3");
        assert_eq!(q.without(&["b", "c"]).with(&[]), "a=1");
        let around = "since=2026-11-20T08:00:00Z&until=2026-11-20T11:00:00Z";
        assert_eq!(
            q.scoped_or(around).get("since"),
            Some("2026-11-20T08:00:00Z")
        );
        let chosen = Query::parse(Some("range=30d"));
        assert_eq!(chosen.scoped_or(around).get("since"), None);
        assert_eq!(
            Query::parse(Some(&"x".repeat(MAX_QUERY + 1))).get("x"),
            None
        );
    }
}
