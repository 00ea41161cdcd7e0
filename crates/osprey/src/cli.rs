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
    #[command(after_help = SBOM_EXAMPLES)]
    Sbom(SbomArgs),
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
    /// The image or file system (see `osprey image inspect --help` for SOURCE forms).
    pub source: String,
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
    /// Cache of per-layer analyses, keyed by layer diff-id (default: $OSPREY_CACHE_DIR,
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
pub enum ImageCommand {
    /// Show an image's digest, platform, layers and configuration.
    #[command(after_help = EXAMPLES)]
    Inspect(InspectArgs),
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
