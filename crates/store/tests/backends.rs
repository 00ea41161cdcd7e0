//! The store's behaviour, the same on both backends: every test runs on a fresh SQLite data
//! directory and on a fresh schema of the PostgreSQL server CI runs (127.0.0.1:5432).

use osprey_model::{Evidence, Finding, KubernetesResource, Resource, Severity};
use osprey_store::{
    EdgeEnd, EdgeRow, EntityRow, FindingFilter, FindingRecord, FindingSort, FindingUpdate,
    GraphCounts, LogWindow, NewAuditBatch, Role, SEEN_KEY_BYTES, Store, StoreError, TenantKind,
    Workflow, testing,
};

async fn each_backend<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    test(Store::open_sqlite(dir.path()).await.expect("sqlite store")).await;
    let pg = testing::scratch_postgres()
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (database test) is part of the test setup");
    test(pg).await;
}

fn finding(id: &str, kind: &str, score: f64, cluster: &str, ns: &str, last: &str) -> Finding {
    Finding {
        id: id.into(),
        kind: kind.into(),
        title: format!("{kind} in {ns}"),
        severity: Severity::from_score(score),
        count: 1,
        first_seen: Some(last.into()),
        last_seen: Some(last.into()),
        resource: Resource {
            kubernetes: Some(KubernetesResource {
                cluster: cluster.into(),
                namespace: ns.into(),
                ..KubernetesResource::default()
            }),
            ..Resource::default()
        },
        evidence: Some(Evidence {
            rule_id: "r".into(),
            audit_ids: vec![format!("{id}-a")],
            ..Evidence::default()
        }),
        ..Finding::default()
    }
}

fn record(f: Finding, tenant: &str, cluster: &str) -> FindingRecord {
    FindingRecord {
        finding: f,
        tenant_id: tenant.into(),
        cluster_id: Some(cluster.into()),
        source: osprey_store::FindingSource::Audit,
        sample: false,
    }
}

