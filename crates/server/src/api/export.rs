//! Every finding matching the filters, streamed page after page as JSON lines, CSV, OCSF or
//! ASFF.
use std::sync::Arc;

use axum::extract::State;
use osprey_model::export::OcsfStatus;
use osprey_store::{FindingState, Role, StoredFinding, Workflow};

use super::findings::FindingsQuery;
use super::{BadInput, Params, Refused};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportFormat {
    JsonLines,
    Csv,
    Ocsf,
    Asff,
}

/// Findings per page while exporting: the export streams page after page.
const EXPORT_PAGE: i64 = 500;

/// Every finding matching the filters, streamed in the asked format.
#[utoipa::path(get, path = "/v1/findings/export", tag = "findings", params(FindingsQuery), responses((status = 200, description = "Every matching finding: JSON lines (application/x-ndjson), CSV (text/csv), or an OCSF or ASFF JSON array (application/json)", body = String, content_type = "application/x-ndjson"), BadInput, Refused), security(("bearer" = [])))]
pub async fn export_findings(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<FindingsQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    caller.require(Role::Viewer)?;
    let format = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => ExportFormat::JsonLines,
        "csv" => ExportFormat::Csv,
        "ocsf" => ExportFormat::Ocsf,
        "asff" => ExportFormat::Asff,
        other => {
            return Err(ApiError::bad_request(format!(
                "format {other:?}: expected jsonl, csv, ocsf or asff"
            )));
        }
    };
    let account = q
        .aws_account_id
        .clone()
        .unwrap_or_else(|| "000000000000".into());
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "aws_account_id {account:?}: expected 12 digits"
        )));
    }
    let region = q.aws_region.clone().unwrap_or_else(|| "us-east-1".into());
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ApiError::bad_request(format!(
            "aws_region {region:?}: expected a region name such as eu-west-1"
        )));
    }
    let mut filter = q.filter(&caller)?;
    filter.limit = EXPORT_PAGE;
    // The first page is read before answering, so a bad page token is a 400, not a cut stream.
    let first = app.store.findings(&filter).await?;
    let (content_type, ext) = match format {
        ExportFormat::JsonLines => ("application/x-ndjson", "jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Ocsf | ExportFormat::Asff => ("application/json", "json"),
    };
    let exporter = Exporter {
        format,
        account,
        region,
    };
    let state = (app, filter, Some(first), exporter, 0usize);
    let stream = futures_util::stream::unfold(Some(state), |state| async move {
        let (app, mut filter, page, exporter, done) = state?;
        let page = match page {
            Some(p) => p,
            None => match app.store.findings(&filter).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "export stopped: storage failed");
                    return Some((Err(std::io::Error::other(e.to_string())), None));
                }
            },
        };
        let mut chunk = Vec::new();
        if done == 0 {
            exporter.start(&mut chunk);
        }
        for (i, f) in page.findings.iter().enumerate() {
            exporter.item(&mut chunk, f, done + i == 0);
        }
        let done = done + page.findings.len();
        let next = match page.next_page_token {
            Some(t) => {
                filter.page_token = Some(t);
                Some((app, filter, None, exporter, done))
            }
            None => {
                exporter.end(&mut chunk);
                None
            }
        };
        Some((Ok::<_, std::io::Error>(chunk), next))
    });
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"osprey-findings.{ext}\""),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

struct Exporter {
    format: ExportFormat,
    account: String,
    region: String,
}

const CSV_COLUMNS: [&str; 15] = [
    "id",
    "type",
    "severity",
    "severity_label",
    "title",
    "tenant_id",
    "cluster_id",
    "cluster",
    "namespace",
    "resource",
    "count",
    "first_seen",
    "last_seen",
    "state",
    "workflow",
];

impl Exporter {
    fn start(&self, out: &mut Vec<u8>) {
        match self.format {
            ExportFormat::Csv => csv_row(out, CSV_COLUMNS.iter().map(|s| s.to_string())),
            ExportFormat::Ocsf | ExportFormat::Asff => out.push(b'['),
            ExportFormat::JsonLines => {}
        }
    }

    fn end(&self, out: &mut Vec<u8>) {
        if matches!(self.format, ExportFormat::Ocsf | ExportFormat::Asff) {
            out.extend_from_slice(b"]\n");
        }
    }

