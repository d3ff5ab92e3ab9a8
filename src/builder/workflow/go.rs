//! Go modules, as sam's GoModulesBuilder.

use std::path::Path;

use super::{WorkflowError, run};
use crate::builder::graph::BuildUnit;

/// Builds the unit's binary into `out`.
pub(super) async fn build(unit: &BuildUnit, out: &Path) -> Result<(), WorkflowError> {
    let binary = if unit.runtime.starts_with("provided") {
        "bootstrap".to_string()
    } else {
        unit.handler.clone().unwrap_or_default()
    };
    let arch = if unit.architecture == "arm64" { "arm64" } else { "amd64" };
    // sam's command exactly (aws-lambda-builders' GoModulesBuilder): the same
    // flags give the same binary. `-trimpath` only with `TrimGoPath`, and the
    // environment (CGO_ENABLED included) is the user's.
    let trim = unit.build_properties().get("TrimGoPath") == Some(&serde_json::Value::Bool(true));
    let command = |package: &Path| {
        let mut go = super::tool("go");
        go.current_dir(&unit.source_dir).arg("build");
        if trim {
            go.arg("-trimpath");
        }
        go.arg("-o").arg(out.join(&binary)).arg(package).env("GOOS", "linux").env("GOARCH", arch);
        go
    };
    match run(command(&unit.source_dir), "GoModulesBuilder:Build").await {
        // As sam: no Go files at CodeUri, so build the handler's folder below it.
        // Any other failure (a compile error) is the build's.
        Err(WorkflowError::Failed { .. })
            if !has_go_files(&unit.source_dir)
                && unit.handler.as_deref().is_some_and(|h| unit.source_dir.join(h).is_dir()) =>
        {
            run(command(&unit.source_dir.join(unit.handler.as_deref().unwrap_or_default())), "GoModulesBuilder:Build")
                .await
        }
        result => result,
    }
}

/// Whether `dir` itself holds a `.go` file (a package `go build` can build).
fn has_go_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "go") && e.path().is_file())
}
