//! `osprey image …`: inspect (and scan, in `scan`).

use std::collections::BTreeMap;
use std::io::Write;

use comfy_table::{Table, presets::NOTHING};
use osprey_image::{
    Credentials, FileTree, Image, Node, NodeKind, Notice, OpenOptions, RegistryOptions, Source,
};
use serde::Serialize;

use crate::cli::{ImageArgs, ImageCommand, InspectArgs, InspectFormat};
use crate::exit::Failure;
use crate::ui::Ui;

use super::output::put_table as put;

pub fn run(cmd: ImageCommand, ui: &Ui) -> Result<i32, Failure> {
    match cmd {
        ImageCommand::Inspect(args) => inspect(args, ui),
        ImageCommand::Scan(args) => super::scan::image_scan(args, ui),
    }
}

/// Parses SOURCE and opens the image with the command line's options. Shared by every command
/// that reads images.
pub fn open_image(source: &str, args: &ImageArgs) -> Result<Image, Failure> {
    let source = Source::parse(source)?;
    let platform = match &args.platform {
        Some(p) => Some(p.parse().map_err(Failure::Input)?),
        None => None,
    };
    let credentials = match (&args.username, &args.password) {
        (Some(u), Some(p)) => Some(Credentials::Basic {
            username: u.clone(),
            password: p.clone(),
        }),
        _ => None,
    };
    let options = OpenOptions {
        platform,
        registry: RegistryOptions {
            insecure: args.insecure,
            credentials,
            docker_config: !args.no_docker_config,
            ..RegistryOptions::default()
        },
        ..OpenOptions::default()
    };
    Ok(Image::open(&source, &options)?)
}

#[derive(Serialize)]
struct InspectReport<'a> {
    source: &'a str,
    kind: &'a str,
    reference: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    repo_tags: &'a [String],
    manifest_digest: Option<String>,
    index_digest: Option<String>,
    manifest_media_type: Option<&'a str>,
    /// The config digest — the image ID.
    config_digest: Option<String>,
    platform: Option<String>,
    created: Option<&'a str>,
    layers: &'a [osprey_image::LayerInfo],
    config: Option<ConfigView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<FileView<'a>>>,
    notices: &'a [Notice],
}

#[derive(Serialize)]
struct ConfigView<'a> {
    user: Option<&'a str>,
    entrypoint: Option<&'a [String]>,
    cmd: Option<&'a [String]>,
    working_dir: Option<&'a str>,
    env: Option<&'a [String]>,
    labels: BTreeMap<&'a str, &'a str>,
    exposed_ports: Option<&'a [String]>,
    volumes: Option<&'a [String]>,
    stop_signal: Option<&'a str>,
}

#[derive(Serialize)]
struct FileView<'a> {
    path: String,
    #[serde(flatten)]
    node: &'a Node,
    diff_id: Option<String>,
}

fn config_view(image: &Image) -> Option<ConfigView<'_>> {
    let c = image.config.as_ref()?.config().as_ref()?;
    Some(ConfigView {
        user: c.user().as_deref(),
        entrypoint: c.entrypoint().as_deref(),
        cmd: c.cmd().as_deref(),
        working_dir: c.working_dir().as_deref(),
        env: c.env().as_deref(),
        labels: c
            .labels()
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        exposed_ports: c.exposed_ports().as_deref(),
        volumes: c.volumes().as_deref(),
        stop_signal: c.stop_signal().as_deref(),
    })
}

fn inspect(args: InspectArgs, ui: &Ui) -> Result<i32, Failure> {
    let image = open_image(&args.source, &args.image)?;
    let tree = if args.files {
        let bar = ui.progress(image.layers.len() as u64, "reading layers");
        let result = image.file_tree_with(|_, _| bar.inc(1));
        bar.finish_and_clear();
        Some(result?)
    } else {
        None
    };
    let notices: &[Notice] = tree.as_ref().map_or(&[], |(_, n)| n.as_slice());
    for n in notices {
        ui.warn(&n.to_string());
    }
    let files = tree.as_ref().map(|(t, _)| file_views(t));
    let report = InspectReport {
        source: &image.source,
        kind: image.kind,
        reference: image.reference.as_deref(),
        repo_tags: &image.repo_tags,
        manifest_digest: image.manifest_digest.as_ref().map(ToString::to_string),
        index_digest: image.index_digest.as_ref().map(ToString::to_string),
        manifest_media_type: image.manifest_media_type.as_deref(),
        config_digest: image.config_digest.as_ref().map(ToString::to_string),
        platform: image.platform.as_ref().map(ToString::to_string),
        created: image.config.as_ref().and_then(|c| c.created().as_deref()),
        layers: &image.layers,
        config: config_view(&image),
        files,
        notices,
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        InspectFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::from)?;
            writeln!(out)?;
        }
        InspectFormat::Table => write_table(&mut out, &report)?,
    }
    Ok(0)
}

