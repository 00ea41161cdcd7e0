//! `osprey serve --demo`: a demo organization on a running server. A member tenant "demo" with
//! a cluster gets the bundled attack story through the real webhook (over HTTP, with the
//! cluster's ingest token); the story's privileged pod runs the bundled example image, so its
//! findings trigger a malware and vulnerability scan of that image. When detection and the scan
//! are done, the summary says where the API shows the results.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use osprey_store::{FindingFilter, Role, ScanState, StatsGroup, TenantKind};

use crate::App;
use crate::error::{ServerError, ServerResult};

/// The demo's tenant and cluster.
pub const TENANT: &str = "demo";
pub const CLUSTER: &str = "demo-cluster";
/// The demo tenant's viewer token, beside the admin token.
pub const TOKEN_FILE: &str = "demo-token";
/// The image the story's privileged pod runs, replaced by the bundled example image.
const STORY_IMAGE: &str = "docker.io/library/alpine:3.20";
const BATCH: usize = 20;
const WAIT: Duration = Duration::from_secs(180);

/// Where the demo's inputs are (the `examples/` directory of the source tree).
#[derive(Debug, Clone)]
pub struct DemoFiles {
    pub story: PathBuf,
    /// The story's cluster as `kubectl get pods,serviceaccounts,roles,… -A -o json` prints it.
    pub snapshot: PathBuf,
    /// An `oci-dir:` source of the bundled image.
    pub image: String,
}

impl DemoFiles {
    /// The inputs under `examples`; the error says what is missing.
    pub fn locate(examples: &Path) -> ServerResult<DemoFiles> {
        let examples = std::path::absolute(examples)
            .map_err(ServerError::io(examples.display().to_string()))?;
        let story = examples.join("audit/attack-story.jsonl");
        let snapshot = examples.join("audit/attack-story-snapshot.json");
        let image = examples.join("images/demo");
        for p in [&story, &snapshot, &image.join("index.json")] {
            if !p.is_file() {
                return Err(ServerError::Invalid(format!(
                    "{}: not found (--demo runs from Osprey's source tree, which bundles it)",
                    p.display()
                )));
            }
        }
        Ok(DemoFiles {
            story,
            snapshot,
            image: format!("oci-dir:{}:v1", image.display()),
        })
    }
}

