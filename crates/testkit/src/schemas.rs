//! Validators for the JSON schemas in `crates/testkit/schemas/` (CycloneDX 1.6, SPDX 2.3,
//! SARIF 2.1.0, OCSF 1.3 Detection and Vulnerability Findings), so every test that writes
//! such a document checks it the same way.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

fn schema(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// CycloneDX 1.6, with the SPDX-licence and JSF schemas it refers to.
pub fn cyclonedx() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let registry = Box::leak(Box::new(
            jsonschema::Registry::new()
                .add(
                    "http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json",
                    schema("spdx.schema.json"),
                )
                .expect("spdx schema")
                .add(
                    "http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json",
                    schema("jsf-0.82.schema.json"),
                )
                .expect("jsf schema")
                .prepare()
                .expect("registry"),
        ));
        jsonschema::options()
            .with_registry(registry)
            .build(&schema("bom-1.6.schema.json"))
            .expect("CycloneDX schema")
    })
}

/// The validator of one self-contained schema file, compiled once into `cell`.
fn compiled(
    cell: &'static OnceLock<jsonschema::Validator>,
    file: &str,
) -> &'static jsonschema::Validator {
    cell.get_or_init(|| {
        jsonschema::validator_for(&schema(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    })
}

/// SPDX 2.3.
pub fn spdx() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    compiled(&V, "spdx-2.3.schema.json")
}

/// SARIF 2.1.0.
pub fn sarif() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    compiled(&V, "sarif-2.1.0.schema.json")
}

/// OCSF Detection Finding (class 2004), from `scripts/ocsf-schema-import.py`.
pub fn ocsf_detection() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    compiled(&V, "ocsf-detection-finding.schema.json")
}

/// OCSF Vulnerability Finding (class 2002), from `scripts/ocsf-schema-import.py`.
pub fn ocsf_vulnerability() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    compiled(&V, "ocsf-vulnerability-finding.schema.json")
}

/// Panics with the first errors when `doc` is not valid.
pub fn assert_valid(validator: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(10)
        .collect();
    assert!(
        errors.is_empty(),
        "{what} is not valid:\n{}",
        errors.join("\n")
    );
}

/// Panics unless `event` is a valid OCSF event of a class Osprey writes (2002 or 2004).
pub fn assert_ocsf(event: &Value, what: &str) {
    let validator = match event["class_uid"].as_u64() {
        Some(2002) => ocsf_vulnerability(),
        Some(2004) => ocsf_detection(),
        other => panic!("{what}: OCSF class {other:?} is not one Osprey writes"),
    };
    assert_valid(validator, event, what);
}
