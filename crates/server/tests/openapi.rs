//! `/openapi.json`: an OpenAPI 3 document of exactly the routes served, with the fixed API
//! surface in it, the bearer scheme on every route but health and metrics.

mod common;

use common::TestServer;
use osprey_server::Options;
use osprey_store::Backend;
use reqwest::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_every_route() {
    let s = TestServer::start(Backend::Sqlite, Options::default()).await;
    let (st, doc) = s.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Osprey");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/tenants", "post"),
        ("/v1/tokens", "post"),
        ("/v1/clusters", "post"),
        ("/v1/clusters/{id}/audit", "post"),
        ("/v1/findings", "get"),
        ("/v1/findings/{id}", "get"),
        ("/v1/findings/{id}", "patch"),
        ("/v1/findings/statistics", "get"),
        ("/v1/findings/export", "get"),
        ("/v1/outputs", "post"),
        ("/healthz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let params: Vec<&str> = paths["/v1/findings"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "cluster",
        "severity_min",
        "type",
        "state",
        "limit",
        "page_token",
    ] {
        assert!(params.contains(&p), "{p} not in {params:?}");
    }
    // Every documented operation is served: without a token, secured ones answer 401, the
    // operational ones answer; none is an unknown route.
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{id}", "0000");
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (st, body) = s.call(m, &concrete, None, None).await;
            let secured = op.get("security").is_some();
            if secured {
                assert_eq!(st, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
                // And it says so: the refusals every secured route can answer are documented,
                // with the one-line error body.
                for code in ["401", "403"] {
                    let schema = &op["responses"][code]["content"]["application/json"]["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path}: {code} {}",
                        op["responses"]
                    );
                }
            } else {
                assert!(st.is_success(), "{method} {path}: {st}");
            }
        }
    }
    assert!(operations >= 24, "{operations}");
    // Every JSON answer of success has a schema, not "any JSON" — except the SBOM document,
    // whose shape is CycloneDX's or SPDX's (validated against those schemas in its tests).
    let mut untyped = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            for (code, response) in op["responses"].as_object().unwrap() {
                let schema = &response["content"]["application/json"]["schema"];
                let any = schema.as_object().is_some_and(|o| o.is_empty());
                if code.starts_with('2') && any && path != "/v1/sboms/{digest}" {
                    untyped.push(format!("{method} {path} {code}"));
                }
            }
        }
    }
    assert!(untyped.is_empty(), "untyped bodies: {untyped:?}");
    // A route that is not documented is not served.
    let (st, _) = s
        .call(Method::GET, "/v1/secret-route", Some(&s.admin), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.stop().await;
}
