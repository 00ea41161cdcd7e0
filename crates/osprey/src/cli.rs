//! The command tree. Only commands that work are here; more arrive with their engines.

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  osprey image inspect alpine:3.20
  osprey image inspect oci-dir:./layout:v1 --files
  osprey image inspect docker-archive:app.tar --format json
  osprey image inspect registry:127.0.0.1:5000/bench/app:v1 --insecure

SOURCE is one of:
  registry:REF               an image in a registry (docker.io/library/alpine:3.20, ghcr.io/o/a@sha256:…)
  docker-archive:PATH[:REF]  a `docker save` archive (plain or gzip)
  oci-dir:PATH[:TAG]         an OCI image layout directory
  oci-archive:PATH[:TAG]     a tar of an OCI image layout
  dir:PATH                   a root file system
  PATH or REF                an existing file or directory (kind detected), else a registry reference";

/// Osprey — self-hosted container threat detection.
#[derive(Debug, Parser)]
#[command(name = "osprey", version, about, long_about = None, after_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print only results and errors: no progress, no warnings.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log verbosity on stderr (error, warn, info, debug, trace), or a tracing filter
    /// such as `osprey_image=debug`.
    #[arg(
        long,
        global = true,
        env = "OSPREY_LOG",
        default_value = "warn",
        value_name = "LEVEL"
    )]
    pub log_level: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Container images: inspect (more subcommands arrive with their engines).
    #[command(subcommand)]
    Image(ImageCommand),
    /// Inventory of an image or file system: OS and every installed package (an SBOM).
    #[command(after_help = SBOM_EXAMPLES, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Sbom(SbomArgs),
    /// The vulnerability database: build it from feeds, update it, describe it.
    #[command(subcommand)]
    Db(DbCommand),
    /// Kubernetes audit-log threat detection.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Malware scanning with YARA rules and hash lists, inside archives.
    #[command(subcommand)]
    Malware(MalwareCommand),
    /// The investigation graph offline: build it from audit logs into a local store, show an
    /// entity's profile.
    #[command(subcommand)]
    Graph(GraphCommand),
    /// The platform: audit webhook, detection, findings API, tenants and tokens.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

const SERVE_EXAMPLES: &str = "\
Examples:
  osprey serve --data /var/lib/osprey
  osprey serve --data /var/lib/osprey --database postgres://osprey@db:5432/osprey --listen 0.0.0.0:8080

