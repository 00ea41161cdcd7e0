//! Findings statistics, exports (JSON lines, CSV, OCSF, ASFF) and sample findings, on both
//! backends.

mod common;

use common::{BACKENDS, TestServer, story_batches};
use osprey_server::Options;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn raw(s: &TestServer, path: &str, token: &str) -> (StatusCode, String, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_exports_and_samples() {
    for backend in BACKENDS {
        let s = TestServer::start(backend, Options::default()).await;
        let (_, a_admin) = s.member("team-a").await;
        let (_, b_admin) = s.member("team-b").await;
        let (cluster, ingest) = s.cluster(&a_admin, "prod").await;
        for b in story_batches(25) {
            let (st, v, _) = s
                .post_raw(&format!("/v1/clusters/{cluster}/audit"), &ingest, b)
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
        }
        s.wait_detected().await;
        let (_, all) = s.get("/v1/findings?limit=1000", &a_admin).await;
        let n = all["findings"].as_array().unwrap().len() as i64;
        assert!(n >= 10, "{backend:?}: {n}");

        // Statistics add up to the total, per grouping.
        for by in ["severity", "type", "cluster", "day"] {
            let (st, v) = s
                .get(&format!("/v1/findings/statistics?group_by={by}"), &a_admin)
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
            assert_eq!(v["total"], n, "{by}");
            let sum: i64 = v["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["count"].as_i64().unwrap())
                .sum();
            assert_eq!(sum, n, "{by}");
        }
        let (_, by_cluster) = s
            .get("/v1/findings/statistics?group_by=cluster", &a_admin)
            .await;
        assert_eq!(by_cluster["groups"][0]["key"], cluster.as_str());
        let (_, by_day) = s
            .get("/v1/findings/statistics?group_by=day", &a_admin)
            .await;
        assert_eq!(by_day["groups"][0]["key"], "2026-11-20", "the story's day");
        let (_, high) = s
            .get("/v1/findings/statistics?severity_min=high", &a_admin)
            .await;
        assert!(
            high["groups"]
                .as_array()
                .unwrap()
                .iter()
                .all(|g| g["key"] == "high" || g["key"] == "critical"),
            "{high}"
        );
        let (st, _) = s
            .get("/v1/findings/statistics?group_by=colour", &a_admin)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (_, none) = s.get("/v1/findings/statistics", &b_admin).await;
        assert_eq!(
            none["total"], 0,
            "another member's findings are not counted"
        );

        // JSON lines: every finding, each one line.
        let (st, ct, body) = raw(&s, "/v1/findings/export", &a_admin).await;
        assert_eq!((st, ct.as_str()), (StatusCode::OK, "application/x-ndjson"));
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len() as i64, n);
        assert!(
            lines
                .iter()
                .all(|l| l["tenant_id"].is_string() && l["type"].is_string())
        );
        // CSV: a header and one record per finding (titles with commas are quoted).
        let (st, ct, body) = raw(&s, "/v1/findings/export?format=csv", &a_admin).await;
        assert_eq!((st, ct.starts_with("text/csv")), (StatusCode::OK, true));
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        assert_eq!(reader.headers().unwrap().get(1), Some("type"));
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len() as i64, n);
        assert!(
            records
                .iter()
                .all(|r| r.len() == 15 && r.get(7) == Some("prod"))
        );
        // OCSF: an array of Detection Findings; one resolved by an analyst says so.
        let (_, execution) = s
            .get("/v1/findings?type=Execution:*&limit=1", &a_admin)
            .await;
        let resolved = execution["findings"][0]["id"].as_str().unwrap().to_owned();
        let (st, _) = s
            .call(
                reqwest::Method::PATCH,
                &format!("/v1/findings/{resolved}"),
                Some(&a_admin),
                Some(json!({"workflow": "resolved"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let (_, _, body) = raw(
            &s,
            "/v1/findings/export?format=ocsf&type=Execution:*",
            &a_admin,
        )
        .await;
        let ocsf: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert!(!ocsf.is_empty());
        for e in &ocsf {
            osprey_testkit::schemas::assert_ocsf(e, "OCSF export");
            // The stored state decides both the status and its id.
            let id = match e["status"].as_str().unwrap() {
                "New" => 1,
                "In Progress" => 2,
                "Suppressed" => 3,
                "Resolved" => 4,
                other => panic!("status {other}"),
            };
            assert_eq!(e["status_id"], id, "{e}");
            assert_eq!(
                e["finding_info"]["uid"] == resolved.as_str(),
                id == 4,
                "only the resolved finding is Resolved: {e}"
            );
        }
        assert!(ocsf.iter().all(|e| {
            e["class_uid"] == 2004
                && e["finding_info"]["types"][0]
                    .as_str()
                    .unwrap()
                    .starts_with("Execution:")
        }));
        // ASFF: Security Hub's shape, for the account asked.
        let (_, _, body) = raw(
            &s,
            "/v1/findings/export?format=asff&aws_account_id=111122223333&aws_region=eu-west-1",
            &a_admin,
        )
        .await;
        let asff: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(asff.len() as i64, n);
        assert!(asff.iter().all(|f| f["SchemaVersion"] == "2018-10-08"
            && f["AwsAccountId"] == "111122223333"
            && f["ProductArn"]
                == "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default"
            && f["RecordState"] == "ACTIVE"));
        for bad in [
            "format=xml",
            "format=asff&aws_account_id=12",
            "format=csv&page_token=zzz",
            "sort=colour",
        ] {
            let (st, _, body) = raw(&s, &format!("/v1/findings/export?{bad}"), &a_admin).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {body}");
        }
        let (st, _) = s.get("/v1/findings?format=csv", &a_admin).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "format belongs to the export");
        let (_, _, empty) = raw(&s, "/v1/findings/export?format=ocsf", &b_admin).await;
        assert_eq!(serde_json::from_str::<Vec<Value>>(&empty).unwrap().len(), 0);

        // Samples: one per type, marked, refreshed (not multiplied) when asked again.
        let viewer = s.token("team-b", "viewer").await;
        let (st, _) = s.post("/v1/findings/samples", &viewer, json!({})).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, v) = s.post("/v1/findings/samples", &b_admin, json!({})).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let made = v["created"].as_u64().unwrap();
        assert!(made >= 30, "one per type: {made}");
        let (st, again) = s.post("/v1/findings/samples", &b_admin, json!({})).await;
        assert_eq!(
            (st, again["created"].as_u64()),
            (StatusCode::CREATED, Some(0))
        );
        let (_, samples) = s.get("/v1/findings?sample=true&limit=1000", &b_admin).await;
        let samples = samples["findings"].as_array().unwrap();
        assert_eq!(samples.len() as u64, made);
        assert!(
            samples
                .iter()
                .all(|f| f["sample"] == true
                    && f["title"].as_str().unwrap().starts_with("[SAMPLE] "))
        );
        let mut kinds: Vec<&str> = samples
            .iter()
            .map(|f| f["type"].as_str().unwrap())
            .collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len() as u64, made, "one per type");
        assert!(
            kinds.contains(&"Execution:Container/MaliciousFile")
                && kinds.contains(&"Vulnerability:Package/CVE")
        );
        let (st, _) = s
            .post(
                "/v1/findings/samples",
                &b_admin,
                json!({"cluster": cluster}),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "A's cluster is not B's");
        let (_, a_samples) = s.get("/v1/findings?sample=true", &a_admin).await;
        assert!(a_samples["findings"].as_array().unwrap().is_empty());
        s.stop().await;
    }
}
