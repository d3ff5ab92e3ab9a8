//! `accel man [--out-dir DIR]`: print `accel.1`, or write every page into a
//! folder (what packagers and the release archives ship).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::render;
use crate::printer::Printer;

pub(super) fn run(out_dir: Option<&Path>, printer: &Printer) -> Result<ExitCode> {
    let Some(dir) = out_dir else {
        printer.out_raw(&String::from_utf8_lossy(&render::man_page().roff));
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for page in render::man_pages() {
        let path = dir.join(&page.file_name);
        std::fs::write(&path, &page.roff).with_context(|| format!("cannot write {}", path.display()))?;
        printer.out(path.display());
    }
    Ok(ExitCode::SUCCESS)
}
