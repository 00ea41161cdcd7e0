//! Every fixture of testdata/pkgdb against the expectation testdata/NOTICE records
//! (the origin project's own test), with the correct answer where the peer tools disagree.

use osprey_image::{Image, OpenOptions, Source};
use osprey_inventory::{Inventory, InventoryNotice, Options, inventory};
use osprey_model::{Package, PackageType};
use osprey_testkit::tools::testdata;

fn scan(rel: &str) -> Inventory {
    let image = Image::open(
        &Source::Dir(testdata(&format!("pkgdb/{rel}"))),
        &OpenOptions::default(),
    )
    .unwrap();
    inventory(&image, &Options::default()).unwrap()
}

/// (name, version) pairs of packages found in one file (by its name).
fn in_file(inv: &Inventory, file: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = inv
        .packages
        .iter()
        .filter(|p| {
            p.locations.iter().any(|l| {
                l.path
                    .split("!/")
                    .next()
                    .unwrap()
                    .ends_with(&format!("/{file}"))
            })
        })
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    v.sort();
    v
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

fn find<'a>(inv: &'a Inventory, name: &str) -> &'a Package {
    inv.packages
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} not found"))
}

fn no_unparsed(inv: &Inventory) {
    let unparsed: Vec<_> = inv
        .notices
        .iter()
        .filter(|n| matches!(n, InventoryNotice::Unparsed { .. }))
        .collect();
    assert!(unparsed.is_empty(), "{unparsed:?}");
}

#[test]
fn dpkg_status_files() {
    let valid = scan("dpkg/trivy-valid");
    no_unparsed(&valid);
    assert_eq!(
        valid.packages.len(),
        90,
        "git is deinstall ok config-files and must not count"
    );
    assert!(
        valid
            .packages
            .iter()
            .all(|p| p.kind == PackageType::Deb && p.name != "git")
    );
    assert_eq!(find(&valid, "adduser").version, "3.116ubuntu1");
    assert_eq!(find(&valid, "apt").version, "1.6.3ubuntu0.1");
    assert_eq!(find(&valid, "base-files").version, "10.1ubuntu2.2");

    let third = scan("dpkg/trivy-third-party");
    assert_eq!(third.packages.len(), 2);
    assert_eq!(
        find(&third, "docker-ce").version,
        "5:20.10.7~3-0~debian-buster"
    );

    let scalibr = scan("dpkg/scalibr-valid");
    assert_eq!(scalibr.packages.len(), 7);
    for (n, v) in [
        ("accountsservice", "22.08.8-6"),
        ("acl", "2.3.1-3"),
        ("adduser", "3.131"),
        ("attr", "1:2.5.1-4"),
    ] {
        assert_eq!(find(&scalibr, n).version, v);
    }

    let image = scan("dpkg/syft-image-dpkg");
    let pam = find(&image, "libpam-runtime");
    assert_eq!(pam.version, "1.1.8-3.6");
    assert!(
        !pam.licenses.is_empty(),
        "licence from usr/share/doc/libpam-runtime/copyright"
    );
    let os = image.os.as_ref().unwrap();
    assert!(
        pam.purl.contains(&format!("distro={}", os.purl_distro())),
        "{}",
        pam.purl
    );
}

#[test]
fn dpkg_distroless_status_d() {
    let sqlite = scan("dpkg-distroless/syft-distroless-deb");
    assert_eq!(
        sqlite.packages.len(),
        1,
        "the .md5sums file is not a package"
    );
    let p = &sqlite.packages[0];
    assert_eq!(
        (p.name.as_str(), p.version.as_str()),
        ("libsqlite3-0", "3.34.1-3")
    );
    assert!(!p.licenses.is_empty());

    // Syft reports 2, Trivy 1: bar is "deinstall ok config-files", so only foo is installed.
    let foo = scan("dpkg-distroless/scalibr-status.d");
    assert_eq!(in_file(&foo, "foo"), pairs(&[("foo", "1.2.3")]));
}