The first start on an empty store creates the organization's administrator tenant and writes an
admin token to DATA/admin-token (mode 0600). Clusters post audit events to
/v1/clusters/{id}/audit with their ingest token; findings are at /v1/findings.";

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Data directory: the embedded SQLite database (unless --database) and the admin token.
    #[arg(long, value_name = "DIR", default_value = "osprey-data")]
    pub data: std::path::PathBuf,
    /// PostgreSQL instead of the embedded SQLite (postgres://user@host:5432/db).
    #[arg(long, value_name = "URL", env = "OSPREY_DATABASE_URL")]
    pub database: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Audit events waiting for detection beyond which the webhook answers 429.
    #[arg(long, value_name = "N", default_value_t = 2_000_000)]
    pub max_pending_events: i64,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Days raw audit events are kept after detection.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    pub audit_retention_days: u64,
    /// Detected audit events (and batches) remembered, so that a retried batch adds nothing
    /// (for at most 24 hours; about 20 bytes of memory each).
    #[arg(long, value_name = "N", default_value_t = osprey_server::detector::seen::DEFAULT_MAX_KEYS as u64,
          value_parser = clap::value_parser!(u64).range(1024..=1u64 << 30))]
    pub dedupe_events: u64,
    /// Days the investigation graph keeps its hourly relationship counts (and entities last
    /// seen within them); 0 keeps no graph.
    #[arg(long, value_name = "DAYS", default_value_t = 365,
          value_parser = clap::value_parser!(u64).range(0..=3650))]
    pub graph_retention_days: u64,
    /// New relationships one entity may make in an hour; beyond it the hour keeps only its
    /// counts, and the entity's profile says so.
    #[arg(long, value_name = "N", default_value_t = osprey_graph::DEFAULT_MAX_EDGES_PER_HOUR as u64,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub graph_max_edges_per_hour: u64,
    /// The vulnerability database image scans match against (from `osprey db update` or
    /// `db build`); when the file is replaced, every stored SBOM is matched again.
    #[arg(long, value_name = "FILE", env = "OSPREY_VULN_DB")]
    pub vuln_db: Option<std::path::PathBuf>,
    /// Image scans run at once (0 turns scanning off, triggered scans included).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub scan_workers: usize,
    /// A file holding the token /metrics asks for (Authorization: Bearer TOKEN); without it
    /// /metrics is open, for a scraper on a private network. OSPREY_METRICS_TOKEN takes
    /// precedence.
    #[arg(long, value_name = "FILE")]
    pub metrics_token_file: Option<std::path::PathBuf>,
    /// Minutes one scan may spend downloading its image before it fails.
    #[arg(long = "scan-timeout", value_name = "MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub scan_timeout_minutes: u64,
    /// Megabytes one scan may download (manifests, configs and layers) before it fails.
    #[arg(long, value_name = "MB", default_value_t = 20_480, value_parser = clap::value_parser!(u64).range(1..))]
    pub scan_max_download_mb: u64,
    /// Scans of one tenant running at once (default: half the --scan-workers, at least 1), so
    /// one tenant's queue cannot hold every worker.
    #[arg(long, value_name = "N")]
    pub scan_jobs_per_tenant: Option<usize>,
    /// Scans of one tenant waiting at most: beyond, on-demand scans are refused (429) and
    /// triggered and scheduled ones dropped until the queue drains.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
    pub scan_queue_per_tenant: i64,
    /// Hours after which a scanned image is pulled and scanned again (0: never).
    #[arg(long, value_name = "HOURS", default_value_t = 24)]
    pub rescan_interval_hours: u64,
    /// The 256-bit key (64 hex digits) that seals registry passwords; OSPREY_SECRET_KEY takes
    /// precedence. Default: DATA/secret-key, created on first start. Servers sharing a
    /// database must share the key.
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: Option<std::path::PathBuf>,
    /// Let scans name local sources (oci-dir:, docker-archive:, dir:), not only registry
    /// references. Only for a server that its users may read the file system of.
    #[arg(long)]
    pub allow_local_images: bool,
    /// Let the server connect to a destination that is not a public address (a registry, a
    /// token server, an output): an address, a CIDR range or a host name; repeatable.
    /// Otherwise loopback, link-local (cloud metadata), private, shared (CGNAT), multicast
    /// and reserved addresses are refused. --demo allows 127.0.0.1 and ::1.
    #[arg(long = "allow-destination", value_name = "CIDR|HOST")]
    pub allow_destination: Vec<osprey_egress::Allowed>,
    /// Share the database with other `osprey serve` processes through NATS JetStream
    /// (nats://host:4222): batches, detection (by cluster) and scans (by job) are split
    /// between all servers on the same --database and --bus.
    #[arg(
        long,
        value_name = "URL",
        env = "OSPREY_BUS_URL",
        requires = "database",
        conflicts_with = "demo"
    )]
    pub bus: Option<String>,
    /// With --bus: megabytes of batches the bus holds waiting for detection, beyond which the
    /// webhook answers 429.
    #[arg(long, value_name = "MB", default_value_t = 1024, requires = "bus")]
    pub bus_max_mb: u64,
    /// Set up a demo organization: a member tenant "demo" whose cluster gets the bundled attack
    /// story through the webhook; the story's privileged pod runs the bundled example image,
    /// which its findings get scanned (vulnerabilities matched against the bundled example
    /// advisories unless --vuln-db is given). Prints where the API shows the results.
    #[arg(long, conflicts_with = "tls_cert")]
    pub demo: bool,
    /// Where --demo finds the bundled examples.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "examples",
        requires = "demo"
    )]
    pub examples: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint an API token offline (printed once on stdout; the store keeps only its hash).
    Create(TokenCreateArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Tenant name (the administrator tenant is "admin").
    #[arg(long)]
    pub tenant: String,
    /// admin, analyst or viewer.
    #[arg(long)]
    pub role: String,
    /// A name to recognise the token by.
    #[arg(long, default_value = "cli")]
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum MalwareCommand {
    /// Scan a directory tree or a file (archives and compressed files are opened: zip/jar/war,
    /// tar, gzip, bzip2, xz, zstd, .deb), with YARA rules and hash lists.
    #[command(after_help = MALWARE_SCAN_EXAMPLES)]
    Scan(MalwareScanArgs),
}

const MALWARE_SCAN_EXAMPLES: &str = "\
Examples:
  osprey malware scan dir:/srv/www
  osprey malware scan upload.zip --rules signature-base/yara --hashes hash-iocs.txt
  osprey malware scan registry:registry.example.com/shop/web:1.4 --rules rules.zip
  osprey malware scan oci-dir:build/image --workload prod/shop/pods/web-1
  osprey malware scan disk:snapshot.qcow2 --hashes main.hsb --format json -o scan.json

Sources: dir:PATH; an image (registry:REF, docker-archive:PATH, oci-dir:PATH, oci-archive:PATH),
scanned layer by layer with results cached per layer; disk:PATH, a raw or qcow2 disk image (MBR,
GPT or no partition table; ext2/3/4 read without mounting); or a path (a directory, an image
archive, or any other file). Archives inside are opened. EICAR is detected by a built-in rule.";

#[derive(Debug, Args)]
pub struct MalwareScanArgs {
    /// What to scan: dir:PATH, an image source, disk:PATH, or a path.
    pub source: String,
    /// YARA rules: a file, a directory of .yar/.yara files, or a .zip of them. Repeatable.
    /// Compiled rules are cached under the cache directory.
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<std::path::PathBuf>,
    /// Hash lists: plain (`hash;name`), CSV, ClamAV .hdb/.hsb. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub hashes: Vec<std::path::PathBuf>,
    /// Leave out the built-in EICAR rule.
    #[arg(long)]
    pub no_builtin_rules: bool,
    /// The Kubernetes workload running the scanned image, [CLUSTER/]NAMESPACE/KIND/NAME: the
    /// finding becomes Execution:Kubernetes/… and names it.
    #[arg(long, value_name = "WORKLOAD")]
    pub workload: Option<String>,
    /// Exit with N when something is found.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub exit_code: i32,
    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<MalwareFormat>,
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MalwareFormat {
    /// A summary and one row per detection.
    Table,
    /// `{"summary", "finding", "detections", "skipped"}`.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Run the detection catalogue over audit logs: API-server log files (JSON lines),
    /// webhook EventList batches, EKS CloudWatch exports, AKS diagnostic records, GKE Cloud
    /// Audit Logs; gzip or not; `-` for standard input.
    #[command(after_help = AUDIT_ANALYZE_EXAMPLES)]
    Analyze(AuditAnalyzeArgs),
    /// Generate realistic audit traffic of a cluster (kubelet leases and status, leader
    /// election, controller watches, token refreshes, CI rollouts, developers, monitoring) as
    /// JSON lines, optionally with attack stories injected half-way.
    #[command(after_help = AUDIT_SIMULATE_EXAMPLES)]
    Simulate(AuditSimulateArgs),
    /// Send offline audit logs to an `osprey serve` cluster through its webhook: API-server log
    /// files, EventList documents, EKS CloudWatch exports, AKS diagnostic records, GKE Cloud
    /// Audit Logs (gzip or not; `-` for standard input), as EventList batches. Importing the
    /// same logs again adds nothing (the server knows events by audit id).
    #[command(after_help = AUDIT_IMPORT_EXAMPLES)]
    Import(AuditImportArgs),
}

const AUDIT_IMPORT_EXAMPLES: &str = "\
Examples:
  osprey audit import --server https://osprey.example:8443 --cluster $ID --token $INGEST audit.log.gz
  aws logs filter-log-events --log-group-name /aws/eks/prod/cluster --log-stream-name-prefix kube-apiserver-audit \\
    | osprey audit import --server http://127.0.0.1:8080 --cluster $ID -";

#[derive(Debug, Args)]
pub struct AuditImportArgs {
    /// Audit log files (`-` for standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// The server's base URL.
    #[arg(long, value_name = "URL", env = "OSPREY_SERVER")]
    pub server: String,
    /// The cluster's id (POST /v1/clusters answers it with its ingest token).
    #[arg(long, value_name = "ID")]
    pub cluster: String,
    /// The cluster's ingest token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "OSPREY_INGEST_TOKEN",
        hide_env_values = true
    )]
    pub token: String,
    /// Events per batch (a batch also stays under 8 MiB).
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub batch_events: usize,
    /// Accept a server certificate that does not verify (a self-signed test server).
    #[arg(long)]
    pub insecure: bool,
}

