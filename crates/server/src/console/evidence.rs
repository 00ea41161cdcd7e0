//! The audit events a finding rests on, read back from its cluster's kept batches (kept for
//! `--audit-retention-days`): the batches received from shortly before the finding was first
//! seen, in arrival order, within a budget, each searched for the finding's audit ids.

use std::collections::HashSet;

use osprey_store::StoredFinding;
use serde_json::Value;

use crate::App;

/// Audit ids looked for at most.
const MAX_IDS: usize = 20;
/// Batches read at most, and their decompressed bytes.
const MAX_BATCHES: usize = 200;
const MAX_BYTES: usize = 256 << 20;
/// An event is shown up to this many bytes of pretty JSON.
const MAX_SHOWN: usize = 16 * 1024;
/// Batches are read from this long before the finding was first seen.
const BEFORE_MS: i64 = 10 * 60_000;

/// One kept event.
pub struct KeptEvent {
    pub audit_id: String,
    pub stage: String,
    pub json: String,
}

/// The kept events of the finding's audit ids, and a notice when some were not found.
pub async fn kept_events(app: &App, f: &StoredFinding) -> (Vec<KeptEvent>, Option<String>) {
    let wanted: HashSet<String> = f
        .finding
        .evidence
        .as_ref()
        .map(|e| e.audit_ids.iter().take(MAX_IDS).cloned().collect())
        .unwrap_or_default();
    let Some(cluster) = f.cluster_id.clone().filter(|_| !wanted.is_empty()) else {
        return (Vec::new(), None);
    };
    let since = f.finding.first_seen_ms().unwrap_or(f.created_ms) - BEFORE_MS;
    let (mut found, mut after, mut batches, mut bytes) = (Vec::new(), 0i64, 0usize, 0usize);
    let mut exhausted = false;
    'read: while batches < MAX_BATCHES && bytes < MAX_BYTES {
        let page = match app
            .store
            .hunt_batches(std::slice::from_ref(&cluster), since, after, 20)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                return (
                    found,
                    Some(format!("reading the kept audit events failed: {e}")),
                );
            }
        };
        if page.is_empty() {
            exhausted = true;
            break;
        }
        for b in page {
            after = b.seq;
            batches += 1;
            let Some(body) = crate::detector::batch_body(&b) else {
                continue;
            };
            bytes += body.len();
            let sought = wanted.clone();
            let matched = tokio::task::spawn_blocking(move || matching(&body, &sought))
                .await
                .unwrap_or_default();
            found.extend(matched);
            let ids: HashSet<&str> = found.iter().map(|e| e.audit_id.as_str()).collect();
            if wanted.iter().all(|w| ids.contains(w.as_str())) {
                break 'read;
            }
        }
    }
    let ids: HashSet<&str> = found.iter().map(|e| e.audit_id.as_str()).collect();
    let missing = wanted.iter().filter(|w| !ids.contains(w.as_str())).count();
    let notice = (missing > 0).then(|| {
        if exhausted {
            format!(
                "{missing} of its audit events are no longer kept (older than the audit retention) or were received elsewhere"
            )
        } else {
            format!("{missing} of its audit events were not among the batches read")
        }
    });
    (found, notice)
}

/// The events of a batch body (an EventList or JSON lines) whose audit id is wanted.
fn matching(body: &[u8], wanted: &HashSet<String>) -> Vec<KeptEvent> {
    let items: Vec<Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut o)) => match o.remove("items") {
            Some(Value::Array(items)) => items,
            _ => vec![Value::Object(o)],
        },
        Ok(Value::Array(items)) => items,
        _ => body
            .split(|b| *b == b'\n')
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect(),
    };
    items
        .into_iter()
        .filter_map(|e| {
            let id = e.get("auditID")?.as_str()?.to_string();
            if !wanted.contains(&id) {
                return None;
            }
            let mut json = serde_json::to_string_pretty(&e).unwrap_or_default();
            if json.len() > MAX_SHOWN {
                let mut cut = MAX_SHOWN;
                while !json.is_char_boundary(cut) {
                    cut -= 1;
                }
                json.truncate(cut);
                json.push_str("\n… (shortened)");
            }
            Some(KeptEvent {
                stage: e
                    .get("stage")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                audit_id: id,
                json,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_found_in_event_lists_and_json_lines() {
        let wanted: HashSet<String> = ["a-2".to_string()].into();
        let list = br#"{"kind":"EventList","items":[{"auditID":"a-1","stage":"ResponseComplete"},{"auditID":"a-2","stage":"ResponseComplete","verb":"create"}]}"#;
        let found = matching(list, &wanted);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].audit_id.as_str(), found[0].stage.as_str()),
            ("a-2", "ResponseComplete")
        );
        assert!(found[0].json.contains("\"verb\": \"create\""));
        let lines = b"{\"auditID\":\"a-2\",\"stage\":\"ResponseStarted\"}\nnot json\n{\"auditID\":\"a-3\"}\n";
        assert_eq!(matching(lines, &wanted).len(), 1);
        let big = format!(
            r#"{{"auditID":"a-2","requestObject":"{}"}}"#,
            "é".repeat(MAX_SHOWN)
        );
        let shown = &matching(big.as_bytes(), &wanted)[0].json;
        assert!(shown.ends_with("… (shortened)") && shown.len() < MAX_SHOWN + 32);
    }
}
