//! OCSF 1.3 Vulnerability Finding events (class 2002), one per finding, as a JSON array: the
//! shape security data lakes (and the managed services' exports) ingest. The mapping is
//! `osprey_model::export::ocsf_vulnerability`, which the server's export uses too.

use std::io::Write;

use osprey_model::Finding;
use serde_json::Value;

use super::Subject;

pub fn write(
    out: &mut dyn Write,
    subject: &Subject<'_>,
    findings: &[Finding],
    suppressed: &[Finding],
) -> std::io::Result<()> {
    let time = super::now().as_millisecond();
    let resource_type = if subject.kind == "image" {
        "Container Image"
    } else {
        "SBOM"
    };
    let events: Vec<Value> = findings
        .iter()
        .chain(suppressed)
        .map(|f| osprey_model::export::ocsf_vulnerability(f, &subject.target, resource_type, time))
        .collect();
    serde_json::to_writer_pretty(&mut *out, &events)?;
    writeln!(out)
}