const AUDIT_SIMULATE_EXAMPLES: &str = "\
Examples:
  osprey audit simulate --nodes 50 --duration 24h -o day.jsonl
  osprey audit simulate --nodes 3 --duration 1h --attack anonymous-admin | osprey audit analyze -
  osprey audit simulate --duration 10m --rate 20000 -o load.jsonl

Attacks: anonymous-admin, token-theft, crypto-miner.";

#[derive(Debug, Args)]
pub struct AuditSimulateArgs {
    /// Nodes in the cluster.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub nodes: usize,
    /// Simulated time (s, m, h, d).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub duration: String,
    /// Average events per simulated second (the cluster's own traffic is topped up with
    /// controller reads to reach it).
    #[arg(long, value_name = "EVENTS_PER_S")]
    pub rate: Option<f64>,
    /// Inject an attack story half-way (repeatable).
    #[arg(long, value_name = "NAME")]
    pub attack: Vec<String>,
    /// Seed of the generator (the same seed gives the same traffic).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start time (RFC 3339; default 2026-01-01T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

const AUDIT_ANALYZE_EXAMPLES: &str = "\
Examples:
  osprey audit analyze /var/log/kubernetes/audit.log
  osprey audit analyze audit-*.log.gz --format json -o findings.json
  osprey audit analyze --follow /var/log/kubernetes/audit.log --threat-list bad-ips.txt
  osprey audit analyze --listen 127.0.0.1:9765 --ingest-token \"$TOKEN\"   (webhook backend)

Lists: plain text (one IP or CIDR per line), CSV, STIX 2.1 bundles, Tor exit lists.";

#[derive(Debug, Args)]
pub struct AuditAnalyzeArgs {
    /// Audit log files (`-` reads standard input).
    #[arg(required_unless_present = "listen", value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// Receive the API server's audit webhook batches (EventList JSON, POST to /k8s-audit) on
    /// ADDR instead of reading files; findings are printed as they appear. Stop with Ctrl-C.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["files", "follow"])]
    pub listen: Option<String>,
    /// With --listen: the bearer token the webhook must present (its kubeconfig's `token`).
    #[arg(
        long,
        env = "OSPREY_INGEST_TOKEN",
        value_name = "TOKEN",
        requires = "listen",
        hide_env_values = true
    )]
    pub ingest_token: Option<String>,
    /// Keep reading the (single) file as it grows, across rotation; print findings as they
    /// appear. Stop with Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// More rule files (a directory of .yaml files, or one file), read after the built-in
    /// catalogue: new rules, overrides by id, list additions, exceptions, suppressions.
    #[arg(long, value_name = "DIR")]
    pub rules: Vec<std::path::PathBuf>,
    /// Your own threat list (`….MaliciousIPCaller.Custom` findings name it). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub threat_list: Vec<std::path::PathBuf>,
    /// A threat-intelligence feed (`….MaliciousIPCaller` findings). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub intel_list: Vec<std::path::PathBuf>,
    /// A Tor exit-node list (`….TorIPCaller` findings). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub tor_list: Vec<std::path::PathBuf>,
    /// Addresses never reported by the intel rules (wins over every other list). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub trusted_list: Vec<std::path::PathBuf>,
    /// A MaxMind ASN (or ISP) database: callers' networks for baselines and findings.
    #[arg(long, value_name = "FILE")]
    pub asn_db: Option<std::path::PathBuf>,
    /// Load learned baselines from FILE when it exists, and save them there at the end.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<std::path::PathBuf>,
    /// How long baselines of a new cluster only learn, in event time (s, m, h, d).
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub learning_period: String,
    /// The cluster name for events that do not carry one.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub cluster: String,
    /// Report findings of at least this severity (INFO, LOW, MEDIUM, HIGH, CRITICAL).
    #[arg(long, value_name = "LABEL", default_value = "LOW")]
    pub min_severity: osprey_model::SeverityLabel,
    /// Also list findings archived by suppression rules.
    #[arg(long)]
    pub show_suppressed: bool,
    /// Exit with N when a reported finding is at or above --fail-on.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub exit_code: i32,
    /// The severity --exit-code gates on.
    #[arg(long, value_name = "LABEL", default_value = "HIGH")]
    pub fail_on: osprey_model::SeverityLabel,
    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<AuditFormat>,
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// A summary and one row per finding, most severe first.
    Table,
    /// `{"summary": …, "findings": […]}` in Osprey's finding model.
    Json,
    /// OCSF Detection Finding (class 2004), one event per finding, as a JSON array.
    OcsfJson,
}