fn file_views(tree: &FileTree) -> Vec<FileView<'_>> {
    tree.iter()
        .map(|(path, node)| FileView {
            path: format!("/{path}"),
            node,
            diff_id: tree.diff_id_of(node).map(ToString::to_string),
        })
        .collect()
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn kv(table: &mut Table, key: &str, value: Option<impl ToString>) {
    if let Some(v) = value {
        table.add_row(vec![key.to_string(), v.to_string()]);
    }
}

fn write_table(out: &mut dyn Write, r: &InspectReport<'_>) -> std::io::Result<()> {
    let mut head = Table::new();
    head.load_preset(NOTHING);
    kv(&mut head, "Source", Some(r.source));
    kv(&mut head, "Reference", r.reference);
    if !r.repo_tags.is_empty() {
        kv(&mut head, "Repo tags", Some(r.repo_tags.join(", ")));
    }
    kv(&mut head, "Digest", r.manifest_digest.as_deref());
    kv(&mut head, "Index digest", r.index_digest.as_deref());
    kv(&mut head, "Image ID", r.config_digest.as_deref());
    kv(&mut head, "Platform", r.platform.as_deref());
    kv(&mut head, "Created", r.created);
    let total: u64 = r.layers.iter().filter_map(|l| l.size).sum();
    kv(
        &mut head,
        "Layers",
        Some(format!("{} ({})", r.layers.len(), human_size(total))),
    );
    put(out, "", &head)?;

    if r.kind != "dir" {
        let mut layers = Table::new();
        layers.load_preset(NOTHING);
        layers.set_header(vec!["#", "DIFF-ID", "SIZE", "CREATED BY"]);
        for l in r.layers {
            let created_by = l.created_by.as_deref().unwrap_or("").replace('\t', " ");
            let created_by: String = created_by.split_whitespace().collect::<Vec<_>>().join(" ");
            let created_by = if created_by.chars().count() > 100 {
                format!("{}…", created_by.chars().take(99).collect::<String>())
            } else {
                created_by
            };
            layers.add_row(vec![
                (l.index + 1).to_string(),
                l.diff_id.as_ref().map_or("-".into(), ToString::to_string),
                l.size.map_or("-".into(), human_size),
                created_by,
            ]);
        }
        writeln!(out)?;
        put(out, "", &layers)?;
    }

    if let Some(c) = &r.config {
        let mut t = Table::new();
        t.load_preset(NOTHING);
        kv(&mut t, "User", c.user.filter(|u| !u.is_empty()));
        kv(&mut t, "Entrypoint", c.entrypoint.map(|v| format!("{v:?}")));
        kv(&mut t, "Cmd", c.cmd.map(|v| format!("{v:?}")));
        kv(
            &mut t,
            "Working dir",
            c.working_dir.filter(|w| !w.is_empty()),
        );
        for (i, e) in c.env.unwrap_or_default().iter().enumerate() {
            t.add_row(vec![if i == 0 { "Env" } else { "" }.to_string(), e.clone()]);
        }
        for (i, (k, v)) in c.labels.iter().enumerate() {
            t.add_row(vec![
                if i == 0 { "Labels" } else { "" }.to_string(),
                format!("{k}={v}"),
            ]);
        }
        kv(
            &mut t,
            "Exposed ports",
            c.exposed_ports.map(|p| p.join(", ")),
        );
        kv(&mut t, "Volumes", c.volumes.map(|p| p.join(", ")));
        kv(&mut t, "Stop signal", c.stop_signal);
        if !t.is_empty() {
            put(out, "\nConfig", &t)?;
        }
    }

    if let Some(files) = &r.files {
        let mut t = Table::new();
        t.load_preset(NOTHING);
        t.set_header(vec!["MODE", "SIZE", "LAYER", "PATH"]);
        for f in files {
            let (path, size) = match &f.node.kind {
                NodeKind::Symlink(target) => (format!("{} -> {target}", f.path), "-".to_string()),
                NodeKind::HardLink(target) => (format!("{} => /{target}", f.path), "-".to_string()),
                NodeKind::Dir => (format!("{}/", f.path), "-".to_string()),
                NodeKind::File => (f.path.clone(), f.node.size.to_string()),
            };
            t.add_row(vec![
                mode_string(&f.node.kind, f.node.mode),
                size,
                (f.node.layer + 1).to_string(),
                path,
            ]);
        }
        put(out, &format!("\nFiles ({})", files.len()), &t)?;
    }
    Ok(())
}

fn mode_string(kind: &NodeKind, mode: u32) -> String {
    let t = match kind {
        NodeKind::Dir => 'd',
        NodeKind::Symlink(_) => 'l',
        NodeKind::HardLink(_) | NodeKind::File => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_modes() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_500_000), "1.5 MB");
        assert_eq!(mode_string(&NodeKind::Dir, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(&NodeKind::File, 0o640), "-rw-r-----");
    }
}
