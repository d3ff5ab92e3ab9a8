//! `make build-<LogicalId>`, as sam's CustomMakeBuilder.

use std::path::Path;

use tokio::process::Command;

use super::{Workflow, WorkflowError, io_error, run};
use crate::builder::fsops;
use crate::builder::graph::BuildUnit;

/// Runs the unit's make target with `ARTIFACTS_DIR=out`.
pub(super) async fn build(unit: &BuildUnit, out: &Path) -> Result<(), WorkflowError> {
    let scratch = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
    fsops::copy_tree(&unit.source_dir, scratch.path(), Workflow::Makefile.excludes())
        .map_err(io_error(&unit.source_dir))?;
    let makefile = scratch.path().join("Makefile");
    if !makefile.is_file() {
        return Err(WorkflowError::NoMakefile(unit.source_dir.join("Makefile")));
    }
    let mut make = Command::new("make");
    make.current_dir(scratch.path())
        .arg("--makefile")
        .arg(&makefile)
        .arg(format!("build-{}", unit.logical_ids[0]))
        .env("ARTIFACTS_DIR", out);
    run(make, "CustomMakeBuilder:MakeBuild").await
}
