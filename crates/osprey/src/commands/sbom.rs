//! `osprey sbom SOURCE`: the inventory of an image or file system.

use std::io::Write;

use comfy_table::{Table, presets::NOTHING};
use osprey_image::Image;
use osprey_inventory::{Inventory, Options, sbom};
use serde::Serialize;

use super::image::open_image;
use super::output::{emit, put_table, stdout_is_terminal};
use crate::cli::{CacheArgs, SbomArgs, SbomCommand, SbomFormat};
use crate::exit::Failure;
use crate::ui::Ui;

pub fn run(args: SbomArgs, ui: &Ui) -> Result<i32, Failure> {
    if let Some(SbomCommand::Scan(scan)) = args.command {
        return super::scan::sbom_scan(scan, ui);
    }
    // clap requires SOURCE when there is no subcommand.
    let source = args.source.as_deref().unwrap_or_default();
    let image = open_image(source, &args.image)?;
    let inventory = take_inventory(&image, &args.cache, ui)?;
    let format = args
        .format
        .unwrap_or(if args.output.is_none() && stdout_is_terminal() {
            SbomFormat::Table
        } else {
            SbomFormat::Json
        });
    emit(args.output.as_deref(), |out| match format {
        SbomFormat::Table => write_table(out, &inventory),
        SbomFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &Document::new(&image, &inventory))?;
            writeln!(out)
        }
        SbomFormat::CyclonedxJson | SbomFormat::SpdxJson => {
            let subject = sbom::Subject::of_image(&image);
            let doc = sbom::Document::new(&subject, &inventory, env!("CARGO_PKG_VERSION"));
            if format == SbomFormat::CyclonedxJson {
                sbom::cyclonedx::write(&doc, out)
            } else {
                sbom::spdx::write(&doc, out)
            }
        }
    })?;
    Ok(0)
}

/// The inventory of an opened image, with a progress bar per layer; notices become warnings.
pub fn take_inventory(
    image: &Image,
    cache_args: &CacheArgs,
    ui: &Ui,
) -> Result<Inventory, Failure> {
    let options = Options {
        cache: cache(cache_args),
        ..Options::default()
    };
    let bar = ui.progress(image.layers.len() as u64, "cataloguing layers");
    let inventory = osprey_inventory::inventory_with(image, &options, |_| bar.inc(1));
    bar.finish_and_clear();
    let inventory = inventory.map_err(|e| match e {
        osprey_inventory::InventoryError::Image(e) => Failure::from(e),
    })?;
    for n in &inventory.notices {
        ui.warn(&n.to_string());
    }
    tracing::info!(
        "{} packages; {} layers analysed, {} from the cache",
        inventory.packages.len(),
        inventory.stats.layers_analyzed,
        inventory.stats.layers_cached
    );
    Ok(inventory)
}

/// The cache the command line asks for.
pub fn cache(args: &CacheArgs) -> Option<osprey_inventory::Cache> {
    if args.no_cache {
        return None;
    }
    args.cache_dir
        .clone()
        .or_else(osprey_inventory::Cache::default_dir)
        .map(osprey_inventory::Cache::new)
}

/// Osprey's own SBOM document: the image, the OS, every package with every field.
#[derive(Serialize)]
pub struct Document<'a> {
    pub schema: &'static str,
    pub tool: Tool,
    pub source: SourceFacts<'a>,
    #[serde(flatten)]
    pub inventory: &'a Inventory,
}

#[derive(Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Serialize)]
pub struct SourceFacts<'a> {
    pub source: &'a str,
    pub kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub layers: Vec<Option<String>>,
}

impl<'a> Document<'a> {
    pub fn new(image: &'a Image, inventory: &'a Inventory) -> Document<'a> {
        Document {
            schema: "osprey-sbom/1",
            tool: Tool {
                name: "osprey",
                version: env!("CARGO_PKG_VERSION"),
            },
            source: SourceFacts {
                source: &image.source,
                kind: image.kind,
                reference: image.reference.as_deref(),
                manifest_digest: image.manifest_digest.as_ref().map(ToString::to_string),
                config_digest: image.config_digest.as_ref().map(ToString::to_string),
                platform: image.platform.as_ref().map(ToString::to_string),
                layers: image
                    .layers
                    .iter()
                    .map(|l| l.diff_id.as_ref().map(ToString::to_string))
                    .collect(),
            },
            inventory,
        }
    }
}

fn write_table(out: &mut dyn Write, inv: &Inventory) -> std::io::Result<()> {
    match &inv.os {
        Some(os) => writeln!(out, "OS: {}", os.display_name())?,
        None => writeln!(out, "OS: unknown (no release file)")?,
    }
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(vec!["NAME", "VERSION", "TYPE", "LAYER", "PATH"]);
    for p in &inv.packages {
        let name = match &p.group {
            Some(g) if p.kind == osprey_model::PackageType::JavaArchive => {
                format!("{g}:{}", p.name)
            }
            _ => p.name.clone(),
        };
        let first = p.locations.first();
        let layer = first
            .and_then(|l| l.layer)
            .map_or("-".to_string(), |l| (l + 1).to_string());
        let path = match (first, p.locations.len()) {
            (Some(l), 1) => l.path.clone(),
            (Some(l), n) => format!("{} (+{} more)", l.path, n - 1),
            (None, _) => String::new(),
        };
        t.add_row(vec![
            name,
            p.version.clone(),
            p.kind.to_string(),
            layer,
            path,
        ]);
    }
    put_table(out, "", &t)?;
    writeln!(out, "\n{} packages", inv.packages.len())
}