const SBOM_EXAMPLES: &str = "\
Examples:
  osprey sbom alpine:3.20
  osprey sbom docker-archive:app.tar --format json -o app.sbom.json
  osprey sbom dir:/srv/rootfs

Finds: dpkg (status and distroless status.d), apk, Python (dist-info, egg-info, eggs, wheels),
npm (package.json, package-lock.json, yarn.lock), Java archives (nested), Go binaries,
Rust (cargo-auditable binaries, Cargo.lock), .NET deps.json, PHP composer, Ruby gems.";

#[derive(Debug, Args)]
pub struct SbomArgs {
    #[command(subcommand)]
    pub command: Option<SbomCommand>,
    /// The image or file system (see `osprey image inspect --help` for SOURCE forms).
    #[arg(required = true)]
    pub source: Option<String>,
    #[command(flatten)]
    pub image: ImageArgs,
    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<SbomFormat>,
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// The per-layer analysis cache.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Cache of per-layer results, keyed by layer digests (default: $OSPREY_CACHE_DIR,
    /// else $XDG_CACHE_HOME/osprey, else ~/.cache/osprey).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,
    /// Analyse every layer; neither read nor write the cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SbomFormat {
    /// Packages grouped by type, for people.
    Table,
    /// Osprey's own JSON: everything found, lossless.
    Json,
    /// CycloneDX 1.6 JSON.
    CyclonedxJson,
    /// SPDX 2.3 JSON.
    SpdxJson,
}