#[test]
fn apk_databases() {
    // Trivy 15, Syft 16: the version-less stanza is not a package.
    let trivy = scan("apk/trivy-apk");
    assert_eq!(trivy.packages.len(), 15);
    assert!(trivy.packages.iter().all(|p| !p.version.is_empty()));
    assert_eq!(find(&trivy, "musl").version, "1.1.14-r10");
    assert_eq!(find(&trivy, "busybox").version, "1.24.2-r9");
    let crypto = find(&trivy, "libcrypto1.0");
    assert_eq!(
        (crypto.version.as_str(), crypto.source_name.as_deref()),
        ("1.0.2h-r1", Some("openssl"))
    );

    let scalibr = scan("apk/scalibr-installed");
    assert_eq!(scalibr.packages.len(), 15);
    for (n, v) in [
        ("alpine-baselayout", "3.4.3-r1"),
        ("apk-tools", "2.14.0-r0"),
        ("busybox", "1.36.0-r9"),
        ("zlib", "1.2.13-r1"),
    ] {
        assert_eq!(find(&scalibr, n).version, v);
    }
    assert_eq!(
        find(&scalibr, "libcrypto3").source_name.as_deref(),
        Some("openssl")
    );

    assert_eq!(scan("apk/syft-multiple-2").packages.len(), 14);
    assert_eq!(scan("apk/syft-base").packages.len(), 1);
    assert_eq!(scan("apk/syft-single").packages.len(), 1);

    for (dir, version) in [
        ("apk/image-alpine-310", "3.10"),
        ("apk/image-alpine-311", "3.11"),
    ] {
        let inv = scan(dir);
        assert_eq!(inv.packages.len(), 14, "{dir}");
        let os = inv.os.as_ref().unwrap();
        assert_eq!(os.id, "alpine");
        assert!(
            os.version_id.as_deref().unwrap().starts_with(version),
            "{os:?}"
        );
        assert!(
            inv.packages[0].purl.starts_with("pkg:apk/alpine/"),
            "{}",
            inv.packages[0].purl
        );
        assert!(
            inv.packages[0].purl.contains("distro=alpine-3.1"),
            "{}",
            inv.packages[0].purl
        );
    }
}

#[test]
fn go_binaries() {
    let inv = scan("gobinary");
    no_unparsed(&inv);
    assert_eq!(
        in_file(&inv, "trivy-test.elf"),
        pairs(&[
            ("github.com/aquasecurity/test", ""),
            ("stdlib", "v1.15.2"),
            (
                "github.com/aquasecurity/go-pep440-version",
                "v0.0.0-20210121094942-22b2f8951d46"
            ),
            (
                "github.com/aquasecurity/go-version",
                "v0.0.0-20210121072130-637058cfe492"
            ),
            ("golang.org/x/xerrors", "v0.0.0-20200804184101-5ec99f83aff1"),
        ])
    );
    let ldflags = in_file(&inv, "trivy-main-version-via-ldflags.elf");
    assert!(
        ldflags.contains(&("github.com/aquasecurity/test".into(), "v1.0.0".into())),
        "{ldflags:?}"
    );
    assert!(
        ldflags.contains(&("stdlib".into(), "v1.22.1".into())),
        "{ldflags:?}"
    );
    assert!(in_file(&inv, "trivy-goexperiment").contains(&("stdlib".into(), "v1.22.1".into())));
    for arch in ["amd64", "arm64"] {
        let got = in_file(
            &inv,
            &format!("scalibr-binary_with_module_replacement-linux-{arch}"),
        );
        assert!(
            got.contains(&(
                "github.com/golang/xerrors".into(),
                "v0.0.0-20220907171357-04be3eba64a2".into()
            )),
            "{arch}: {got:?}"
        );
        assert!(
            got.contains(&("stdlib".into(), "v1.22.0".into())),
            "{arch}: {got:?}"
        );
        assert!(
            !got.iter().any(|(n, _)| n == "golang.org/x/xerrors"),
            "replaced module reported under its new path"
        );
    }
    let replaced = inv
        .packages
        .iter()
        .find(|p| p.name == "github.com/golang/xerrors")
        .unwrap();
    assert_eq!(replaced.properties["go.replaces"], "golang.org/x/xerrors");
    assert_eq!(
        replaced.purl,
        "pkg:golang/github.com/golang/xerrors@v0.0.0-20220907171357-04be3eba64a2"
    );
}

#[test]
fn rust_binaries() {
    let inv = scan("rust-auditable");
    no_unparsed(&inv);
    assert_eq!(
        in_file(&inv, "scalibr-uses_serde_json"),
        pairs(&[
            ("itoa", "1.0.14"),
            ("memchr", "2.7.4"),
            ("proc-macro2", "1.0.92"),
            ("quote", "1.0.38"),
            ("ryu", "1.0.18"),
            ("serde", "1.0.217"),
            ("serde_derive", "1.0.217"),
            ("serde_json", "1.0.135"),
            ("syn", "2.0.95"),
            ("unicode-ident", "1.0.14"),
            ("uses_json", "0.1.0"),
        ])
    );
    assert_eq!(
        in_file(&inv, "scalibr-no_deps"),
        pairs(&[("no_deps", "0.1.0")])
    );
    assert_eq!(
        in_file(&inv, "trivy-test.elf"),
        pairs(&[("crate_with_features", "0.1.0"), ("library_crate", "0.1.0")])
    );
}