    fn item(&self, out: &mut Vec<u8>, f: &StoredFinding, first: bool) {
        let array = matches!(self.format, ExportFormat::Ocsf | ExportFormat::Asff);
        if array && !first {
            out.push(b',');
        }
        match self.format {
            ExportFormat::JsonLines => {
                // Serializing a finding to memory cannot fail.
                let _ = serde_json::to_writer(&mut *out, f);
                out.push(b'\n');
            }
            ExportFormat::Ocsf => {
                let mut v = osprey_model::export::ocsf(&f.finding);
                ocsf_status(f).apply(&mut v);
                let _ = serde_json::to_writer(&mut *out, &v);
            }
            ExportFormat::Asff => {
                let created = osprey_graph::record::rfc3339(f.created_ms);
                let updated = osprey_graph::record::rfc3339(f.updated_ms);
                let product = format!(
                    "arn:aws:securityhub:{}:{}:product/{}/default",
                    self.region, self.account, self.account
                );
                let cx = osprey_model::export::AsffContext {
                    product_arn: &product,
                    account_id: &self.account,
                    region: &self.region,
                    record_state: if f.state == FindingState::Archived {
                        "ARCHIVED"
                    } else {
                        "ACTIVE"
                    },
                    workflow_status: match f.workflow {
                        Workflow::New => "NEW",
                        Workflow::Acknowledged => "NOTIFIED",
                        Workflow::Resolved => "RESOLVED",
                    },
                    created_at: &created,
                    updated_at: &updated,
                };
                let _ =
                    serde_json::to_writer(&mut *out, &osprey_model::export::asff(&f.finding, &cx));
            }
            ExportFormat::Csv => {
                let x = &f.finding;
                let k = x.resource.kubernetes.as_ref();
                let workload = k
                    .and_then(|k| k.workload.as_ref())
                    .map(|w| format!("{}/{}", w.kind, w.name))
                    .or_else(|| x.resource.image.as_ref().map(|i| i.reference.clone()))
                    .unwrap_or_default();
                csv_row(
                    out,
                    [
                        x.id.clone(),
                        x.kind.clone(),
                        x.severity
                            .score
                            .map(|s| format!("{s:.1}"))
                            .unwrap_or_default(),
                        format!("{:?}", x.severity.label).to_uppercase(),
                        x.title.clone(),
                        f.tenant_id.clone(),
                        f.cluster_id.clone().unwrap_or_default(),
                        k.map(|k| k.cluster.clone()).unwrap_or_default(),
                        k.map(|k| k.namespace.clone()).unwrap_or_default(),
                        workload,
                        x.count.to_string(),
                        x.first_seen.clone().unwrap_or_default(),
                        x.last_seen.clone().unwrap_or_default(),
                        f.state.as_str().to_string(),
                        f.workflow.as_str().to_string(),
                    ]
                    .into_iter(),
                );
            }
        }
    }
}

/// A cell as text a spreadsheet shows rather than evaluates: a field starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return (a formula, in Excel, LibreOffice and Google Sheets)
/// gets a leading `'`. Titles, resources and user names come from monitored clusters, so an
/// attacker chooses them.
fn inert(field: String) -> String {
    if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{field}")
    } else {
        field
    }
}

/// OCSF's status of a stored finding: archived is Suppressed, then the analysts' workflow.
fn ocsf_status(f: &StoredFinding) -> OcsfStatus {
    match (f.state, f.workflow) {
        (FindingState::Archived, _) => OcsfStatus::Suppressed,
        (_, Workflow::Resolved) => OcsfStatus::Resolved,
        (_, Workflow::Acknowledged) => OcsfStatus::InProgress,
        _ => OcsfStatus::New,
    }
}

/// One CSV record (RFC 4180): fields with commas, quotes or line breaks are quoted, and a
/// field a spreadsheet would run as a formula is neutralised.
fn csv_row(out: &mut Vec<u8>, fields: impl Iterator<Item = String>) {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fields: Vec<String> = fields.map(inert).collect();
    // Writing to memory cannot fail.
    let _ = w.write_record(&fields);
    if let Ok(bytes) = w.into_inner() {
        out.extend_from_slice(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_from_clusters_stay_text() {
        let mut out = Vec::new();
        csv_row(
            &mut out,
            [
                "=HYPERLINK(\"http://evil\",\"x\")",
                "+1",
                "-2+3",
                "@SUM(A1)",
                "\tx",
                "plain",
                "a=b",
            ]
            .into_iter()
            .map(str::to_string),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",'+1,'-2+3,'@SUM(A1),'\tx,plain,a=b\n"
        );
    }
}