#[derive(Debug, Subcommand)]
pub enum SbomCommand {
    /// Vulnerabilities of the packages an existing CycloneDX or SPDX JSON SBOM lists.
    #[command(after_help = SBOM_SCAN_EXAMPLES)]
    Scan(SbomScanArgs),
}

const SBOM_SCAN_EXAMPLES: &str = "\
Examples:
  osprey sbom scan app.cdx.json
  osprey sbom scan app.spdx.json --severity HIGH,CRITICAL --exit-code 1";

#[derive(Debug, Args)]
pub struct SbomScanArgs {
    /// A CycloneDX (1.4–1.6) or SPDX 2.x JSON document.
    pub file: std::path::PathBuf,
    #[command(flatten)]
    pub scan: ScanOptions,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Show an image's digest, platform, layers and configuration.
    #[command(after_help = EXAMPLES)]
    Inspect(InspectArgs),
    /// Vulnerabilities of an image's packages, matched offline against the database; a CI gate.
    #[command(after_help = SCAN_EXAMPLES)]
    Scan(ScanArgs),
}

const SCAN_EXAMPLES: &str = "\
Examples:
  osprey image scan alpine:3.20
  osprey image scan docker-archive:app.tar --severity HIGH,CRITICAL --ignore-unfixed --exit-code 1
  osprey image scan oci-dir:./layout:v1 --format sarif -o results.sarif
  osprey image scan app.tar --ignore-file .ospreyignore.yaml --vex app.openvex.json

