//! Ruby: installed gems' `specifications/*.gemspec` (Ruby source written by RubyGems in a
//! fixed shape, read line by line) and `Gemfile.lock`.

use osprey_model::{Location, Package, PackageType};

use super::text::lossy;
use super::{Cataloger, FileRef, packages};
use crate::analysis::Fact;
use crate::limits::InventoryLimits;

/// The quoted strings of a line, in order.
fn quoted(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find(['"', '\'']) {
        let quote = rest.as_bytes()[start] as char;
        let tail = &rest[start + 1..];
        let Some(end) = tail.find(quote) else { break };
        out.push(tail[..end].to_string());
        rest = &tail[end + 1..];
    }
    out
}

pub(crate) struct Gemspec;

impl Cataloger for Gemspec {
    fn name(&self) -> &'static str {
        "ruby-gemspec"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        file.name.ends_with(".gemspec") && file.parent_name() == "specifications"
    }
    fn max_size(&self, _: &InventoryLimits) -> u64 {
        4 << 20
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        let text = lossy(data);
        let (mut name, mut version, mut licenses) = (None, None, Vec::new());
        for line in text.lines() {
            let t = line.trim();
            let Some((lhs, rhs)) = t.split_once('=') else {
                continue;
            };
            let attr = lhs.trim().rsplit('.').next().unwrap_or("");
            match attr {
                "name" if name.is_none() => name = quoted(rhs).into_iter().next(),
                "version" if version.is_none() => version = quoted(rhs).into_iter().next(),
                "license" | "licenses" => licenses.extend(quoted(rhs)),
                _ => {}
            }
        }
        let (Some(name), Some(version)) = (name, version) else {
            return Ok(None);
        };
        let mut p = Package::new(PackageType::Gem, name, version, self.name());
        p.licenses = licenses;
        p.locations.push(Location::at(file.absolute()));
        Ok(packages(self.name(), vec![p]))
    }
}

pub(crate) struct GemfileLock;

impl Cataloger for GemfileLock {
    fn name(&self) -> &'static str {
        "ruby-gemfile-lock"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        file.name == "Gemfile.lock"
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        let text = lossy(data);
        let mut out = Vec::new();
        let mut in_specs = false;
        for line in text.lines() {
            if !line.starts_with(' ') {
                in_specs = false;
                continue;
            }
            if line.trim() == "specs:" {
                in_specs = true;
                continue;
            }
            // Gems are indented four spaces; their own dependencies six.
            if in_specs && line.starts_with("    ") && !line.starts_with("     ") {
                let t = line.trim();
                if let Some((name, rest)) = t.split_once(" (") {
                    let version = rest.trim_end_matches(')');
                    // `nokogiri (1.13.1-x86_64-linux)`: the platform is not part of the version.
                    let version = version.split_once('-').map_or(version, |(v, _)| v);
                    let mut p = Package::new(PackageType::Gem, name, version, self.name());
                    p.locations.push(Location::at(file.absolute()));
                    out.push(p);
                }
            }
        }
        Ok(packages(self.name(), out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemspec_lines() {
        let spec = b"Gem::Specification.new do |s|\n  s.name = \"bundler\".freeze\n  s.version = \"2.1.4\"\n  s.licenses = [\"MIT\".freeze, 'Ruby']\nend\n";
        let f = FileRef::new(
            "usr/lib/ruby/gems/2.7.0/specifications/bundler-2.1.4.gemspec",
            spec.len() as u64,
            0o644,
        );
        let Some(Fact::Packages { packages, .. }) = Gemspec
            .parse(&f, spec, &InventoryLimits::default())
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (packages[0].name.as_str(), packages[0].version.as_str()),
            ("bundler", "2.1.4")
        );
        assert_eq!(packages[0].licenses, ["MIT", "Ruby"]);
    }
}
