//! CycloneDX 1.6 and SPDX 2.3 output, validated against the published JSON schemas in
//! `tests/schemas/`, on inventories that exercise every field (licences of every kind, Maven
//! groups, scoped npm names, rpm epochs, Go toolchains, images and file systems).

use osprey_image::{Image, OpenOptions, Source};
use osprey_inventory::sbom::{Document, Subject, cyclonedx, spdx};
use osprey_inventory::{Inventory, Options, inventory};
use osprey_testkit::schemas::{self, assert_valid};
use osprey_testkit::tools::testdata;
use serde_json::Value;

fn encode(subject: &Subject, inv: &Inventory) -> (Value, Value) {
    let doc = Document::new(subject, inv, "0.0.0-test");
    let mut cdx = Vec::new();
    cyclonedx::write(&doc, &mut cdx).unwrap();
    let mut sp = Vec::new();
    spdx::write(&doc, &mut sp).unwrap();
    (
        serde_json::from_slice(&cdx).unwrap(),
        serde_json::from_slice(&sp).unwrap(),
    )
}

fn open(source: Source) -> (Image, Inventory) {
    let image = Image::open(&source, &OpenOptions::default()).unwrap();
    let inv = inventory(&image, &Options::default()).unwrap();
    (image, inv)
}

#[test]
fn every_fixture_encodes_to_valid_documents() {
    let cdx_validator = schemas::cyclonedx();
    let spdx_validator = schemas::spdx();
    let mut sources: Vec<Source> = [
        "pkgdb/dpkg/syft-image-dpkg",
        "pkgdb/dpkg/trivy-valid",
        "pkgdb/apk/scalibr-installed",
        "pkgdb/rpm/bdb-scalibr-epoch",
        "pkgdb/rpm/ndb-sle15-bci",
        "pkgdb/java",
        "pkgdb/npm/trivy-happy",
        "pkgdb/python",
        "pkgdb/gobinary",
        "pkgdb/rust-auditable",
        "pkgdb/dotnet",
        "pkgdb/php",
        "pkgdb/ruby",
    ]
    .iter()
    .map(|d| Source::Dir(testdata(d)))
    .collect();
    sources.push(
        Source::parse(
            testdata("pkgdb/images/trivy-alpine-310.tar.gz")
                .to_str()
                .unwrap(),
        )
        .unwrap(),
    );
    for source in sources {
        let (image, inv) = open(source.clone());
        assert!(!inv.packages.is_empty(), "{source}");
        let subject = Subject::of_image(&image);
        let (cdx, sp) = encode(&subject, &inv);
        assert_valid(cdx_validator, &cdx, &format!("CycloneDX of {source}"));
        assert_valid(spdx_validator, &sp, &format!("SPDX of {source}"));

        let os_components = usize::from(inv.os.is_some());
        assert_eq!(
            cdx["components"].as_array().unwrap().len(),
            inv.packages.len() + os_components,
            "{source}"
        );
        assert_eq!(
            sp["packages"].as_array().unwrap().len(),
            inv.packages.len() + os_components + 1,
            "{source}"
        );
        let purls: Vec<&str> = cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["purl"].as_str())
            .collect();
        assert_eq!(
            purls.len(),
            inv.packages.iter().filter(|p| !p.purl.is_empty()).count(),
            "{source}"
        );
        assert_eq!(
            cdx["dependencies"][0]["dependsOn"]
                .as_array()
                .unwrap()
                .len(),
            inv.packages.len() + os_components
        );
    }
}

#[test]
fn licences_ids_expressions_and_names() {
    let (image, inv) = open(Source::Dir(testdata("pkgdb/dpkg/syft-image-dpkg")));
    let (cdx, sp) = encode(&Subject::of_image(&image), &inv);
    let pam = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "libpam-runtime")
        .unwrap();
    assert!(!pam["licenses"].as_array().unwrap().is_empty());
    let pam_spdx = sp["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "libpam-runtime")
        .unwrap();
    assert_ne!(pam_spdx["licenseDeclared"], "NOASSERTION");
    // Every LicenseRef used is declared with its text.
    let declared: Vec<&str> = sp["hasExtractedLicensingInfos"]
        .as_array()
        .map_or(vec![], |a| {
            a.iter().map(|x| x["licenseId"].as_str().unwrap()).collect()
        });
    for p in sp["packages"].as_array().unwrap() {
        for term in p["licenseDeclared"]
            .as_str()
            .unwrap()
            .split([' ', '(', ')'])
        {
            if term.starts_with("LicenseRef-") {
                assert!(declared.contains(&term), "{term} not declared");
            }
        }
    }

    let (image, inv) = open(Source::Dir(testdata("pkgdb/ruby")));
    let (cdx, sp) = encode(&Subject::of_image(&image), &inv);
    let unit = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "test-unit")
        .unwrap();
    assert_eq!(
        unit["licenses"],
        serde_json::json!([{"license": {"id": "Ruby"}}, {"license": {"name": "BSDL"}}, {"license": {"name": "PSFL"}}])
    );
    let unit_spdx = sp["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "test-unit")
        .unwrap();
    assert_eq!(
        unit_spdx["licenseDeclared"],
        "Ruby AND LicenseRef-BSDL AND LicenseRef-PSFL"
    );
}

#[test]
fn images_are_containers_with_layers_and_reproducible() {
    let (image, inv) = open(
        Source::parse(
            testdata("pkgdb/images/trivy-alpine-310.tar.gz")
                .to_str()
                .unwrap(),
        )
        .unwrap(),
    );
    let subject = Subject::of_image(&image);
    let (a, sp) = encode(&subject, &inv);
    assert_eq!(a["metadata"]["component"]["type"], "container");
    assert_eq!(a["metadata"]["component"]["name"], "alpine:3.10");
    let os = a["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "operating-system")
        .unwrap();
    assert_eq!(os["name"], "alpine");
    let musl = a["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "musl")
        .unwrap();
    let props: Vec<(&str, &str)> = musl["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["value"].as_str().unwrap()))
        .collect();
    assert!(
        props.contains(&(
            "osprey:layer:diff-id",
            "sha256:531743b7098cb2aaf615641007a129173f63ed86ca32fe7b5a246a1c47286028"
        )),
        "{props:?}"
    );
    assert_eq!(
        musl["evidence"]["occurrences"][0]["location"],
        "/lib/apk/db/installed"
    );
    let root = sp["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["primaryPackagePurpose"] == "CONTAINER")
        .unwrap();
    assert_eq!(
        root["versionInfo"],
        "sha256:af341ccd2df8b0e2d67cf8dd32e087bfda4e5756ebd1c76bbf3efa0dc246590e"
    );
    // The same inventory gives the same serial number and namespace.
    let (b, sp2) = encode(&subject, &inv);
    assert_eq!(a["serialNumber"], b["serialNumber"]);
    assert_eq!(sp["documentNamespace"], sp2["documentNamespace"]);
}
