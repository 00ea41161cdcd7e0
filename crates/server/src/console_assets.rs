//! The web console's static files: its own stylesheet, script and icon (`console/src/`) and
//! the front-end libraries in `console/vendor/` (htmx, cytoscape.js and their licences, pinned
//! by `console/package-lock.json` and checked against it by `console/vendor.sh --check`),
//! embedded in the binary so the console needs neither npm
//! at build time nor a CDN at run time. Served at `/console/assets/{name}`: gzip-compressed
//! when the browser accepts it (compressed once, on first use), with an ETag of the content so
//! a reload costs a 304.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// A file of `console/src/` (the console's own), embedded.
macro_rules! own {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../../console/src/", $name)),
        }
    };
}

/// A file of `console/vendor/`, embedded.
macro_rules! vendored {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../../console/vendor/", $name)),
        }
    };
}

/// Every file of `console/src/` and `console/vendor/`.
pub const ASSETS: &[Asset] = &[
    own!("console.css", CSS),
    own!("console.js", JS),
    own!("osprey.svg", SVG),
    vendored!("htmx.min.js", JS),
    vendored!("htmx.LICENSE", TEXT),
    vendored!("cytoscape.min.js", JS),
    vendored!("cytoscape.LICENSE", TEXT),
];

/// An asset ready to send: its ETag and its gzip form.
struct Prepared {
    etag: String,
    gzip: Vec<u8>,
}

/// Each asset prepared once, in [`ASSETS`] order.
fn prepared(index: usize) -> &'static Prepared {
    static PREPARED: OnceLock<Vec<Prepared>> = OnceLock::new();
    &PREPARED.get_or_init(|| ASSETS.iter().map(prepare).collect())[index]
}

fn prepare(asset: &Asset) -> Prepared {
    use std::io::Write;
    let digest = Sha256::digest(asset.body);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let gzip = gz
        .write_all(asset.body)
        .and_then(|()| gz.finish())
        .unwrap_or_default();
    Prepared {
        etag: format!("\"{}\"", hex::encode(&digest[..16])),
        gzip,
    }
}

/// `GET /console/assets/{name}`.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    respond(&name, &headers)
}

/// The response for an asset asked with these request headers.
pub fn respond(name: &str, headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such console asset\n").into_response();
    };
    let asset = &ASSETS[index];
    let ready = prepared(index);
    let mut out = HeaderMap::new();
    out.insert(header::ETAG, value(&ready.etag));
    // Revalidated on each load (a 304 when unchanged): the names carry no version.
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == ready.etag || tag.trim() == "*");
    if matches {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if accepts_gzip(headers) && !ready.gzip.is_empty() {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        // The prepared form lives as long as the process: sent without a copy.
        return (StatusCode::OK, out, ready.gzip.as_slice()).into_response();
    }
    (StatusCode::OK, out, asset.body).into_response()
}

/// Whether `Accept-Encoding` names gzip without refusing it (`gzip;q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    async fn body(r: Response) -> Vec<u8> {
        axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    #[test]
    fn every_console_file_is_embedded_and_nothing_else() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../console");
        let mut on_disk: Vec<String> = ["src", "vendor"]
            .iter()
            .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    #[tokio::test]
    async fn assets_are_served_compressed_with_an_etag_that_answers_304() {
        let htmx = ASSETS.iter().find(|a| a.name == "htmx.min.js").unwrap();
        let r = respond(
            "htmx.min.js",
            &headers(&[(header::ACCEPT_ENCODING, "br, gzip;q=0.8")]),
        );
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers().clone();
        assert_eq!(h[header::CONTENT_TYPE], JS);
        assert_eq!(h[header::CONTENT_ENCODING], "gzip");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let compressed = body(r).await;
        assert!(
            compressed.len() < htmx.body.len() / 2,
            "{}",
            compressed.len()
        );
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, htmx.body);

        // Without gzip (or with it refused), the file as it is.
        for accept in ["identity", "gzip;q=0"] {
            let r = respond(
                "htmx.min.js",
                &headers(&[(header::ACCEPT_ENCODING, accept)]),
            );
            assert!(
                r.headers().get(header::CONTENT_ENCODING).is_none(),
                "{accept}"
            );
            assert_eq!(body(r).await, htmx.body, "{accept}");
        }

        // The ETag revalidates; another does not.
        let etag = h[header::ETAG].to_str().unwrap().to_string();
        let r = respond(
            "htmx.min.js",
            &headers(&[(header::IF_NONE_MATCH, &format!("\"x\", {etag}"))]),
        );
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert!(body(r).await.is_empty());
        let r = respond(
            "htmx.min.js",
            &headers(&[(header::IF_NONE_MATCH, "\"other\"")]),
        );
        assert_eq!(r.status(), StatusCode::OK);
        let other = respond("cytoscape.min.js", &HeaderMap::new());
        assert_ne!(other.headers()[header::ETAG], h[header::ETAG]);

        // Nothing but the embedded files: no path escapes.
        for name in ["nope.js", "../Cargo.toml", ""] {
            assert_eq!(
                respond(name, &HeaderMap::new()).status(),
                StatusCode::NOT_FOUND,
                "{name}"
            );
        }
        let license = respond("cytoscape.LICENSE", &HeaderMap::new());
        assert_eq!(license.headers()[header::CONTENT_TYPE], TEXT);
    }
}