#[test]
fn java_archives() {
    let inv = scan("java");
    let maven_war = in_file(&inv, "trivy-maven.war");
    assert_eq!(
        maven_war,
        pairs(&[
            ("web-app", "1.0-SNAPSHOT"),
            ("jackson-databind", "2.9.10.6"),
            ("jackson-annotations", "2.9.10"),
            ("jackson-core", "2.9.10"),
            ("cron-utils", "9.1.2"),
            ("slf4j-api", "1.7.30"),
            ("javax.el", "3.0.0"),
            ("commons-lang3", "3.11"),
        ])
    );
    assert_eq!(
        in_file(&inv, "trivy-gradle.war"),
        pairs(&[
            ("commons-dbcp", "1.4"),
            ("commons-pool", "1.6"),
            ("log4j", "1.2.17"),
            ("commons-compress", "1.19")
        ])
    );
    assert_eq!(
        in_file(&inv, "trivy-nested.jar"),
        pairs(&[
            ("nested", "0.0.1"),
            ("nested2", "0.0.2"),
            ("nested3", "0.0.3")
        ])
    );
    assert_eq!(
        in_file(&inv, "trivy-hadoop-shaded-guava-1.1.0-SNAPSHOT.jar"),
        pairs(&[
            ("failureaccess", "1.0.1"),
            ("guava", "29.0-jre"),
            (
                "listenablefuture",
                "9999.0-empty-to-avoid-conflict-with-guava"
            ),
            ("j2objc-annotations", "1.3"),
            ("hadoop-shaded-guava", "1.1.0-SNAPSHOT"),
        ])
    );
    assert_eq!(
        in_file(&inv, "trivy-io.quarkus.gizmo.gizmo-1.1.jar"),
        pairs(&[
            ("gizmo", "1.1"),
            ("log4j", "1.2.16"),
            ("log4j", "1.2.17"),
            ("jackson-databind", "2.12.3"),
            ("jackson-databind", "2.13.4")
        ])
    );
    assert_eq!(
        in_file(&inv, "trivy-test.jar"),
        pairs(&[("trivy-test", "2.5.6.SEC03")])
    );
    assert_eq!(
        in_file(&inv, "trivy-heuristic-1.0.0-SNAPSHOT.jar"),
        pairs(&[("trivy-heuristic", "1.0.0-SNAPSHOT")])
    );
    assert_eq!(
        in_file(&inv, "trivy-jackson-annotations-2.15.0-rc2.jar"),
        pairs(&[("jackson-annotations", "2.15.0-rc2")])
    );
    assert_eq!(
        in_file(&inv, "scalibr-nested_at_10.jar"),
        pairs(&[("package-name", "1.2.3")])
    );
    assert_eq!(
        in_file(&inv, "scalibr-nested_at_100.jar"),
        pairs(&[]),
        "the depth limit stops before level 100"
    );
    assert_eq!(
        in_file(&inv, "scalibr-complex.jar"),
        pairs(&[("package-name", "1.2.3"), ("another-package-name", "3.2.1")])
    );
    assert_eq!(
        in_file(&inv, "scalibr-guava-31.1-jre.jar"),
        pairs(&[("guava", "31.1-jre")])
    );

    let databind = inv
        .packages
        .iter()
        .find(|p| p.name == "jackson-databind" && p.version == "2.9.10.6")
        .unwrap();
    assert_eq!(
        databind.group.as_deref(),
        Some("com.fasterxml.jackson.core")
    );
    assert!(
        databind.locations[0]
            .path
            .ends_with("trivy-maven.war!/WEB-INF/lib/jackson-databind-2.9.10.6.jar"),
        "{:?}",
        databind.locations
    );
}

