//! Java with Maven, as sam's JavaMavenWorkflow: `mvn clean install
//! dependency:copy-dependencies` in a scratch copy of the source, then
//! the compiled classes at the artifact's root and the runtime dependencies
//! in `lib/` (a layer: the project's and the dependencies' jars in `lib/`).

use std::path::Path;

use super::{Workflow, WorkflowError, io_error, run};
use crate::builder::fsops;
use crate::builder::graph::BuildUnit;

/// The manifests sam's Java selector looks for, in its order of preference.
const MANIFESTS: [&str; 3] = ["build.gradle", "build.gradle.kts", "pom.xml"];

/// Folders of Maven's `target/` whose jars a layer does not ship.
const LAYER_IGNORED: [&str; 5] = ["classes", "dependency", "generated-sources", "maven-archiver", "maven-status"];

/// Builds `unit`'s Maven project into `out`.
pub(super) async fn build(unit: &BuildUnit, out: &Path) -> Result<(), WorkflowError> {
    match MANIFESTS.iter().find(|m| unit.source_dir.join(m).is_file()) {
        Some(&"pom.xml") => {}
        Some(_) => return Err(WorkflowError::NotYet { key: unit.runtime.clone(), tool: "Gradle" }),
        None => {
            let (runtime, folder) = (unit.runtime.clone(), unit.source_dir.clone());
            return Err(WorkflowError::NoJavaManifest { runtime, folder });
        }
    }
    let scratch = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
    let dir = scratch.path();
    fsops::copy_tree(&unit.source_dir, dir, Workflow::Maven.excludes()).map_err(io_error(&unit.source_dir))?;
    // sam's two Maven runs (`clean install`, then `dependency:copy-dependencies`)
    // in one: the same goals in the same order, one JVM start less.
    let mut mvn = super::tool("mvn");
    mvn.current_dir(dir).args([
        "clean",
        "install",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        "-Dmdep.prependGroupId=true",
    ]);
    run(mvn, "JavaMavenWorkflow:MavenBuild").await?;

    let target = dir.join("target");
    let dependencies = target.join("dependency");
    if unit.is_layer() {
        copy_jars(&target, &out.join("lib")).map_err(io_error(&target))?;
    } else {
        let classes = target.join("classes");
        if !classes.is_dir() {
            return Err(WorkflowError::NoClasses);
        }
        fsops::copy_tree(&classes, out, &[]).map_err(io_error(&classes))?;
    }
    if dependencies.is_dir() {
        fsops::copy_tree(&dependencies, &out.join("lib"), &[]).map_err(io_error(&dependencies))?;
    }
    Ok(())
}

/// sam's layer copy: the `.jar` files under `from` (outside the folders in
/// [`LAYER_IGNORED`], at any depth) into `to`, keeping their folders, empty
/// ones included.
fn copy_jars(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if LAYER_IGNORED.iter().any(|ignored| name == *ignored) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            copy_jars(&entry.path(), &to.join(&name))?;
        } else if name.to_string_lossy().ends_with(".jar") {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}