/// Sets the demo up once (a second start on the same data shows what is there) and returns
/// the summary to print.
pub async fn run(
    app: Arc<App>,
    files: DemoFiles,
    base_url: &str,
    data_dir: &Path,
) -> ServerResult<String> {
    let store = &app.store;
    let mut fresh = None;
    let tenant = match store.tenant_by_name(TENANT).await? {
        Some(t) => t,
        None => {
            let t = store.create_tenant(TENANT, TenantKind::Member).await?;
            let (_, viewer) = store
                .create_token(&t.id, "demo-viewer", Role::Viewer, None)
                .await?;
            let path = data_dir.join(TOKEN_FILE);
            crate::write_secret(&path, &viewer)
                .map_err(ServerError::io(path.display().to_string()))?;
            let (cluster, ingest) = store.create_cluster(&t.id, CLUSTER).await?;
            store
                .log_action(&t.id, "demo", "demo.create", &t.id, serde_json::json!({}))
                .await?;
            replay(&files, base_url, &cluster.id, &ingest).await?;
            fresh = Some((cluster.id, ingest));
            t
        }
    };
    // Detection, the cluster's snapshot (after the story's pods, which it then completes),
    // then the scans detection triggered.
    let started = Instant::now();
    while app.pending_events.load(Ordering::Relaxed) > 0 && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some((cluster, ingest)) = &fresh
        && app.options.graph_retention.is_some()
    {
        send_snapshot(&files, base_url, cluster, ingest).await?;
    }
    let scans = loop {
        let jobs = store.scan_jobs(Some(&tenant.id), None, None, 100).await?;
        let busy = jobs
            .iter()
            .any(|j| matches!(j.state, ScanState::Queued | ScanState::Running));
        if !busy || started.elapsed() >= WAIT {
            break jobs;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let filter = FindingFilter {
        tenant_id: Some(tenant.id.clone()),
        ..FindingFilter::default()
    };
    let total = store.count_findings(&filter).await?;
    let by_severity = store
        .finding_stats(&filter, StatsGroup::Severity)
        .await?
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let token = data_dir.join(TOKEN_FILE);
    let mut out = format!(
        "demo: tenant \"{TENANT}\", cluster \"{CLUSTER}\": {total} findings ({by_severity}) from the attack story and the scan of its privileged pod's image\n"
    );
    for j in &scans {
        out.push_str(&format!(
            "demo: {} scan of {}: {}{}\n",
            j.kind.as_str().replace('_', "-"),
            j.image,
            j.state.as_str(),
            match j.state {
                ScanState::Done => format!(
                    ", {} packages, {} vulnerabilities, {} threats",
                    j.packages, j.vulnerabilities, j.threats
                ),
                _ if !j.detail.is_empty() => format!(" ({})", j.detail),
                _ => String::new(),
            }
        ));
    }
    let auth = format!("-H \"Authorization: Bearer $(cat {})\"", token.display());
    out.push_str(&format!(
        "demo: see them with the demo tenant's viewer token ({}; the organization's admin token is beside it):\n\
         \x20 curl -s {auth} '{base_url}/v1/findings?severity_min=high'\n\
         \x20 curl -s {auth} '{base_url}/v1/findings/statistics?group_by=type'\n\
         \x20 curl -s {auth} '{base_url}/v1/scans'\n\
         \x20 curl -s {auth} '{base_url}/v1/sboms'\n\
         \x20 curl -s {auth} '{base_url}/v1/findings/export?format=ocsf'\n",
        token.display()
    ));
    out.push_str(&investigation(&app, &tenant.id, base_url, &auth).await?);
    if let Some(digest) = scans.iter().find_map(|j| j.image_digest.as_deref()) {
        out.push_str(&format!(
            "demo: what else the privileged pod's image affects (pods, nodes, who can exec into them, from the cluster's snapshot):\n\
             \x20 curl -s {auth} '{base_url}/v1/entities/image/{digest}/impact'\n"
        ));
    }
    out.push_str(&format!(
        "demo: the web console: {base_url}/console (sign in with the demo token, {})\n",
        token.display()
    ));
    out.push_str(&format!(
        "demo: the API is described at {base_url}/openapi.json"
    ));
    Ok(out)
}

/// Where the investigation graph shows the story: its finding group, and the profile of the
/// address most of its findings name (the attacker's).
async fn investigation(
    app: &App,
    tenant: &str,
    base_url: &str,
    auth: &str,
) -> ServerResult<String> {
    let (findings, _) = crate::sequences::findings_of(app, tenant, None, 0).await?;
    let groups = crate::sequences::groups_of(&findings);
    let Some(g) = groups.iter().max_by_key(|g| g.finding_ids.len()) else {
        return Ok(String::new());
    };
    let mut named: std::collections::BTreeMap<String, usize> = Default::default();
    for f in findings
        .iter()
        .filter(|f| g.finding_ids.contains(&f.finding.id))
    {
        for e in osprey_graph::named_by(&f.finding, f.cluster_id.as_deref()) {
            if e.kind() == osprey_graph::EntityType::Ip {
                *named.entry(e.to_string()).or_default() += 1;
            }
        }
    }
    let mut out = format!(
        "demo: the story as one finding group ({} findings; {}):\n\
         \x20 curl -s {auth} '{base_url}/v1/finding-groups/group-{}'\n",
        g.finding_ids.len(),
        g.tactics.join(" → "),
        g.finding_ids[0]
    );
    if let Some((ip, _)) = named.iter().max_by_key(|(_, n)| **n) {
        let start = osprey_graph::Hour::of_ms(g.first_ms);
        let end = osprey_graph::Hour(start.0 + 24);
        out.push_str(&format!(
            "demo: the attacker's address, its profile on the day of the attack:\n\
             \x20 curl -s {auth} '{base_url}/v1/entities/{ip}?start={}&end={}'\n",
            osprey_graph::record::rfc3339(start.start_ms()),
            osprey_graph::record::rfc3339(end.start_ms()),
        ));
    }
    Ok(out)
}

/// Sends the story's cluster snapshot, its privileged pod running the bundled image.
async fn send_snapshot(
    files: &DemoFiles,
    base_url: &str,
    cluster_id: &str,
    ingest: &str,
) -> ServerResult<()> {
    let body = std::fs::read_to_string(&files.snapshot)
        .map_err(ServerError::io(files.snapshot.display().to_string()))?
        .replace(STORY_IMAGE, &files.image);
    let url = format!("{base_url}/v1/clusters/{cluster_id}/snapshot");
    let resp = reqwest::Client::new()
        .put(&url)
        .bearer_auth(ingest)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| ServerError::Remote(format!("sending the demo snapshot to {url}: {e}")))?;
    if !resp.status().is_success() {
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        return Err(ServerError::Remote(format!(
            "sending the demo snapshot to {url}: HTTP {status}: {text}"
        )));
    }
    Ok(())
}

/// Moves the story by whole days so that its last event falls in the last 24 hours: the demo
/// reads as something that just happened (the console opens on the last 7 days), at the
/// story's own times of day.
fn shift_to_today(events: &mut [serde_json::Value], now_ms: i64) {
    const FIELDS: [&str; 2] = ["requestReceivedTimestamp", "stageTimestamp"];
    const DAY_MS: i64 = 86_400_000;
    let time = |v: &serde_json::Value, field: &str| {
        v.get(field)
            .and_then(|t| t.as_str())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    };
    let Some(last) = events
        .iter()
        .filter_map(|e| time(e, FIELDS[0]))
        .map(|t| t.as_millisecond())
        .max()
    else {
        return;
    };
    let days = (now_ms - last).div_euclid(DAY_MS);
    if days <= 0 {
        return;
    }
    let by = jiff::SignedDuration::from_hours(days * 24);
    for e in events.iter_mut() {
        for field in FIELDS {
            if let Some(t) = time(e, field).and_then(|t| t.checked_add(by).ok()) {
                e[field] =
                    serde_json::Value::String(t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
            }
        }
    }
}

/// Posts the story through the webhook in EventList batches, as an API server's audit
/// webhook backend would (retrying after a 429).
async fn replay(
    files: &DemoFiles,
    base_url: &str,
    cluster_id: &str,
    ingest: &str,
) -> ServerResult<()> {
    let text = std::fs::read_to_string(&files.story)
        .map_err(ServerError::io(files.story.display().to_string()))?
        .replace(STORY_IMAGE, &files.image);
    let mut events = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            ServerError::Invalid(format!("{} line {}: {e}", files.story.display(), n + 1))
        })?;
        events.push(v);
    }
    shift_to_today(&mut events, osprey_store::now_ms());
    let client = reqwest::Client::new();
    let url = format!("{base_url}/v1/clusters/{cluster_id}/audit");
    for chunk in events.chunks(BATCH) {
        let body = serde_json::json!({
            "kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": chunk
        })
        .to_string();
        loop {
            let resp = client
                .post(&url)
                .bearer_auth(ingest)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| {
                    ServerError::Remote(format!("posting the demo story to {url}: {e}"))
                })?;
            match resp.status().as_u16() {
                200 => break,
                429 | 503 => tokio::time::sleep(Duration::from_secs(1)).await,
                s => {
                    let text = resp.text().await.unwrap_or_default();
                    return Err(ServerError::Remote(format!(
                        "posting the demo story to {url}: HTTP {s}: {text}"
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod shift_tests {
    use super::*;

    #[test]
    fn the_story_moves_by_whole_days_into_the_last_day() {
        let mut events = vec![
            serde_json::json!({"requestReceivedTimestamp": "2026-11-20T09:00:00.100000Z", "stageTimestamp": "2026-11-20T09:00:00.104000Z"}),
            serde_json::json!({"requestReceivedTimestamp": "2026-11-20T09:04:15Z"}),
        ];
        let now = "2026-12-07T21:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        shift_to_today(&mut events, now);
        assert_eq!(
            events[0]["requestReceivedTimestamp"],
            "2026-12-07T09:00:00.100000Z"
        );
        assert_eq!(events[0]["stageTimestamp"], "2026-12-07T09:00:00.104000Z");
        assert_eq!(
            events[1]["requestReceivedTimestamp"],
            "2026-12-07T09:04:15.000000Z"
        );
        // Before 09:04 the story lands on the day before.
        let early = "2026-12-07T08:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        let mut again =
            vec![serde_json::json!({"requestReceivedTimestamp": "2026-11-20T09:04:15Z"})];
        shift_to_today(&mut again, early);
        assert_eq!(
            again[0]["requestReceivedTimestamp"],
            "2026-12-06T09:04:15.000000Z"
        );
        // A story in the future or of today stays as it is.
        let mut future =
            vec![serde_json::json!({"requestReceivedTimestamp": "2027-01-01T00:00:00Z"})];
        shift_to_today(&mut future, now);
        assert_eq!(
            future[0]["requestReceivedTimestamp"],
            "2027-01-01T00:00:00Z"
        );
    }
}