#[test]
fn python_packages() {
    let site = scan("python/site-packages");
    assert_eq!(
        in_file(&site, "METADATA")
            .into_iter()
            .chain(in_file(&site, "PKG-INFO"))
            .chain(in_file(&site, "kitchen-1.2.6-py2.7.egg"))
            .collect::<std::collections::BTreeSet<_>>(),
        pairs(&[
            ("distlib", "0.3.1"),
            ("typing_extensions", "4.4.0"),
            ("setuptools", "51.3.3"),
            ("kitchen", "1.2.6")
        ])
        .into_iter()
        .collect()
    );
    assert_eq!(site.packages.len(), 4);
    let dist = scan("python/syft-dist-info");
    assert_eq!(dist.packages.len(), 1);
    assert_eq!(
        (
            dist.packages[0].name.as_str(),
            dist.packages[0].version.as_str()
        ),
        ("Pygments", "2.6.1")
    );
    let egg = scan("python/syft-egg-info");
    assert_eq!(
        (
            egg.packages[0].name.as_str(),
            egg.packages[0].version.as_str()
        ),
        ("requests", "2.22.0")
    );

    let all = scan("python");
    assert_eq!(
        in_file(&all, "scalibr-monotonic-1.6-py2.py3-none-any.whl"),
        pairs(&[("monotonic", "1.6")])
    );
    assert_eq!(
        in_file(&all, "scalibr-monotonic-1.6-py3.10.egg"),
        pairs(&[("monotonic", "1.6")])
    );
    let metadata = std::fs::read(testdata(
        "pkgdb/python/scalibr-pyopenssl-26.0.0.dist-info.METADATA",
    ))
    .unwrap();
    let facts = osprey_inventory::parse_file(
        "usr/lib/python3/dist-packages/pyOpenSSL-26.0.0.dist-info/METADATA",
        0o644,
        &metadata,
        &Default::default(),
    );
    let osprey_inventory::Fact::Packages { packages, .. } = &facts[0] else {
        panic!("{facts:?}")
    };
    assert_eq!(
        (packages[0].name.as_str(), packages[0].version.as_str()),
        ("pyOpenSSL", "26.0.0")
    );
}

#[test]
fn npm_packages_and_lock() {
    let happy = scan("npm/trivy-happy");
    no_unparsed(&happy);
    let got: Vec<(String, String, usize)> = happy
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), p.locations.len()))
        .collect();
    assert_eq!(
        got,
        [
            ("@babel/parser".to_string(), "7.23.6".to_string(), 1),
            ("array-flatten".into(), "1.1.1".into(), 1),
            ("body-parser".into(), "1.18.3".into(), 1),
            ("debug".into(), "2.6.9".into(), 2),
            ("express".into(), "4.16.4".into(), 1),
            ("ms".into(), "2.0.0".into(), 2),
            ("ms".into(), "2.1.1".into(), 1),
        ],
        "installed packages once per identity; array-flatten is only in the lock; dev-only ansi-colors is not installed"
    );
    assert_eq!(
        find(&happy, "array-flatten").locations[0].path,
        "/package-lock.json"
    );
    assert_eq!(
        find(&happy, "@babel/parser").purl,
        "pkg:npm/%40babel/parser@7.23.6"
    );
    let pj = scan("npm/trivy-packagejson");
    assert_eq!(
        in_file(&pj, "package.json"),
        pairs(&[("bootstrap", "5.0.2")])
    );
}

#[test]
fn dotnet_php_ruby() {
    let dotnet = scan("dotnet");
    assert_eq!(
        in_file(&dotnet, "trivy-happy.deps.json"),
        pairs(&[("Newtonsoft.Json", "13.0.1")])
    );
    assert_eq!(
        in_file(&dotnet, "scalibr-valid.deps.json"),
        pairs(&[
            ("AWSSDK.Core", "3.7.10.6"),
            ("Microsoft.Extensions.DependencyInjection", "6.0.0")
        ])
    );
    let without_runtime = in_file(&dotnet, "trivy-without-runtime.deps.json");
    assert!(without_runtime.contains(&("JsonDiffPatch".into(), "2.0.61".into())));
    assert!(
        !without_runtime.iter().any(|(n, _)| n == "hello2"),
        "project entries are the application itself"
    );
    assert_eq!(
        find(&dotnet, "Newtonsoft.Json").purl,
        "pkg:nuget/Newtonsoft.Json@13.0.1"
    );

    let php = scan("php");
    assert_eq!(
        in_file(&php, "trivy-vendor/composer/installed.json"),
        pairs(&[("pear/log", "1.13.3"), ("pear/pear_exception", "v1.0.2")])
    );
    for v in ["syft-composer_1", "syft-composer_2"] {
        let got = in_file(&php, &format!("{v}/vendor/composer/installed.json"));
        assert!(
            got.contains(&("asm89/stack-cors".into(), "1.3.0".into())),
            "{v}: {got:?}"
        );
        assert!(
            got.contains(&("behat/mink".into(), "v1.8.1".into())),
            "{v}: {got:?}"
        );
    }
    assert_eq!(in_file(&php, "composer.lock").len(), 8);

    let ruby = scan("ruby");
    let specs = in_file(&ruby, "bundler.gemspec")
        .into_iter()
        .chain(in_file(&ruby, "formatador.gemspec"))
        .collect::<Vec<_>>();
    assert_eq!(
        specs,
        pairs(&[("bundler", "2.1.4"), ("formatador", "1.1.0")])
    );
    let multi = ruby
        .packages
        .iter()
        .find(|p| p.name == "test-unit")
        .unwrap();
    assert_eq!(multi.licenses, ["Ruby", "BSDL", "PSFL"]);
    // The fixture is renamed; a real one is always `Gemfile.lock`.
    let text = std::fs::read(testdata("pkgdb/ruby/syft-Gemfile.lock")).unwrap();
    let facts =
        osprey_inventory::parse_file("srv/app/Gemfile.lock", 0o644, &text, &Default::default());
    let osprey_inventory::Fact::Packages { packages, .. } = &facts[0] else {
        panic!("{facts:?}")
    };
    let lock: Vec<(&str, &str)> = packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert!(lock.contains(&("actionmailer", "4.1.1")), "{lock:?}");
    assert!(
        lock.contains(&("turbolinks", "3.0.0")),
        "git-sourced gems are installed too"
    );
    assert!(
        lock.contains(&("google-cloud-errors", "1.3.0")),
        "path gems too"
    );
    assert!(
        lock.iter()
            .all(|(_, v)| v.starts_with(|c: char| c.is_ascii_digit())),
        "dependency constraints are not gems: {lock:?}"
    );
}

