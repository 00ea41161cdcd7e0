//! `osprey db update`: fetch the OSV archive of each ecosystem from the mirror
//! ([`osprey_vuln::mirror`]: kept with its ETag, verified against the mirror's checksums), then
//! rebuild the database from the archives under `feeds/` beside it.

use std::path::Path;

use osprey_vuln::mirror::{FetchState, Mirror, check_ecosystem};

use super::db::{FeedJob, build_database, db_path};
use crate::cli::{DEFAULT_ECOSYSTEMS, DbUpdateArgs};
use crate::exit::Failure;
use crate::ui::Ui;

/// Downloads at once.
const PARALLEL: usize = 4;

pub fn update(args: DbUpdateArgs, ui: &Ui) -> Result<i32, Failure> {
    let db = db_path(&args.db)?;
    let mirror = Mirror::new(&args.mirror).map_err(|e| Failure::Input(format!("--mirror {e}")))?;
    let ecosystems: Vec<String> = if args.ecosystem.is_empty() {
        DEFAULT_ECOSYSTEMS.iter().map(|s| s.to_string()).collect()
    } else {
        args.ecosystem
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    for e in &ecosystems {
        check_ecosystem(e).map_err(|e| Failure::Input(format!("--ecosystem {e}")))?;
    }
    let feeds_dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("feeds");
    std::fs::create_dir_all(&feeds_dir)
        .map_err(|e| Failure::Input(format!("{}: {e}", feeds_dir.display())))?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("starting the download runtime: {e}")))?;
    let bar = ui.progress(ecosystems.len() as u64, "downloading advisories");
    let results = runtime.block_on(async {
        let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let mut set = tokio::task::JoinSet::new();
        for (i, eco) in ecosystems.iter().enumerate() {
            let (mirror, semaphore) = (mirror.clone(), semaphore.clone());
            let (eco, dir) = (eco.clone(), feeds_dir.join(eco));
            set.spawn(async move {
                let _permit = semaphore
                    .acquire_owned()
                    .await
                    .expect("the semaphore stays open");
                (i, mirror.fetch(&eco, &dir).await)
            });
        }
        let mut out = Vec::new();
        while let Some(done) = set.join_next().await {
            bar.inc(1);
            out.push(done.expect("download task panicked"));
        }
        out.sort_by_key(|(i, _)| *i);
        out
    });
    bar.finish_and_clear();
    let mut jobs = Vec::new();
    for (_, result) in results {
        let fetched =
            result.map_err(|e| Failure::Input(format!("{e} (the database was not changed)")))?;
        let how = match fetched.state {
            FetchState::Unchanged => "unchanged",
            FetchState::Verified(how) => how,
        };
        tracing::info!("{}: {how}", fetched.url);
        if fetched.state == FetchState::Verified("no checksum offered") {
            ui.warn(&format!(
                "{}: the mirror offers no checksum; relying on the archive's own CRCs",
                fetched.url
            ));
        }
        jobs.push(FeedJob {
            kind: "osv",
            path: fetched.path,
            location: fetched.url,
            import: osprey_vuln::feeds::osv::import,
        });
    }
    build_database(&jobs, &db, args.strict, true, ui)?;
    Ok(0)
}
