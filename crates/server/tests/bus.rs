//! The bus against the NATS server with JetStream CI runs (127.0.0.1:4222, or
//! OSPREY_TEST_NATS_URL) and a scratch PostgreSQL schema: batches and scan jobs round-trip,
//! the leader re-publishes only jobs the bus lacks, and leases split between two servers of one
//! database. (Two whole servers sharing the work: crates/osprey/tests/serve.rs.)

use std::time::Duration;

use futures_util::StreamExt;
use osprey_server::bus::{Bus, PARTITIONS, partition_of};
use osprey_store::{NewAuditBatch, NewScan, ScanKind, Store, TenantKind, testing};

fn nats_url() -> String {
    std::env::var("OSPREY_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn bus(store: &Store) -> Bus {
    let client = Bus::reach(&nats_url())
        .await
        .expect("NATS with JetStream on 127.0.0.1:4222 is part of the test setup");
    Bus::open(client, store, 64 << 20).await.unwrap()
}

#[tokio::test]
async fn batches_and_jobs_round_trip_and_missing_jobs_are_published_once() {
    let store = testing::scratch_postgres()
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (database test) is part of the test setup");
    let bus = bus(&store).await;
    let other = self::bus(&store).await;
    assert_eq!(
        bus.namespace, other.namespace,
        "one database, one namespace"
    );

    let t = store
        .create_tenant("org", TenantKind::Administrator)
        .await
        .unwrap();
    let (c, _) = store.create_cluster(&t.id, "prod").await.unwrap();
    let batch = NewAuditBatch {
        cluster_id: c.id.clone(),
        received_ms: 1234,
        events: 7,
        body: b"zstd bytes".to_vec(),
    };
    let seq = bus.publish_batch(batch.clone()).await.unwrap();
    let p = partition_of(&c.id);
    let consumer = bus.partition_consumer(p).await.unwrap();
    let mut fetched = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let m = fetched.next().await.unwrap().unwrap();
    let got = Bus::batch(&m).unwrap();
    assert_eq!(got.batch.seq, seq as i64);
    assert_eq!(
        (
            got.batch.cluster_id.as_str(),
            got.batch.received_ms,
            got.batch.events,
            got.batch.body.as_slice()
        ),
        (c.id.as_str(), 1234, 7, &b"zstd bytes"[..])
    );
    m.double_ack().await.unwrap();

    // A job queued a minute ago that never reached the bus (its server stopped first).
    let job = store
        .enqueue_scan(&NewScan {
            tenant_id: t.id.clone(),
            cluster_id: None,
            image: "registry.example/app:1".into(),
            kind: ScanKind::OnDemand,
            trigger_finding_id: None,
            workload: None,
        })
        .await
        .unwrap();
    store
        .raw_execute("UPDATE scan_jobs SET created_ms = created_ms - 60000")
        .await
        .unwrap();
    assert_eq!(bus.requeue_missing_scans(&store).await.unwrap(), 1);
    assert_eq!(
        bus.requeue_missing_scans(&store).await.unwrap(),
        0,
        "on the bus now: not published twice"
    );
    let m = other
        .next_scan(Duration::from_secs(2))
        .await
        .unwrap()
        .expect("the job reaches a worker of any server");
    assert_eq!(m.payload.as_ref(), job.id.as_bytes());
    assert!(
        bus.next_scan(Duration::from_millis(500))
            .await
            .unwrap()
            .is_none(),
        "one worker at a time"
    );
    assert_eq!(
        bus.requeue_missing_scans(&store).await.unwrap(),
        0,
        "being worked on: still on the bus"
    );
    m.double_ack().await.unwrap();
    // Acknowledged without being run (the store still says queued): published again, and
    // handed out again.
    assert_eq!(bus.requeue_missing_scans(&store).await.unwrap(), 1);
    let m = bus
        .next_scan(Duration::from_secs(2))
        .await
        .unwrap()
        .expect("published again, not dropped as a duplicate");
    assert_eq!(m.payload.as_ref(), job.id.as_bytes());
    m.double_ack().await.unwrap();

    osprey_server::bus::delete_namespace(&nats_url(), &bus.namespace)
        .await
        .unwrap();
}

#[tokio::test]
async fn two_servers_split_the_partitions_and_one_leads() {
    let store = testing::scratch_postgres()
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (database test) is part of the test setup");
    let a = bus(&store).await;
    a.renew().await.unwrap();
    assert_eq!(a.held().len(), PARTITIONS as usize, "alone: everything");
    assert!(a.is_leader());
    let b = bus(&store).await;
    b.renew().await.unwrap();
    assert_eq!(b.servers(), 2);
    assert!(b.held().is_empty(), "nothing free yet");
    assert!(!b.is_leader());
    // A sees B and marks half of its partitions for handing back; the detector hands them
    // back (here: at once); the next renewals delete and take them.
    a.renew().await.unwrap();
    let handing: Vec<u32> = a
        .held()
        .into_iter()
        .filter(|(_, h)| h.release)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(handing.len(), PARTITIONS as usize / 2);
    for p in &handing {
        a.released(*p);
    }
    a.renew().await.unwrap();
    b.renew().await.unwrap();
    let (ha, hb) = (a.held(), b.held());
    assert_eq!((ha.len(), hb.len()), (8, 8));
    assert!(ha.keys().all(|p| !hb.contains_key(p)), "never both");
    assert!(a.is_leader() && !b.is_leader());
    // A stops: B takes everything and leads.
    a.release(true).await;
    b.renew().await.unwrap();
    assert_eq!(b.servers(), 1);
    assert_eq!(b.held().len(), PARTITIONS as usize);
    assert!(b.is_leader());
    b.release(true).await;
    osprey_server::bus::delete_namespace(&nats_url(), &a.namespace)
        .await
        .unwrap();
}