#[tokio::test]
async fn tenants_tokens_and_clusters() {
    each_backend(|s| async move {
        let admin = s
            .create_tenant("org", TenantKind::Administrator)
            .await
            .unwrap();
        let member = s.create_tenant("team-a", TenantKind::Member).await.unwrap();
        assert!(matches!(
            s.create_tenant("team-a", TenantKind::Member).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.create_tenant(" ", TenantKind::Member).await,
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(s.administrator().await.unwrap().unwrap().id, admin.id);
        assert_eq!(s.tenants().await.unwrap().len(), 2);

        let (info, secret) = s
            .create_token(&member.id, "ci", Role::Analyst, None)
            .await
            .unwrap();
        assert!(secret.starts_with("osp_") && secret.len() > 40);
        let p = s.authenticate(&secret).await.unwrap().expect("valid token");
        assert_eq!(
            (p.tenant_id.as_str(), p.role),
            (member.id.as_str(), Role::Analyst)
        );
        assert!(!p.is_org_admin());
        assert!(s.authenticate("osp_wrong").await.unwrap().is_none());
        s.revoke_token(&info.id).await.unwrap();
        assert!(s.authenticate(&secret).await.unwrap().is_none(), "revoked");
        assert!(matches!(
            s.revoke_token("nope").await,
            Err(StoreError::NotFound(_))
        ));

        let (cluster, ingest) = s.create_cluster(&member.id, "prod").await.unwrap();
        let p = s.authenticate(&ingest).await.unwrap().unwrap();
        assert_eq!(p.role, Role::Ingest);
        assert_eq!(p.cluster_id.as_deref(), Some(cluster.id.as_str()));
        assert!(matches!(
            s.create_cluster(&member.id, "prod").await,
            Err(StoreError::Conflict(_))
        ));
        s.create_cluster(&admin.id, "prod")
            .await
            .expect("names are per tenant");
        assert_eq!(s.clusters(Some(&member.id)).await.unwrap().len(), 1);
        assert_eq!(s.clusters(None).await.unwrap().len(), 2);
        assert_eq!(s.tokens(Some(&member.id)).await.unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn the_admin_log_is_append_only() {
    each_backend(|s| async move {
        let t = s
            .create_tenant("org", TenantKind::Administrator)
            .await
            .unwrap();
        s.log_action(
            &t.id,
            "cli",
            "tenant.create",
            "org",
            serde_json::json!({"kind": "administrator"}),
        )
        .await
        .unwrap();
        s.log_action(&t.id, "tok", "token.create", "ci", serde_json::json!({}))
            .await
            .unwrap();
        let log = s.admin_log(None, LogWindow::default(), 10).await.unwrap();
        assert_eq!(
            log.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
            ["token.create", "tenant.create"]
        );
        assert_eq!(log[1].detail["kind"], "administrator");
        let at = log[0].at_ms;
        let within = |since_ms, until_ms| LogWindow {
            before_seq: None,
            since_ms,
            until_ms,
        };
        assert!(
            !s.admin_log(None, within(Some(at), None), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.admin_log(None, within(Some(at + 1), None), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.admin_log(None, within(None, Some(log[1].at_ms)), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let before = LogWindow {
            before_seq: Some(log[0].seq),
            ..LogWindow::default()
        };
        assert_eq!(
            s.admin_log(None, before, 10).await.unwrap()[0].action,
            "tenant.create"
        );
        let pool_err = s.raw_execute("DELETE FROM admin_log").await;
        assert!(pool_err.is_err(), "deleting from the admin log must fail");
        let pool_err = s.raw_execute("UPDATE admin_log SET action = 'x'").await;
        assert!(pool_err.is_err(), "changing the admin log must fail");
        assert_eq!(
            s.admin_log(None, LogWindow::default(), 10)
                .await
                .unwrap()
                .len(),
            2
        );
    })
    .await;
}

#[tokio::test]
async fn audit_batches_keep_order_and_seen_keys_commit_with_their_round() {
    each_backend(|s| async move {
        let t = s
            .create_tenant("org", TenantKind::Administrator)
            .await
            .unwrap();
        let (c, _) = s.create_cluster(&t.id, "prod").await.unwrap();
        let batch = |n: i64| NewAuditBatch {
            cluster_id: c.id.clone(),
            received_ms: 1000 + n,
            events: n,
            body: vec![n as u8; 10],
        };
        let seqs = s.append_audit_batches(&[batch(1), batch(2)]).await.unwrap();
        assert_eq!(seqs.len(), 2);
        assert!(seqs[0] < seqs[1]);
        s.append_audit_batches(&[batch(3)]).await.unwrap();
        assert_eq!(s.audit_events_after(0).await.unwrap(), 6);
        assert_eq!(s.audit_events_after(seqs[1]).await.unwrap(), 3);
        let got = s.audit_batches_after(seqs[0], 10).await.unwrap();
        assert_eq!(got.iter().map(|b| b.events).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(got[0].body, vec![2u8; 10]);

        // Detected-event keys: a round's rows commit with it, or not at all.
        let key = |n: u8| vec![n; SEEN_KEY_BYTES];
        let mut round = s.begin_round().await.unwrap();
        round
            .keep_seen_keys(&c.id, 11, 5, &[key(1), key(2)].concat())
            .await
            .unwrap();
        round.put_state("detector/cursor", b"2").await.unwrap();
        round.commit().await.unwrap();
        let mut round = s.begin_round().await.unwrap();
        round.keep_seen_keys(&c.id, 11, 6, &key(3)).await.unwrap();
        drop(round); // rolled back
        let mut round = s.begin_round().await.unwrap();
        round.keep_seen_keys(&c.id, 12, 6, &key(4)).await.unwrap();
        round.keep_seen_keys("other", 12, 7, &key(5)).await.unwrap();
        round.commit().await.unwrap();
        assert_eq!(
            s.state("detector/cursor").await.unwrap().as_deref(),
            Some(&b"2"[..])
        );
        let all = s.seen_keys(0, usize::MAX, |_| true).await.unwrap();
        assert_eq!(
            all.iter()
                .map(|r| (
                    r.generation,
                    r.cluster_id.as_str(),
                    r.keys.len() / SEEN_KEY_BYTES
                ))
                .collect::<Vec<_>>(),
            [
                (11, c.id.as_str(), 2),
                (12, c.id.as_str(), 1),
                (12, "other", 1)
            ],
            "oldest first, the rolled-back row absent"
        );
        // Newest first up to the cap, of the wanted clusters, since a time.
        let capped = s.seen_keys(0, 1, |id| id == c.id).await.unwrap();
        assert_eq!(capped.len(), 1);
        assert_eq!(capped[0].keys, key(4));
        assert_eq!(s.seen_keys(7, usize::MAX, |_| true).await.unwrap().len(), 1);
        // A generation dropped drops its rows; old rows expire.
        let mut round = s.begin_round().await.unwrap();
        round.forget_seen_generations(&[11]).await.unwrap();
        round.commit().await.unwrap();
        assert_eq!(s.seen_keys(0, usize::MAX, |_| true).await.unwrap().len(), 2);
        assert_eq!(s.purge_seen_keys(7).await.unwrap(), 1);

        assert_eq!(
            s.purge_audit_batches(1002, seqs[1]).await.unwrap(),
            1,
            "only batches detection passed"
        );
        assert_eq!(s.audit_batch_count(Some(&c.id)).await.unwrap(), (2, 5));
    })
    .await;
}

/// What servers sharing a database through a bus rely on: the first value of a shared state
/// document wins, fences only rise (and a round that finds its fence raised writes nothing),
/// a redelivered batch is archived once and never read by a detector without a bus, and a
/// job is handed to one worker unless taken over.
#[tokio::test]
async fn bus_fences_archives_and_job_hand_over() {
    each_backend(|s| async move {
        assert_eq!(
            s.state_or_insert("bus/namespace", b"first").await.unwrap(),
            b"first"
        );
        assert_eq!(
            s.state_or_insert("bus/namespace", b"second").await.unwrap(),
            b"first"
        );

        assert!(s.fence("bus/fence/3", 9).await.unwrap());
        assert!(
            s.fence("bus/fence/3", 9).await.unwrap(),
            "the holder itself passes"
        );
        assert!(
            s.fence("bus/fence/3", 10).await.unwrap(),
            "a newer holder raises it"
        );
        assert!(
            !s.fence("bus/fence/3", 9).await.unwrap(),
            "the old one is out"
        );
        // Numbers, not text: 100 > 99.
        assert!(s.fence("bus/fence/4", 99).await.unwrap());
        assert!(s.fence("bus/fence/4", 100).await.unwrap());
        assert!(!s.fence("bus/fence/4", 99).await.unwrap());

        let t = s
            .create_tenant("org", TenantKind::Administrator)
            .await
            .unwrap();
        let (c, _) = s.create_cluster(&t.id, "prod").await.unwrap();
        let batch = osprey_store::AuditBatch {
            seq: 77,
            cluster_id: c.id.clone(),
            received_ms: 1000,
            events: 4,
            body: vec![1; 8],
        };
        for _ in 0..2 {
            let mut round = s.begin_round().await.unwrap();
            assert!(round.fence("bus/fence/3", 10).await.unwrap());
            round.archive_batch(&batch, "msg-1").await.unwrap();
            round.commit().await.unwrap();
        }
        let mut round = s.begin_round().await.unwrap();
        assert!(!round.fence("bus/fence/3", 9).await.unwrap());
        round.archive_batch(&batch, "msg-2").await.unwrap();
        drop(round); // a fenced round rolls back
        assert_eq!(s.audit_batch_count(Some(&c.id)).await.unwrap(), (1, 4));
        assert!(s.audit_batches_after(0, 10).await.unwrap().is_empty());
        assert_eq!(s.audit_events_after(0).await.unwrap(), 0);

        let job = s
            .enqueue_scan(&osprey_store::NewScan {
                tenant_id: t.id.clone(),
                cluster_id: None,
                image: "registry.example/app:1".into(),
                kind: osprey_store::ScanKind::OnDemand,
                trigger_finding_id: None,
                workload: None,
            })
            .await
            .unwrap();
        assert_eq!(
            s.queued_scans_before(osprey_store::now_ms() + 1, 10)
                .await
                .unwrap(),
            std::slice::from_ref(&job.id)
        );
        assert!(s.claim_scan_id(&job.id, false).await.unwrap().is_some());
        assert!(
            s.claim_scan_id(&job.id, false).await.unwrap().is_none(),
            "running"
        );
        assert!(
            s.queued_scans_before(osprey_store::now_ms() + 1, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let taken = s.claim_scan_id(&job.id, true).await.unwrap().unwrap();
        assert_eq!(taken.id, job.id, "taken over after a redelivery");
        assert!(
            s.claim_scan_id("no-such-job", true)
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn findings_upsert_filter_page_and_work() {
    each_backend(|s| async move {
        let a = s.create_tenant("a", TenantKind::Member).await.unwrap();
        let b = s.create_tenant("b", TenantKind::Member).await.unwrap();
        let mut recs = Vec::new();
        for i in 0..25 {
            let kind = if i % 2 == 0 {
                "Execution:Kubernetes/ExecInKubeSystemPod"
            } else {
                "Discovery:Kubernetes/Probe"
            };
            let ns = if i % 5 == 0 { "kube-system" } else { "default" };
            let f = finding(
                &format!("a{i:02}"),
                kind,
                1.0 + (i % 10) as f64 * 0.9,
                "c1",
                ns,
                &format!("2026-03-01T00:00:{i:02}Z"),
            );
            recs.push(record(f, &a.id, "c1"));
        }
        recs.push(record(
            finding(
                "b00",
                "Execution:Kubernetes/ExecInKubeSystemPod",
                9.0,
                "c2",
                "default",
                "2026-03-01T00:00:00Z",
            ),
            &b.id,
            "c2",
        ));
        let up = s.upsert_findings(recs, "detector").await.unwrap();
        assert!(up.iter().all(|u| u.created));

        // A repeat updates, does not add.
        let mut again = finding(
            "a03",
            "Discovery:Kubernetes/Probe",
            3.7,
            "c1",
            "default",
            "2026-03-02T00:00:00Z",
        );
        again.count = 4;
        let up = s
            .upsert_findings(vec![record(again, &a.id, "c1")], "detector")
            .await
            .unwrap();
        assert_eq!((up[0].created, up[0].new_occurrences), (false, 4));
        let some = s
            .findings_by_id(&["a00".into(), "missing".into(), "b00".into()])
            .await
            .unwrap();
        let mut got: Vec<&str> = some.iter().map(|f| f.finding.id.as_str()).collect();
        got.sort();
        assert_eq!(got, ["a00", "b00"]);
        assert!(s.findings_by_id(&[]).await.unwrap().is_empty());
        let f = s.finding("a03").await.unwrap().unwrap();

        assert_eq!(f.finding.count, 5);
        assert_eq!(
            f.finding.first_seen.as_deref(),
            Some("2026-03-01T00:00:03Z")
        );
        assert_eq!(f.finding.last_seen.as_deref(), Some("2026-03-02T00:00:00Z"));

        let only_a = FindingFilter {
            tenant_id: Some(a.id.clone()),
            limit: 10,
            ..FindingFilter::default()
        };
        assert_eq!(s.count_findings(&only_a).await.unwrap(), 25);
        let all = FindingFilter {
            limit: 1000,
            ..FindingFilter::default()
        };
        assert_eq!(s.count_findings(&all).await.unwrap(), 26);

        // Pages cover everything exactly once, in severity order.
        let mut seen = Vec::new();
        let mut filter = FindingFilter {
            sort: FindingSort::Severity,
            ..only_a.clone()
        };
        loop {
            let page = s.findings(&filter).await.unwrap();
            assert!(page.findings.len() <= 10);
            seen.extend(
                page.findings
                    .iter()
                    .map(|f| (f.finding.severity.score.unwrap(), f.finding.id.clone())),
            );
            match page.next_page_token {
                Some(t) => filter.page_token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25);
        assert!(
            seen.windows(2).all(|w| w[0].0 >= w[1].0),
            "descending severity"
        );
        let mut ids: Vec<_> = seen.iter().map(|s| s.1.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 25);

        let q = |f: FindingFilter| {
            let s = s.clone();
            async move { s.count_findings(&f).await.unwrap() }
        };
        assert_eq!(
            q(FindingFilter {
                types: vec!["Execution:*".into()],
                ..all.clone()
            })
            .await,
            14
        );
        assert_eq!(
            q(FindingFilter {
                types: vec!["Discovery:Kubernetes/Probe".into()],
                ..all.clone()
            })
            .await,
            12
        );
        assert_eq!(
            q(FindingFilter {
                namespace: Some("kube-system".into()),
                ..all.clone()
            })
            .await,
            5
        );
        assert_eq!(
            q(FindingFilter {
                severity_min: Some(7.0),
                ..only_a.clone()
            })
            .await,
            6
        );
        assert_eq!(
            q(FindingFilter {
                severity_min: Some(7.0),
                severity_max: Some(8.0),
                ..only_a.clone()
            })
            .await,
            2
        );
        assert_eq!(
            q(FindingFilter {
                cluster_id: Some("c2".into()),
                ..all.clone()
            })
            .await,
            1
        );
        assert_eq!(
            q(FindingFilter {
                text: Some("KUBE-SYSTEM".into()),
                ..all.clone()
            })
            .await,
            5
        );
        assert_eq!(
            q(FindingFilter {
                text: Some("100%_".into()),
                ..all.clone()
            })
            .await,
            0,
            "LIKE wildcards are literal"
        );
        let since = 1_772_323_210_000; // 2026-03-01T00:00:10Z
        assert_eq!(
            q(FindingFilter {
                since_ms: Some(since),
                ..only_a.clone()
            })
            .await,
            16
        );
        assert!(matches!(
            s.findings(&FindingFilter {
                page_token: Some("garbage".into()),
                ..all.clone()
            })
            .await,
            Err(StoreError::Invalid(_))
        ));

        let upd = FindingUpdate {
            archived: Some(true),
            workflow: Some(Workflow::Acknowledged),
            note: Some("seen it".into()),
        };
        let f = s.update_finding("a00", &upd, "tok1").await.unwrap();
        assert_eq!(
            (f.state.as_str(), f.workflow),
            ("archived", Workflow::Acknowledged)
        );
        assert_eq!(
            q(FindingFilter {
                state: Some(osprey_store::FindingState::Archived),
                ..all.clone()
            })
            .await,
            1
        );
        let hist = s.finding_history("a00").await.unwrap();
        assert_eq!(
            hist.iter().map(|h| h.change.as_str()).collect::<Vec<_>>(),
            ["created", "archived", "workflow", "note"]
        );
        assert_eq!(hist[3].detail["note"], "seen it");
        assert!(matches!(
            s.update_finding("zz", &upd, "t").await,
            Err(StoreError::NotFound(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn outputs_get_one_delivery_per_new_finding_and_repeats_coalesce() {
    use osprey_store::{OutputKind, REPEAT_DELAY_MS};
    each_backend(|s| async move {
        let admin = s
            .create_tenant("org", TenantKind::Administrator)
            .await
            .unwrap();
        let a = s.create_tenant("a", TenantKind::Member).await.unwrap();
        let b = s.create_tenant("b", TenantKind::Member).await.unwrap();
        let all = s
            .create_output(&a.id, "all", OutputKind::Webhook, "http://h/", "k", 0.0)
            .await
            .unwrap();
        let high = s
            .create_output(
                &a.id,
                "high",
                OutputKind::Alertmanager,
                "http://h/",
                "",
                7.0,
            )
            .await
            .unwrap();
        let other = s
            .create_output(&b.id, "b", OutputKind::Webhook, "http://h/", "k", 0.0)
            .await
            .unwrap();
        let org = s
            .create_output(
                &admin.id,
                "org",
                OutputKind::Cloudevents,
                "http://h/",
                "",
                0.0,
            )
            .await
            .unwrap();
        assert!(matches!(
            s.create_output(&a.id, "all", OutputKind::Webhook, "http://h/", "k", 0.0)
                .await,
            Err(StoreError::Conflict(_))
        ));
        let f = |id: &str, score: f64| {
            record(
                finding(
                    id,
                    "Discovery:Kubernetes/Probe",
                    score,
                    "c",
                    "default",
                    "2026-03-01T00:00:00Z",
                ),
                &a.id,
                "c",
            )
        };
        s.upsert_findings(vec![f("low", 3.0), f("hi", 8.0)], "detector")
            .await
            .unwrap();
        let now = osprey_store::now_ms();
        let pending = |o: &str| {
            let s = s.clone();
            let o = o.to_string();
            async move { s.deliveries(&o, Some("pending"), 100).await.unwrap() }
        };
        assert_eq!(pending(&all.id).await.len(), 2);
        assert_eq!(pending(&high.id).await.len(), 1, "severity filter");
        assert_eq!(pending(&other.id).await.len(), 0, "another member's output");
        assert_eq!(
            pending(&org.id).await.len(),
            2,
            "the administrator's output sees members"
        );
        assert_eq!(s.due_deliveries(now + 1, 100).await.unwrap().len(), 5);

        // Deliver, then the same finding recurs three times: one update, due later.
        let seqs: Vec<i64> = s
            .due_deliveries(now + 1, 100)
            .await
            .unwrap()
            .iter()
            .map(|d| d.seq)
            .collect();
        s.mark_delivered(&seqs).await.unwrap();
        for _ in 0..3 {
            s.upsert_findings(vec![f("low", 3.0)], "detector")
                .await
                .unwrap();
        }
        let p = pending(&all.id).await;
        assert_eq!(p.len(), 1, "repeats coalesce");
        assert_eq!(p[0].event, "updated");
        assert!(
            s.due_deliveries(osprey_store::now_ms(), 100)
                .await
                .unwrap()
                .is_empty(),
            "not due yet"
        );
        assert!(
            s.due_deliveries(osprey_store::now_ms() + REPEAT_DELAY_MS + 1, 100)
                .await
                .unwrap()
                .len()
                == 2
        );
        assert!(s.next_due().await.unwrap().is_some());

        // Failures back off and end dead after the last attempt.
        let seq = p[0].seq;
        for i in 0..osprey_store::MAX_ATTEMPTS {
            s.mark_failed(&[seq], "HTTP 500", 0).await.unwrap();
            let d = s
                .deliveries(&all.id, None, 10)
                .await
                .unwrap()
                .into_iter()
                .find(|d| d.seq == seq)
                .unwrap();
            assert_eq!(d.attempts, i + 1);
            let expect = if i + 1 == osprey_store::MAX_ATTEMPTS {
                "dead"
            } else {
                "pending"
            };
            assert_eq!(d.state, expect);
        }
        assert_eq!(
            s.deliveries(&all.id, Some("dead"), 10).await.unwrap()[0].last_error,
            "HTTP 500"
        );

        // An archived finding is not alerted on when it recurs.
        s.update_finding(
            "hi",
            &FindingUpdate {
                archived: Some(true),
                ..FindingUpdate::default()
            },
            "t",
        )
        .await
        .unwrap();
        s.upsert_findings(vec![f("hi", 8.0)], "detector")
            .await
            .unwrap();
        assert!(pending(&high.id).await.is_empty());
        s.delete_output(&all.id).await.unwrap();
        assert!(matches!(
            s.delete_output(&all.id).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.outputs(Some(&a.id)).await.unwrap().len(), 1);
    })
    .await;
}

/// One tenant's long queue does not hold every worker: the next job is the oldest of the
/// tenants with the fewest jobs running, and a tenant at its limit of running jobs waits. A
/// job started three times (its server stopped each time) fails instead of coming back.
#[tokio::test]
async fn scan_workers_are_shared_between_tenants_and_crashing_jobs_end() {
    use osprey_store::{MAX_SCAN_ATTEMPTS, NewScan, ScanKind, ScanState};
    each_backend(|store| async move {
        let a = store.create_tenant("a", TenantKind::Member).await.unwrap();
        let b = store.create_tenant("b", TenantKind::Member).await.unwrap();
        let enqueue = |tenant: String, image: &'static str| {
            let store = &store;
            async move {
                store
                    .enqueue_scan(&NewScan {
                        tenant_id: tenant,
                        cluster_id: None,
                        image: image.into(),
                        kind: ScanKind::OnDemand,
                        trigger_finding_id: None,
                        workload: None,
                    })
                    .await
                    .unwrap()
            }
        };
        for image in ["a/1", "a/2", "a/3", "a/4"] {
            enqueue(a.id.clone(), image).await;
        }
        enqueue(b.id.clone(), "b/1").await;
        assert_eq!(store.queued_scans(&a.id).await.unwrap(), 4);
        let mut claimed = Vec::new();
        for _ in 0..3 {
            claimed.push(store.claim_scan(2).await.unwrap().unwrap());
        }
        let tenants: Vec<&str> = claimed.iter().map(|j| &j.image[..1]).collect();
        // b's one job goes before a's second, though a queued four first.
        assert!(tenants[..2].contains(&"b"), "{tenants:?}");
        assert_eq!(tenants.iter().filter(|t| **t == "a").count(), 2);
        // a is at its limit of 2 running: nothing more is taken, though two of its jobs wait.
        assert!(store.claim_scan(2).await.unwrap().is_none());
        assert_eq!(store.queued_scans(&a.id).await.unwrap(), 2);

        // Three stops of the server while a job runs: it fails after the third.
        let crashing = claimed[0].id.clone();
        for start in 1..MAX_SCAN_ATTEMPTS {
            let (requeued, failed) = store.requeue_running_scans().await.unwrap();
            assert_eq!(failed, 0, "start {start}");
            assert!(requeued >= 1);
            let again = store
                .claim_scan_id(&crashing, false)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(again.attempts, start + 1);
        }
        let (_, failed) = store.requeue_running_scans().await.unwrap();
        assert_eq!(failed, 1);
        let job = store.scan_job(&crashing).await.unwrap().unwrap();
        assert_eq!(job.state, ScanState::Failed);
        assert!(job.detail.contains("3 times"), "{}", job.detail);
        // Through the bus: a redelivered job started three times fails too.
        let mut bus_job = store.claim_scan(5).await.unwrap().unwrap();
        while bus_job.attempts < MAX_SCAN_ATTEMPTS {
            let started = bus_job.attempts;
            bus_job = store
                .claim_scan_id(&bus_job.id, true)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(bus_job.attempts, started + 1);
        }
        assert!(
            store
                .claim_scan_id(&bus_job.id, true)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.scan_job(&bus_job.id).await.unwrap().unwrap().state,
            ScanState::Failed
        );
    })
    .await;
}

#[tokio::test]
async fn scan_jobs_queue_once_per_window_and_are_claimed_once() {
    use osprey_store::{NewScan, ScanKind, ScanResult, ScanState};
    each_backend(|store| async move {
        let a = store.create_tenant("a", TenantKind::Member).await.unwrap();
        let b = store.create_tenant("b", TenantKind::Member).await.unwrap();
        let scan = |tenant: &str, image: &str, kind: ScanKind| NewScan {
            tenant_id: tenant.into(),
            cluster_id: None,
            image: image.into(),
            kind,
            trigger_finding_id: Some("f1".into()),
            workload: Some(serde_json::json!({"namespace": "shop"})),
        };
        // Triggered: once per tenant and image per window, inside a round.
        let window = 86_400_000;
        let mut round = store.begin_round().await.unwrap();
        let queued = round
            .trigger_scans(
                &[
                    scan(&a.id, "reg/app:1", ScanKind::Triggered),
                    scan(&a.id, "reg/app:1", ScanKind::Triggered),
                    scan(&b.id, "reg/app:1", ScanKind::Triggered),
                ],
                1_000,
                window,
                100,
            )
            .await
            .unwrap();
        round.commit().await.unwrap();
        assert_eq!(queued.0.len(), 2, "one per tenant");
        let mut round = store.begin_round().await.unwrap();
        let again = round
            .trigger_scans(
                &[scan(&a.id, "reg/app:1", ScanKind::Triggered)],
                1_000 + window - 1,
                window,
                100,
            )
            .await
            .unwrap();
        assert!(again.0.is_empty(), "within the window");
        // A rolled-back round queued nothing and used up no window.
        drop(round);
        let mut round = store.begin_round().await.unwrap();
        let later = round
            .trigger_scans(
                &[scan(&a.id, "reg/app:1", ScanKind::Triggered)],
                1_000 + window,
                window,
                100,
            )
            .await
            .unwrap();
        round.commit().await.unwrap();
        assert_eq!(later.0.len(), 1, "after the window");
        // A tenant whose queue is full gets no more triggered scans (and the image is not
        // marked triggered).
        let mut round = store.begin_round().await.unwrap();
        let full = round
            .trigger_scans(
                &[scan(&a.id, "reg/full:1", ScanKind::Triggered)],
                1_000 + window,
                window,
                2,
            )
            .await
            .unwrap();
        round.commit().await.unwrap();
        assert_eq!((full.0.len(), full.1), (0, 1));
        assert_eq!(store.queued_scans(&a.id).await.unwrap(), 2);
        let on_demand = store
            .enqueue_scan(&scan(&a.id, "reg/other:2", ScanKind::OnDemand))
            .await
            .unwrap();
        assert_eq!(store.scan_queue_depth().await.unwrap(), (4, 0));
        assert!(store.scan_pending(&a.id, "reg/other:2").await.unwrap());

        // Claimed oldest first, each once.
        let first = store.claim_scan(10).await.unwrap().unwrap();
        assert_eq!(first.state, ScanState::Running);
        assert_eq!(first.workload.as_ref().unwrap()["namespace"], "shop");
        let mut claimed = vec![first.id.clone()];
        while let Some(j) = store.claim_scan(10).await.unwrap() {
            claimed.push(j.id);
        }
        claimed.sort();
        claimed.dedup();
        assert_eq!(claimed.len(), 4);
        assert_eq!(store.scan_queue_depth().await.unwrap(), (0, 4));
        // A restart puts running jobs back.
        assert_eq!(store.requeue_running_scans().await.unwrap(), (4, 0));
        let job = store.claim_scan(10).await.unwrap().unwrap();
        assert_eq!(job.attempts, 2, "started twice");
        let done = ScanResult {
            state: ScanState::Done,
            image_digest: Some("sha256:aa".into()),
            packages: 7,
            vulnerabilities: 2,
            threats: 1,
            finding_ids: vec!["x".into(), "y".into()],
            ..ScanResult::failed("")
        };
        store.finish_scan(&job.id, &done).await.unwrap();
        let got = store.scan_job(&job.id).await.unwrap().unwrap();
        assert_eq!(
            (got.state, got.packages, got.finding_ids.len()),
            (ScanState::Done, 7, 2)
        );
        assert!(got.finished_ms.is_some());
        let recent = store
            .recent_scan_of_digest(&job.tenant_id, "sha256:aa", 0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(recent.id, job.id);
        assert!(
            store
                .recent_scan_of_digest(&job.tenant_id, "sha256:aa", i64::MAX)
                .await
                .unwrap()
                .is_none()
        );
        store
            .finish_scan(&on_demand.id, &ScanResult::failed("registry unreachable"))
            .await
            .unwrap();
        let failed = store
            .scan_jobs(Some(&a.id), Some(ScanState::Failed), None, 10)
            .await
            .unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].detail, "registry unreachable");
        assert!(
            store
                .scan_jobs(Some(&b.id), Some(ScanState::Failed), None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.scan_jobs(None, None, None, 10).await.unwrap().len(),
            4
        );
        // Pages follow (creation time, id): three jobs were queued in the same millisecond.
        let first = store.scan_jobs(None, None, None, 3).await.unwrap();
        let last = first.last().unwrap();
        let rest = store
            .scan_jobs(None, None, Some((last.created_ms, &last.id)), 3)
            .await
            .unwrap();
        let mut seen: Vec<&str> = first.iter().chain(&rest).map(|j| j.id.as_str()).collect();
        assert_eq!(seen.len(), 4);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 4, "no job twice");
        assert!(matches!(
            store.finish_scan("nope", &ScanResult::failed("x")).await,
            Err(StoreError::NotFound(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn sboms_registries_and_workflow_changes() {
    use osprey_store::Sbom;
    each_backend(|store| async move {
        let admin = store
            .create_tenant("admin", TenantKind::Administrator)
            .await
            .unwrap();
        let a = store.create_tenant("a", TenantKind::Member).await.unwrap();
        let sbom = |tenant: &str, digest: &str, reference: &str, scanned: i64| Sbom {
            tenant_id: tenant.into(),
            image_digest: digest.into(),
            reference: reference.into(),
            cluster_id: None,
            os: "Alpine Linux v3.20".into(),
            packages: 3,
            inventory: vec![1, 2, 3],
            vuln_finding_ids: vec!["v1".into()],
            matched_db: "2026-01-01T00:00:00Z".into(),
            scanned_ms: scanned,
            matched_ms: scanned,
        };
        let mut round = store.begin_round().await.unwrap();
        round
            .put_sbom(&sbom(&a.id, "sha256:1", "reg/app:1", 10))
            .await
            .unwrap();
        round
            .put_sbom(&sbom(&a.id, "sha256:2", "reg/app:1", 20))
            .await
            .unwrap();
        round
            .put_sbom(&sbom(&admin.id, "sha256:1", "reg/app:1", 5))
            .await
            .unwrap();
        round.commit().await.unwrap();
        let got = store.sbom(&a.id, "sha256:1").await.unwrap().unwrap();
        assert_eq!(
            (got.inventory, got.vuln_finding_ids),
            (vec![1, 2, 3], vec!["v1".to_string()])
        );
        assert_eq!(store.sboms(Some(&a.id)).await.unwrap().len(), 2);
        assert_eq!(store.sboms(None).await.unwrap().len(), 3);
        assert!(store.sbom(&a.id, "sha256:9").await.unwrap().is_none());
        // Re-matching: everything not matched with the new database, then recorded.
        assert_eq!(
            store
                .sboms_to_rematch("2026-02-01T00:00:00Z", 10)
                .await
                .unwrap()
                .len(),
            3
        );
        let mut round = store.begin_round().await.unwrap();
        round
            .set_sbom_match(&a.id, "sha256:1", &[], "2026-02-01T00:00:00Z")
            .await
            .unwrap();
        round.commit().await.unwrap();
        assert_eq!(
            store
                .sboms_to_rematch("2026-02-01T00:00:00Z", 10)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            store
                .sboms(Some(&a.id))
                .await
                .unwrap()
                .iter()
                .find(|s| s.image_digest == "sha256:1")
                .unwrap()
                .vulnerabilities,
            0
        );
        // Re-scans are per image reference, by its latest scan.
        let due = store.images_due_for_rescan(15, 10).await.unwrap();
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].0, admin.id);
        store.touch_sboms(&admin.id, "reg/app:1").await.unwrap();
        assert!(
            store
                .images_due_for_rescan(15, 10)
                .await
                .unwrap()
                .is_empty()
        );

        // Registries: a member's own entry first, else the administrator's.
        store
            .create_registry(&admin.id, "reg.example:5000", "org", b"sealed", false)
            .await
            .unwrap();
        let r = store
            .registry_for(&a.id, "reg.example:5000")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.tenant_id.as_str(), r.username.as_str()),
            (admin.id.as_str(), "org")
        );
        let own = store
            .create_registry(&a.id, "reg.example:5000", "", b"", true)
            .await
            .unwrap();
        let r = store
            .registry_for(&a.id, "reg.example:5000")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.id, own.id);
        assert!(r.insecure);
        assert!(
            store
                .registry_for(&a.id, "other.example")
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            store
                .create_registry(&a.id, "reg.example:5000", "", b"", false)
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store
                .create_registry(&a.id, "https://x", "", b"", false)
                .await,
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(store.registries(Some(&a.id)).await.unwrap().len(), 1);
        assert_eq!(store.registries(None).await.unwrap().len(), 2);
        store.delete_registry(&own.id).await.unwrap();
        assert!(matches!(
            store.delete_registry(&own.id).await,
            Err(StoreError::NotFound(_))
        ));
        // The sealed password is stored as given.
        let org = store
            .registry_for(&a.id, "reg.example:5000")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(org.sealed_password, b"sealed");

        // Workflow changes in a round move only findings not there yet, with history.
        let c = store.create_cluster(&a.id, "c").await.unwrap().0;
        store
            .upsert_findings(
                vec![record(
                    finding("v1", "CVE", 7.0, "c", "", "2026-01-01T00:00:00Z"),
                    &a.id,
                    &c.id,
                )],
                "scanner",
            )
            .await
            .unwrap();
        let mut round = store.begin_round().await.unwrap();
        let moved = round
            .set_workflow(
                &["v1".into(), "absent".into()],
                Workflow::Resolved,
                "scanner",
                &serde_json::json!({"reason": "no longer matched"}),
            )
            .await
            .unwrap();
        let again = round
            .set_workflow(
                &["v1".into()],
                Workflow::Resolved,
                "scanner",
                &serde_json::json!({}),
            )
            .await
            .unwrap();
        round.commit().await.unwrap();
        assert_eq!(moved, vec!["v1".to_string()]);
        assert!(again.is_empty());
        let f = store.finding("v1").await.unwrap().unwrap();
        assert_eq!(f.workflow, Workflow::Resolved);
        let h = store.finding_history("v1").await.unwrap();
        let last = h.last().unwrap();
        assert_eq!(
            (last.change.as_str(), last.actor.as_str()),
            ("workflow", "scanner")
        );
        assert_eq!(last.detail["reason"], "no longer matched");
        assert_eq!(last.detail["workflow"], "resolved");
    })
    .await;
}

#[tokio::test]
async fn graph_edges_add_up_per_hour_and_entities_widen() {
    each_backend(|s| async move {
        let t = s
            .create_tenant("org", TenantKind::Administrator)
            .await
            .unwrap();
        let other = s.create_tenant("other", TenantKind::Member).await.unwrap();
        let edge = |to: &str, hour: i64, success: i64, forbidden: i64| EdgeRow {
            from_id: "subject/c1/jane".into(),
            relation: "api_call".into(),
            to_id: to.into(),
            hour,
            counts: GraphCounts {
                success,
                forbidden,
                ..GraphCounts::default()
            },
        };
        let mut round = s.begin_round().await.unwrap();
        // The same edge and hour twice in one call counts both.
        round
            .add_edges(
                &t.id,
                &[
                    edge("get pods", 10, 1, 0),
                    edge("get pods", 10, 2, 1),
                    edge("get pods", 11, 1, 0),
                    edge("list secrets", 10, 0, 3),
                ],
            )
            .await
            .unwrap();
        round.commit().await.unwrap();
        let mut round = s.begin_round().await.unwrap();
        round
            .add_edges(&t.id, &[edge("get pods", 10, 5, 0)])
            .await
            .unwrap();
        round
            .add_edges(&other.id, &[edge("get pods", 10, 100, 0)])
            .await
            .unwrap();
        round.commit().await.unwrap();
        let mut round = s.begin_round().await.unwrap();
        round
            .add_edges(&t.id, &[edge("get pods", 10, 1000, 0)])
            .await
            .unwrap();
        drop(round); // rolled back: counts nothing

        let got = s
            .graph_edges(&t.id, EdgeEnd::From, "subject/c1/jane", None, 10, 11)
            .await
            .unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].to_id, "get pods");
        assert_eq!((got[0].counts.success, got[0].counts.forbidden), (8, 1));
        assert_eq!(got[1].to_id, "list secrets");
        assert_eq!(got[1].counts.forbidden, 3);
        let by_target = s
            .graph_edges(&t.id, EdgeEnd::To, "get pods", Some("api_call"), 0, 100)
            .await
            .unwrap();
        assert_eq!(
            by_target.iter().map(|e| e.hour).collect::<Vec<_>>(),
            [10, 11]
        );
        assert!(
            s.graph_edges(
                &t.id,
                EdgeEnd::From,
                "subject/c1/jane",
                Some("exec"),
                0,
                100
            )
            .await
            .unwrap()
            .is_empty()
        );
        // Many distinct edges: more than one statement.
        let many: Vec<EdgeRow> = (0..7_000)
            .map(|i| edge(&format!("get x{i}"), 12, 1, 0))
            .collect();
        let mut round = s.begin_round().await.unwrap();
        round.add_edges(&t.id, &many).await.unwrap();
        round.commit().await.unwrap();
        assert_eq!(
            s.graph_edges(&t.id, EdgeEnd::From, "subject/c1/jane", None, 12, 13)
                .await
                .unwrap()
                .len(),
            7_000
        );
        assert_eq!(
            s.purge_graph_edges(12).await.unwrap(),
            4,
            "hours 10 and 11, both tenants"
        );

        let entity =
            |id: &str, first: i64, last: i64, props: Option<serde_json::Value>| EntityRow {
                id: id.into(),
                kind: id.split('/').next().unwrap().into(),
                first_ms: first,
                last_ms: last,
                properties: props,
            };
        let mut round = s.begin_round().await.unwrap();
        round
            .see_entities(
                &t.id,
                &[
                    entity(
                        "pod/c1/prod/web-1",
                        500,
                        600,
                        Some(serde_json::json!({"privileged": true})),
                    ),
                    entity("pod/c1/prod/web-2", 10, 20, None),
                    entity("subject/c1/jane", 50, 60, None),
                ],
            )
            .await
            .unwrap();
        round.commit().await.unwrap();
        let mut round = s.begin_round().await.unwrap();
        round
            .see_entities(
                &t.id,
                &[
                    entity("pod/c1/prod/web-1", 100, 400, None),
                    entity("pod/c1/prod/web-1", 300, 900, None),
                ],
            )
            .await
            .unwrap();
        round.commit().await.unwrap();
        let web = s
            .graph_entity(&t.id, "pod/c1/prod/web-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((web.first_ms, web.last_ms), (100, 900));
        assert_eq!(web.kind, "pod");
        assert_eq!(
            web.properties,
            Some(serde_json::json!({"privileged": true})),
            "kept"
        );
        assert!(
            s.graph_entity(&other.id, "pod/c1/prod/web-1")
                .await
                .unwrap()
                .is_none()
        );
        let pods = s
            .search_graph_entities(&t.id, Some("pod"), "pod/c1/prod/", None, 10)
            .await
            .unwrap();
        assert_eq!(
            pods.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["pod/c1/prod/web-1", "pod/c1/prod/web-2"]
        );
        let next = s
            .search_graph_entities(&t.id, None, "", Some("pod/c1/prod/web-2"), 10)
            .await
            .unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].id, "subject/c1/jane");
        assert!(
            s.search_graph_entities(&t.id, Some("subject"), "pod/", None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn retro_hunts_are_claimed_once_per_tenant_and_survive_a_stopped_server() {
    use osprey_store::{HuntResult, HuntState, MAX_HUNT_ATTEMPTS, NewRetroHunt};
    each_backend(|store| async move {
        let a = store.create_tenant("a", TenantKind::Member).await.unwrap();
        let b = store.create_tenant("b", TenantKind::Member).await.unwrap();
        let hunt = |tenant: &str| NewRetroHunt {
            tenant_id: tenant.into(),
            cluster_id: None,
            since_ms: 1_000,
            until_ms: 2_000,
            rules: None,
            threat_list: Some("bad".into()),
            created_by: "t".into(),
        };
        let a1 = store.enqueue_hunt(&hunt(&a.id)).await.unwrap();
        let a2 = store.enqueue_hunt(&hunt(&a.id)).await.unwrap();
        let b1 = store.enqueue_hunt(&hunt(&b.id)).await.unwrap();
        assert_eq!(a1.state, HuntState::Queued);
        assert_eq!(store.active_hunts(&a.id).await.unwrap(), 2);
        // One hunt per tenant at a time: one of a's and b's, then nothing.
        let lease = 60_000;
        let c1 = store.claim_hunt(lease).await.unwrap().unwrap();
        let c2 = store.claim_hunt(lease).await.unwrap().unwrap();
        assert!(store.claim_hunt(lease).await.unwrap().is_none());
        let (a_run, b_run) = if c1.tenant_id == a.id {
            (c1, c2)
        } else {
            (c2, c1)
        };
        assert_eq!(
            (a_run.tenant_id.as_str(), a_run.attempts),
            (a.id.as_str(), 1)
        );
        assert_eq!(b_run.id, b1.id);
        // Named as they were claimed.
        let (a1, a2) = if a_run.id == a1.id {
            (a1, a2)
        } else {
            (a2, a1)
        };
        // Progress is recorded while the claim holds; a cancelled hunt stores nothing.
        assert!(store.renew_hunt(&a1.id, 1, lease, 10, 2).await.unwrap());
        assert_eq!(
            store.hunt(&a1.id).await.unwrap().unwrap().events_scanned,
            10
        );
        let cancelled = store.cancel_hunt(&b1.id).await.unwrap().unwrap();
        assert_eq!(cancelled.state, HuntState::Cancelled);
        assert!(!store.renew_hunt(&b1.id, 1, lease, 1, 1).await.unwrap());
        let mut round = store.begin_write_round().await.unwrap();
        assert!(
            !round
                .finish_hunt(&b1.id, 1, &HuntResult::default())
                .await
                .unwrap()
        );
        drop(round);
        // Done: the findings, the counts and the notices stay with it; the tenant's next runs.
        let result = HuntResult {
            events_scanned: 12,
            batches_scanned: 3,
            finding_ids: vec!["f1".into(), "f2".into()],
            notices: vec!["n".into()],
        };
        let mut round = store.begin_write_round().await.unwrap();
        assert!(round.finish_hunt(&a1.id, 1, &result).await.unwrap());
        round.commit().await.unwrap();
        let done = store.hunt(&a1.id).await.unwrap().unwrap();
        assert_eq!(done.state, HuntState::Done);
        assert_eq!((done.events_scanned, done.batches_scanned), (12, 3));
        assert_eq!(done.finding_ids, ["f1", "f2"]);
        assert_eq!(done.notices, ["n"]);
        assert!(done.finished_ms.is_some());
        assert!(store.cancel_hunt(&a1.id).await.unwrap().unwrap().state == HuntState::Done);
        // A stopping server gives its hunt back without spending an attempt.
        let next = store.claim_hunt(lease).await.unwrap().unwrap();
        assert_eq!(next.id, a2.id);
        assert!(store.release_hunt(&a2.id, 1).await.unwrap());
        let again = store.claim_hunt(lease).await.unwrap().unwrap();
        assert_eq!((again.id.as_str(), again.attempts), (a2.id.as_str(), 1));
        // A server that stopped without giving it back: its lease runs out, another server
        // takes it (the old claim can no longer renew or finish), at most MAX_HUNT_ATTEMPTS
        // times; then it fails with the reason.
        assert!(
            store.claim_hunt(lease).await.unwrap().is_none(),
            "the lease holds"
        );
        let mut attempt = again.attempts;
        while attempt < MAX_HUNT_ATTEMPTS {
            // The lease runs out (renewed with none left).
            assert!(store.renew_hunt(&a2.id, attempt, -1, 0, 0).await.unwrap());
            let taken = store.claim_hunt(lease).await.unwrap().unwrap();
            assert_eq!(
                (taken.id.as_str(), taken.attempts),
                (a2.id.as_str(), attempt + 1)
            );
            assert!(
                !store
                    .renew_hunt(&a2.id, attempt, lease, 1, 1)
                    .await
                    .unwrap()
            );
            attempt = taken.attempts;
        }
        assert!(store.renew_hunt(&a2.id, attempt, -1, 0, 0).await.unwrap());
        assert!(store.claim_hunt(lease).await.unwrap().is_none());
        let failed = store.hunt(&a2.id).await.unwrap().unwrap();
        assert_eq!(failed.state, HuntState::Failed);
        assert!(
            failed.detail.contains("stopped 3 times"),
            "{}",
            failed.detail
        );
        assert_eq!(store.active_hunts(&a.id).await.unwrap(), 0);
        // Listing: newest first, one tenant's or all.
        assert_eq!(store.hunts(Some(&a.id), None, 10).await.unwrap().len(), 2);
        let all = store.hunts(None, None, 10).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].created_ms >= w[1].created_ms));
    })
    .await;
}

/// The data directory a store creates, and its database file, are its owner's only.
#[cfg(unix)]
#[tokio::test]
async fn a_new_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let store = Store::open_sqlite(&dir).await.unwrap();
    store.create_tenant("a", TenantKind::Member).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

/// Tokens expire, remember their last use, and a cluster's ingest token rotates with an
/// overlap during which both work.
#[tokio::test]
async fn tokens_expire_and_ingest_tokens_rotate() {
    each_backend(|store| async move {
        let t = store.create_tenant("a", TenantKind::Member).await.unwrap();
        let past = osprey_store::now_ms() - 1;
        let (_, expired) = store
            .create_token_expiring(&t.id, "old", Role::Viewer, None, Some(past))
            .await
            .unwrap();
        assert!(store.authenticate(&expired).await.unwrap().is_none());
        let (info, fresh) = store
            .create_token_expiring(&t.id, "new", Role::Viewer, None, Some(past + 3_600_000))
            .await
            .unwrap();
        assert!(
            store
                .token(&info.id)
                .await
                .unwrap()
                .unwrap()
                .last_used_ms
                .is_none()
        );
        assert!(store.authenticate(&fresh).await.unwrap().is_some());
        let used = store.token(&info.id).await.unwrap().unwrap();
        assert!(used.last_used_ms.is_some());
        assert_eq!(used.expires_ms, Some(past + 3_600_000));

        let (cluster, first) = store.create_cluster(&t.id, "prod").await.unwrap();
        // With an overlap, both work until it ends.
        let (_, second, until) = store.rotate_ingest_token(&cluster, 600_000).await.unwrap();
        assert!(until > osprey_store::now_ms());
        assert!(store.authenticate(&first).await.unwrap().is_some());
        assert!(store.authenticate(&second).await.unwrap().is_some());
        // Without, the others stop at once.
        let (third_info, third, _) = store.rotate_ingest_token(&cluster, 0).await.unwrap();
        assert!(store.authenticate(&first).await.unwrap().is_none());
        assert!(store.authenticate(&second).await.unwrap().is_none());
        let p = store.authenticate(&third).await.unwrap().unwrap();
        assert_eq!(
            (p.role, p.cluster_id.as_deref()),
            (Role::Ingest, Some(cluster.id.as_str()))
        );
        assert_eq!(third_info.cluster_id.as_deref(), Some(cluster.id.as_str()));
    })
    .await;
}