The database comes from `osprey db update` (or `osprey db build` offline); scans never use the
network for it and warn when it is more than 7 days old.

Exit codes: 0 no findings at or above the gate (or no --exit-code), N (from --exit-code) when
there are, 2 bad input, 3 internal error.";

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The image or file system (see `osprey image inspect --help` for SOURCE forms).
    pub source: String,
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub scan: ScanOptions,
}

/// What `image scan` and `sbom scan` share: the database, the gate, suppressions, the output.
#[derive(Debug, Args)]
pub struct ScanOptions {
    #[command(flatten)]
    pub db: DbArgs,
    /// Report only these severities (comma-separated: UNTRIAGED, LOW, MEDIUM, HIGH, CRITICAL).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub severity: Vec<osprey_model::SeverityLabel>,
    /// Leave out vulnerabilities that have no fixed version yet.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Exit with this code when any finding remains after filters, ignores and VEX.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub exit_code: i32,
    /// Ignore rules (YAML: id, package/purl glob, path glob, expiry date, reason). Default:
    /// .ospreyignore.yaml in the current directory when present.
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Option<std::path::PathBuf>,
    /// OpenVEX documents; `not_affected` and `fixed` statements suppress findings. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub vex: Vec<std::path::PathBuf>,
    /// Also list suppressed findings (marked, with the reason), outside the gate.
    #[arg(long)]
    pub show_suppressed: bool,
    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<ScanFormat>,
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    /// Findings grouped by target, coloured by severity on a terminal.
    Table,
    /// Osprey's finding JSON.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// CycloneDX 1.6 with vulnerabilities (a VEX-capable BOM).
    CyclonedxJson,
    /// OCSF Vulnerability Finding (class 2002), one event per finding, as a JSON array.
    OcsfJson,
}

/// Where the vulnerability database is.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// The database file (default: $OSPREY_DB, else db/osprey.db in the cache directory).
    #[arg(long, env = "OSPREY_DB", value_name = "PATH")]
    pub db: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Build the database from local feed files (air-gapped sites).
    #[command(after_help = DB_BUILD_EXAMPLES)]
    Build(DbBuildArgs),
    /// Download the OSV archives of each ecosystem and rebuild the database; the previous
    /// database is kept beside it as `.previous`.
    #[command(after_help = DB_UPDATE_EXAMPLES)]
    Update(DbUpdateArgs),
    /// Describe the database: build time, sources, advisories per ecosystem.
    Info(DbInfoArgs),
}

const DB_UPDATE_EXAMPLES: &str = "\
Examples:
  osprey db update
  osprey db update --ecosystem PyPI,npm,Debian
  osprey db update --mirror https://mirror.example.internal/osv --db /srv/osprey/osprey.db

