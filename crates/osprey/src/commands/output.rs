//! Where results go: standard output, or a file written atomically (a temporary file in the
//! same directory renamed into place, so a failed run never leaves half a document).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use comfy_table::Table;

use crate::exit::Failure;

/// Whether standard output is a terminal (tables by default there, JSON elsewhere).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Runs `write` against stdout, or against FILE atomically.
pub fn emit(
    file: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Failure> {
    match file {
        None => {
            let mut out = std::io::stdout().lock();
            write(&mut out)?;
            out.flush()?;
            Ok(())
        }
        Some(path) => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| {
                Failure::Input(format!("{}: cannot write here: {e}", dir.display()))
            })?;
            let mut buffered = std::io::BufWriter::new(tmp.as_file_mut());
            write(&mut buffered).map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
            buffered
                .flush()
                .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
            drop(buffered);
            tmp.persist(path)
                .map_err(|e| Failure::Input(format!("{}: {}", path.display(), e.error)))?;
            Ok(())
        }
    }
}

/// Writes a table without the trailing blanks comfy-table pads its last column with.
pub fn put_table(out: &mut dyn Write, title: &str, table: &Table) -> std::io::Result<()> {
    if !title.is_empty() {
        writeln!(out, "{title}")?;
    }
    for line in table.to_string().lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
