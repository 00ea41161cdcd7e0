//! The API contract: every answer a test gets through [`super::TestServer::call`] is held
//! against the OpenAPI document the server publishes. The route must document the status it
//! answered, and a JSON body must be valid against the schema documented for that status — so
//! the document cannot drift from what the handlers send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The published document, as `/openapi.json` serves it.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(osprey_server::routes().1).expect("OpenAPI as JSON"))
}

/// The documented path template a request path falls under: exact segments win over
/// `{parameters}` (`/v1/findings/statistics` before `/v1/findings/{id}`). An entity's id
/// (`/v1/entities/{type}/{id}`, `…/{id}/impact`) spans the segments left.
pub fn template(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    let mut segments: Vec<&str> = path.split('/').collect();
    if path.starts_with("/v1/entities/") && segments.len() > 5 {
        // An impact ends in `/impact` after the id.
        let impact = segments.last() == Some(&"impact");
        segments.truncate(5);
        if impact {
            segments.push("impact");
        }
    }
    document()["paths"]
        .as_object()?
        .keys()
        .filter(|t| {
            let parts: Vec<&str> = t.split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p == s || (p.starts_with('{') && p.ends_with('}')))
        })
        .min_by_key(|t| t.matches('{').count())
        .map(String::as_str)
}

type Key = (String, String, u16);

/// The validator of one documented response, built once (`None`: documented without a JSON
/// body).
fn validator(key: &Key, response: &Value) -> Option<Arc<jsonschema::Validator>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Option<Arc<jsonschema::Validator>>>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap().get(key) {
        return v.clone();
    }
    let built = response["content"]["application/json"]["schema"]
        .as_object()
        .map(|schema| {
            // The schema, at the root of a copy of the document so that its
            // `#/components/schemas/…` references resolve.
            let mut root = document().clone();
            for (k, v) in schema {
                root[k] = v.clone();
            }
            Arc::new(jsonschema::validator_for(&root).unwrap_or_else(|e| {
                panic!(
                    "{} {}: {} schema does not compile: {e}",
                    key.0, key.1, key.2
                )
            }))
        });
    cache.lock().unwrap().insert(key.clone(), built.clone());
    built
}

/// Panics unless the answer is one the document describes. Requests to paths the document
/// does not have (tests of unknown routes) are not checked.
pub fn check(method: &Method, path: &str, status: StatusCode, json: Option<&Value>) {
    let Some(template) = template(path) else {
        return;
    };
    let method_name = method.as_str().to_lowercase();
    let Some(operation) = document()["paths"][template].get(&method_name) else {
        return;
    };
    let Some(response) = operation["responses"].get(status.as_str()) else {
        panic!(
            "{method} {path} answered {status}, which /openapi.json does not document for {method} {template}"
        );
    };
    let (Some(body), Some(validator)) = (
        json,
        validator(
            &(method_name, template.to_string(), status.as_u16()),
            response,
        ),
    ) else {
        return;
    };
    let errors: Vec<String> = validator
        .iter_errors(body)
        .take(5)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} ({status}): the body does not match /openapi.json:\n{}\n{body}",
        errors.join("\n")
    );
}
