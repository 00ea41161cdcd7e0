//! Licence strings as packages declare them ("MIT", "Apache 2.0", "GPL-2+", "LGPLv2+ and
//! BSD") sorted into SPDX identifiers, SPDX expressions, and everything else.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Classified {
    /// A single SPDX licence identifier (canonical spelling).
    Id(String),
    /// A valid SPDX expression of several terms.
    Expression(String),
    /// Not SPDX: kept as the name it was written with.
    Name(String),
}

pub(crate) fn classify(raw: &str) -> Classified {
    let s = raw.trim();
    if let Some(id) = spdx::license_id(s) {
        return Classified::Id(id.name.to_string());
    }
    if let Some((id, len)) = spdx::imprecise_license_id(s)
        && len == s.len()
    {
        return Classified::Id(id.name.to_string());
    }
    if s.contains(' ')
        && let Ok(expr) = spdx::Expression::parse(s)
    {
        return Classified::Expression(expr.to_string());
    }
    Classified::Name(s.to_string())
}

/// `s` with every character SPDX identifiers do not allow (anything but letters, digits, `.`
/// and `-`) replaced by `-`.
pub(crate) fn id_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A `LicenseRef-` identifier for a non-SPDX licence name.
pub(crate) fn license_ref(name: &str) -> String {
    format!("LicenseRef-{}", id_safe(name).trim_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(classify("MIT"), Classified::Id("MIT".into()));
        assert_eq!(classify("Apache 2.0"), Classified::Id("Apache-2.0".into()));
        assert_eq!(
            classify("MIT OR Apache-2.0"),
            Classified::Expression("MIT OR Apache-2.0".into())
        );
        assert_eq!(classify("GPL-2+"), Classified::Name("GPL-2+".into()));
        assert_eq!(
            license_ref("GPL-2+ or Artistic"),
            "LicenseRef-GPL-2--or-Artistic"
        );
    }
}
