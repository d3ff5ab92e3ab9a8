//! `make build-<LogicalId>`, as sam's CustomMakeBuilder: the source (or
//! `ProjectRootDirectory`) is copied to a scratch folder, make reads the
//! Makefile in place (`ContextPath`) and runs in the scratch copy or in
//! `WorkingDirectory`.

use std::path::{Path, PathBuf};

use super::{Workflow, WorkflowError, io_error, run};
use crate::builder::fsops;
use crate::builder::graph::{BuildUnit, MakeLayout, WorkingDir};

/// Runs the unit's make target with `ARTIFACTS_DIR=out`, in a scratch copy
/// of the source, or in the source itself with `--build-in-source` (sam's
/// custom make workflow; what make leaves there is the user's). Returns what
/// make read outside the copied folder (a Makefile or working folder
/// elsewhere), so that the code's cache key covers them.
pub(super) async fn build(unit: &BuildUnit, out: &Path) -> Result<Vec<PathBuf>, WorkflowError> {
    let layout = unit.make.clone().unwrap_or_else(|| MakeLayout {
        makefile: unit.source_dir.join("Makefile"),
        working_dir: WorkingDir::Scratch(PathBuf::new()),
    });
    if !layout.makefile.is_file() {
        return Err(WorkflowError::NoMakefile(layout.makefile));
    }
    let scratch = match unit.build_in_source {
        true => None,
        false => Some(tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?),
    };
    let root = scratch.as_ref().map_or(unit.source_dir.as_path(), |s| s.path());
    if scratch.is_some() {
        fsops::copy_tree(&unit.source_dir, root, Workflow::Makefile.excludes()).map_err(io_error(&unit.source_dir))?;
    }
    let mut read = Vec::new();
    if !layout.makefile.starts_with(&unit.source_dir) {
        read.push(layout.makefile.clone());
    }
    let cwd = match &layout.working_dir {
        WorkingDir::Scratch(inside) => root.join(inside),
        WorkingDir::Outside(dir) => {
            read.push(dir.clone());
            dir.clone()
        }
    };
    if !cwd.is_dir() {
        let missing = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "Metadata.WorkingDirectory is not a folder of the copied source",
        );
        return Err(io_error(&cwd)(missing));
    }
    let mut make = super::tool("make");
    make.current_dir(&cwd)
        .arg("--makefile")
        .arg(&layout.makefile)
        .arg(format!("build-{}", unit.logical_ids[0]))
        .env("ARTIFACTS_DIR", out);
    run(make, "CustomMakeBuilder:MakeBuild").await?;
    Ok(read)
}
