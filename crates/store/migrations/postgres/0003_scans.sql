-- Image scans: on demand (API), triggered by an audit finding, scheduled re-scans. A worker
-- claims a queued job, pulls the image, takes its inventory (kept below as the SBOM of its
-- digest), matches it against the vulnerability database and scans it for malware.
CREATE TABLE scan_jobs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    cluster_id TEXT,
    image TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('on_demand', 'triggered', 'scheduled')),
    trigger_finding_id TEXT,
    -- The workload running the image (KubernetesResource JSON), for triggered scans.
    workload TEXT,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'skipped')),
    -- Why a job failed or was skipped.
    detail TEXT NOT NULL,
    image_digest TEXT,
    -- A skipped triggered job: the job that scanned the same digest within the window.
    reused_from TEXT,
    packages BIGINT NOT NULL,
    vulnerabilities BIGINT NOT NULL,
    threats BIGINT NOT NULL,
    -- JSON list of the findings the scan stored.
    finding_ids TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    started_ms BIGINT,
    finished_ms BIGINT
);
CREATE INDEX scan_jobs_queue ON scan_jobs (state, created_ms);
CREATE INDEX scan_jobs_tenant ON scan_jobs (tenant_id, created_ms);
CREATE INDEX scan_jobs_digest ON scan_jobs (tenant_id, image_digest, finished_ms);

-- When each image a finding named was last queued for a triggered scan, per tenant.
CREATE TABLE scan_triggers (
    tenant_id TEXT NOT NULL,
    image TEXT NOT NULL,
    last_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, image)
);

-- The inventory (SBOM) of each scanned image digest, per tenant: re-matched against every new
-- vulnerability database without pulling the image again.
CREATE TABLE sboms (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    image_digest TEXT NOT NULL,
    reference TEXT NOT NULL,
    cluster_id TEXT,
    os TEXT NOT NULL,
    packages BIGINT NOT NULL,
    -- zstd-compressed JSON of the inventory.
    inventory BYTEA NOT NULL,
    -- JSON list of the open vulnerability findings of this digest.
    vuln_finding_ids TEXT NOT NULL,
    -- When the vulnerability database last matched against it was built ('' = never matched).
    matched_db TEXT NOT NULL,
    scanned_ms BIGINT NOT NULL,
    matched_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, image_digest)
);
CREATE INDEX sboms_scanned ON sboms (scanned_ms);

-- Registries a tenant pulls from, with credentials (the password sealed with the server's
-- secret key: ChaCha20-Poly1305, nonce first; empty when there is none).
CREATE TABLE registries (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    host TEXT NOT NULL,
    username TEXT NOT NULL,
    sealed_password BYTEA NOT NULL,
    insecure BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (tenant_id, host)
);