Downloads <mirror>/<ecosystem>/all.zip for each ecosystem (the layout of the public OSV bucket
and of osv-scanner's offline databases), checking each archive against the MD5 the bucket
reports (x-goog-hash) and against <archive>.sha256 when the mirror serves one. Archives are
kept under feeds/ beside the database and downloaded again only when they changed (ETag). The
new database replaces the old one atomically; a failed download leaves it untouched.";

/// Ecosystems `db update` downloads by default: those the inventory finds packages of.
pub const DEFAULT_ECOSYSTEMS: &[&str] = &[
    "PyPI",
    "npm",
    "Go",
    "crates.io",
    "Maven",
    "RubyGems",
    "NuGet",
    "Packagist",
    "Debian",
    "Ubuntu",
    "Alpine",
    "AlmaLinux",
    "Rocky Linux",
    "Wolfi",
    "Chainguard",
];

#[derive(Debug, Args)]
pub struct DbUpdateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Base URL of the OSV archives (`<URL>/<ecosystem>/all.zip`).
    #[arg(
        long,
        env = "OSPREY_DB_MIRROR",
        value_name = "URL",
        default_value = "https://osv-vulnerabilities.storage.googleapis.com"
    )]
    pub mirror: String,
    /// OSV ecosystems to download (comma-separated), default: every ecosystem Osprey
    /// inventories.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub ecosystem: Vec<String>,
    /// Fail (exit 2) instead of skipping when any record is malformed.
    #[arg(long)]
    pub strict: bool,
}

const DB_BUILD_EXAMPLES: &str = "\
Examples:
  osprey db build --osv osv/PyPI/all.zip osv/Go/all.zip --alpine-secdb secdb/ --out osprey.db
  osprey db build --osv ./advisories --debian-tracker debian.json

