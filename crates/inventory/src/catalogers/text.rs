//! Shared parsing of the text formats several ecosystems use: RFC 822-style header blocks
//! (dpkg control files, Python METADATA) and key:value stanzas.

/// Splits RFC 822-style paragraphs into ordered (field, value) lists. Continuation lines
/// (starting with a space or tab) are appended to the previous value with a newline.
/// Field names keep their case; lookups are case-insensitive via [`field`].
pub(crate) fn paragraphs(text: &str) -> Vec<Vec<(&str, String)>> {
    let mut out = Vec::new();
    let mut current: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            current.push((k.trim(), v.trim().to_string()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The headers of the first paragraph only (Python METADATA: the body after the blank line
/// is the description).
pub(crate) fn header_block(text: &str) -> Vec<(&str, String)> {
    let end = text
        .find("\n\n")
        .or_else(|| text.find("\r\n\r\n"))
        .unwrap_or(text.len());
    paragraphs(&text[..end])
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// First value of a field, case-insensitive.
pub(crate) fn field<'a>(p: &'a [(&str, String)], name: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Every value of a field, case-insensitive.
pub(crate) fn fields<'a>(
    p: &'a [(&str, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    p.iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Bytes as UTF-8, replacing invalid sequences (package databases are mostly ASCII).
pub(crate) fn lossy(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_and_continuations() {
        let t = "Package: a\nDescription: short\n long line\n .\nVersion: 1\n\n\nPackage: b\n";
        let p = paragraphs(t);
        assert_eq!(p.len(), 2);
        assert_eq!(field(&p[0], "package"), Some("a"));
        assert_eq!(field(&p[0], "Description"), Some("short\nlong line\n."));
        assert_eq!(field(&p[1], "Package"), Some("b"));
        let h = header_block("Name: x\nVersion: 1\n\nBody: not a header\n");
        assert_eq!(field(&h, "body"), None);
    }
}
