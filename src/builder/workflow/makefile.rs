//! `make build-<LogicalId>`, as sam's CustomMakeBuilder.

use std::path::Path;

use tokio::process::Command;

use super::{Workflow, WorkflowError, io_error, run};
use crate::builder::fsops;
use crate::builder::graph::BuildUnit;

/// Runs the unit's make target with `ARTIFACTS_DIR=out`, in a scratch copy
/// of the source, or in the source itself with `--build-in-source` (sam's
/// custom make workflow; what make leaves there is the user's).
pub(super) async fn build(unit: &BuildUnit, out: &Path) -> Result<(), WorkflowError> {
    let scratch = match unit.build_in_source {
        true => None,
        false => Some(tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?),
    };
    let workdir = scratch.as_ref().map_or(unit.source_dir.as_path(), |s| s.path());
    if scratch.is_some() {
        fsops::copy_tree(&unit.source_dir, workdir, Workflow::Makefile.excludes())
            .map_err(io_error(&unit.source_dir))?;
    }
    let makefile = workdir.join("Makefile");
    if !makefile.is_file() {
        return Err(WorkflowError::NoMakefile(unit.source_dir.join("Makefile")));
    }
    let mut make = Command::new("make");
    make.current_dir(workdir)
        .arg("--makefile")
        .arg(&makefile)
        .arg(format!("build-{}", unit.logical_ids[0]))
        .env("ARTIFACTS_DIR", out);
    run(make, "CustomMakeBuilder:MakeBuild").await
}