#[test]
fn rpm_databases_in_all_three_containers() {
    // Berkeley DB hash.
    let uuid = scan("rpm/bdb-rhel8-libuuid");
    no_unparsed(&uuid);
    assert_eq!(uuid.packages.len(), 1);
    let p = &uuid.packages[0];
    assert_eq!(
        (p.name.as_str(), p.version.as_str(), p.arch.as_deref()),
        ("libuuid", "2.32.1-42.el8_8", Some("x86_64"))
    );
    assert_eq!(
        (p.source_name.as_deref(), p.source_version.as_deref()),
        (Some("util-linux"), Some("2.32.1-42.el8_8"))
    );
    assert!(p.properties["vendor"].starts_with("Red Hat"));

    let dive = scan("rpm/bdb-syft-fixture");
    assert_eq!(in_file(&dive, "Packages"), pairs(&[("dive", "0.9.2-1")]));

    let epoch = scan("rpm/bdb-scalibr-epoch");
    let hello = find(&epoch, "hello");
    assert_eq!(hello.version, "1:0.0.1-rls");
    assert!(
        hello.purl.contains("epoch=1") && hello.purl.contains("@0.0.1-rls"),
        "{}",
        hello.purl
    );

    // SQLite.
    let mariner = scan("rpm/sqlite-cbl-mariner-2.0");
    no_unparsed(&mariner);
    assert_eq!(mariner.packages.len(), 129);
    let curl = find(&mariner, "curl");
    assert_eq!(
        (curl.version.as_str(), curl.arch.as_deref()),
        ("7.76.0-6.cm2", Some("x86_64"))
    );
    assert_eq!(
        (
            curl.source_name.as_deref(),
            curl.properties["vendor"].as_str()
        ),
        (Some("curl"), "Microsoft Corporation")
    );
    assert_eq!(find(&mariner, "audit").version, "3.0.6-1.cm2");
    assert_eq!(find(&mariner, "bash").version, "5.1.8-1.cm2");

    // ndb: the full list go-rpmdb's test expects.
    let sle = scan("rpm/ndb-sle15-bci");
    no_unparsed(&sle);
    let expected = std::fs::read_to_string(testdata(
        "pkgdb/rpm/ndb-sle15-bci/EXPECTED.go-rpmdb-test.csv",
    ))
    .unwrap();
    let mut want: Vec<(String, String, String)> = expected
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let evr = if f[0].is_empty() {
                format!("{}-{}", f[2], f[3])
            } else {
                format!("{}:{}-{}", f[0], f[2], f[3])
            };
            (f[1].to_string(), evr, f[4].to_string())
        })
        .collect();
    want.sort();
    let mut got: Vec<(String, String, String)> = sle
        .packages
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.version.clone(),
                p.arch.clone().unwrap_or_default(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got.len(), 35);
    assert_eq!(got, want);
    assert_eq!(find(&sle, "libpcre1").source_name.as_deref(), Some("pcre"));
}