Feeds:
  --osv            OSV JSON or YAML records: directories (searched recursively), all.zip
                   archives, single files; any ecosystem (PyPI, npm, Go, crates.io, Maven,
                   RubyGems, NuGet, Packagist, Debian:N, Alpine:vX.Y, Ubuntu:X.Y, …)
  --alpine-secdb   Alpine secdb documents (YAML or JSON), a file or a directory of them
  --debian-tracker Debian security tracker JSON export and/or DSA/DLA list files
  --rubysec        ruby-advisory-db checkout (gems/<gem>/*.yml)

Malformed records are reported (file and reason) and skipped; the build goes on.";

#[derive(Debug, Args)]
pub struct DbBuildArgs {
    /// OSV sources; takes several paths and may be repeated.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub osv: Vec<std::path::PathBuf>,
    /// Alpine secdb sources.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub alpine_secdb: Vec<std::path::PathBuf>,
    /// Debian security tracker sources.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub debian_tracker: Vec<std::path::PathBuf>,
    /// Ruby advisory database sources.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub rubysec: Vec<std::path::PathBuf>,
    /// Where to write the database (default: as for --db).
    #[arg(long, short, value_name = "PATH")]
    pub out: Option<std::path::PathBuf>,
    /// Fail (exit 2) instead of skipping when any record is malformed.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct DbInfoArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InspectFormat::Table)]
    pub format: InspectFormat,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image: registry:REF, docker-archive:PATH, oci-dir:PATH[:TAG], oci-archive:PATH[:TAG],
    /// dir:PATH, or a bare path or reference.
    pub source: String,
    #[command(flatten)]
    pub image: ImageArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InspectFormat::Table)]
    pub format: InspectFormat,
    /// Also list the merged file system: every path with its type, size and the layer that
    /// last wrote it (reads every layer).
    #[arg(long)]
    pub files: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    Table,
    Json,
}

/// Options for reaching and picking an image.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Platform to pick from a multi-platform image, os/arch[/variant] (default: this machine's).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Allow plain HTTP for a registry on this machine (127.0.0.1, ::1, localhost) and skip TLS
    /// certificate checks for others.
    #[arg(long)]
    pub insecure: bool,
    /// Registry user name (default: from ~/.docker/config.json).
    #[arg(long, env = "OSPREY_REGISTRY_USERNAME", requires = "password")]
    pub username: Option<String>,
    /// Registry password or token.
    #[arg(
        long,
        env = "OSPREY_REGISTRY_PASSWORD",
        hide_env_values = true,
        requires = "username"
    )]
    pub password: Option<String>,
    /// Do not read credentials from docker's config.json.
    #[arg(long)]
    pub no_docker_config: bool,
}

#[derive(Debug, Subcommand)]
pub enum GraphCommand {
    /// Build the investigation graph of audit logs into a local store: the events go through
    /// the server's detection (findings, graph, finding groups, attack sequences) without a
    /// server. The store is a server's data directory: `osprey serve --data DIR` serves it.
    /// Building again adds only events not seen before.
    #[command(after_help = GRAPH_BUILD_EXAMPLES)]
    Build(GraphBuildArgs),
    /// Print an entity's profile from a store `osprey graph build` made (or a server's data
    /// directory): its calls by result, verb and resource, what was newly observed against the
    /// 45 days before, related entities, findings.
    #[command(after_help = GRAPH_SHOW_EXAMPLES)]
    Show(GraphShowArgs),
}

const GRAPH_BUILD_EXAMPLES: &str = "\
Examples:
  osprey graph build --db ./graph examples/audit/attack-story.jsonl
  osprey graph build --db ./graph --cluster prod audit.log.1.gz audit.log.2.gz";

const GRAPH_SHOW_EXAMPLES: &str = "\
Examples:
  osprey graph show --db ./graph ip/203.0.113.66
  osprey graph show --db ./graph subject/local/system%3Aanonymous --format json
  osprey graph show --db ./graph pod/local/default/node-debugger --start 2026-11-20T09:00:00Z --end 2026-11-20T10:00:00Z

An entity is TYPE/ID: cluster/C, namespace/C/NS, pod/C/NS/NAME, subject/C/USERNAME (percent-encoded),
node/C/NAME, ip/ADDRESS, user-agent/ENCODED, image/sha256:..., finding/ID, vulnerability/ID,
package/PURL (percent-encoded); C is a cluster's id or name.";

#[derive(Debug, Args)]
pub struct GraphBuildArgs {
    /// Audit logs: API-server log files, EventList documents, EKS CloudWatch exports, AKS and
    /// GKE records (gzip or not; `-` for standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// The store's directory (created when missing).
    #[arg(long, value_name = "DIR")]
    pub db: std::path::PathBuf,
    /// The name of the cluster the logs are of.
    #[arg(long, value_name = "NAME", default_value = "local")]
    pub cluster: String,
    /// The cluster's snapshot, taken after the logs: what `kubectl get pods,serviceaccounts,
    /// roles,rolebindings,clusterroles,clusterrolebindings -A -o json` printed (its running
    /// pods and RBAC, for impact).
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<std::path::PathBuf>,
    /// An image scan of the cluster's images (`osprey image scan --format json`): its
    /// vulnerability findings join the graph, linked to the image. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub scan: Vec<std::path::PathBuf>,
    /// An SBOM of one of the cluster's images (CycloneDX or SPDX JSON, as `osprey sbom`
    /// writes, naming the image's digest): the image is linked to each of its packages.
    /// Repeatable.
    #[arg(long, value_name = "FILE")]
    pub sbom: Vec<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct GraphShowArgs {
    /// The entity (TYPE/ID).
    #[arg(value_name = "ENTITY")]
    pub entity: String,
    /// The store's directory.
    #[arg(long, value_name = "DIR")]
    pub db: std::path::PathBuf,
    /// The scope's start, on an hour (RFC 3339; default: the entity's first hour, at most a
    /// year before the end).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// The scope's end, on an hour (RFC 3339; default: after the entity's last hour).
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Related entities shown at most.
    #[arg(long, value_name = "N", default_value_t = 25)]
    pub related: usize,
    /// The entity's impact instead of its profile (an image, a vulnerability, a subject or
    /// a pod): the running pods concerned and who can reach them.
    #[arg(long, conflicts_with_all = ["start", "end"])]
    pub impact: bool,
    /// table (default on a terminal) or json.
    #[arg(long, value_enum)]
    pub format: Option<GraphFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Table,
    Json,
}
