//! Ruby with Bundler, as sam's RubyBundlerBuilder, whose artifact is the
//! source with `bundle install` run in it twice (without the development
//! and test groups, then in deployment mode): gems in `vendor/bundle`,
//! `.bundle/config` and the `Gemfile.lock` beside the code.
//!
//! accel gives the same tree in two cached steps: the install runs on the
//! Gemfile, its lock and the local gems it names (keyed by them), and keeps
//! what Bundler wrote or changed; the code step copies the source without
//! the files the install rewrote. A code edit then reinstalls nothing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{Workflow, WorkflowError, io_error, run};
use crate::builder::graph::BuildUnit;
use crate::builder::{fsops, inputs};

/// sam's Bundler steps: (arguments, `<Workflow>:<Action>`).
const STEPS: [(&[&str], &str); 4] = [
    (&["config", "set", "--local", "without", "development:test"], "RubyBundlerBuilder:RubyBundle"),
    (&["install"], "RubyBundlerBuilder:RubyBundle"),
    (&["config", "set", "--local", "deployment", "true"], "RubyBundlerBuilder:RubyBundleDeployment"),
    (&["install"], "RubyBundlerBuilder:RubyBundleDeployment"),
];

/// Runs sam's Bundler steps on `manifest` (a Gemfile) and what it reads,
/// laid out as in the source folder, and puts into `out` every file and
/// folder Bundler created or changed.
pub(super) async fn install(manifest: &Path, out: &Path) -> Result<(), WorkflowError> {
    // Normalized as the inputs are: `gems/../../x` is not inside the folder.
    let manifest = &inputs::normalize(manifest);
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let scratch = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
    let work = scratch.path();
    let read = inputs::manifest_inputs(Workflow::Bundler, manifest).map_err(io_error(manifest))?;
    let copy = |from: &Path| -> Result<(), WorkflowError> {
        let rel = from.strip_prefix(dir).unwrap_or(Path::new(""));
        let to = work.join(rel);
        let result = if from.is_dir() {
            fsops::copy_tree(from, &to, Workflow::Bundler.excludes())
        } else {
            std::fs::create_dir_all(to.parent().unwrap_or(work)).and_then(|()| std::fs::copy(from, &to).map(drop))
        };
        result.map_err(io_error(from))
    };
    // Gems named by an absolute path outside the folder are read where they
    // are (the inputs refuse a relative one leading out of it).
    let lock = dir.join("Gemfile.lock");
    for file in [manifest, lock.as_path()].into_iter().chain(read.iter().map(|p| p.as_path())) {
        if file.starts_with(dir) && file.exists() {
            copy(file)?;
        }
    }
    let before = snapshot(work)?;
    for (args, action) in STEPS {
        let mut bundle = super::tool("bundle");
        bundle.current_dir(work).args(args);
        run(bundle, action).await?;
    }
    let (files, folders) = crate::files::walk_tree(work, &|_| false).map_err(io_error(work))?;
    for folder in folders {
        if !before.1.contains(&folder) {
            std::fs::create_dir_all(out.join(folder)).map_err(io_error(out))?;
        }
    }
    for (rel, _) in files {
        let path = work.join(&rel);
        let bytes = std::fs::read(&path).map_err(io_error(&path))?;
        if before.0.get(&rel) != Some(&bytes) {
            let to = out.join(&rel);
            std::fs::create_dir_all(to.parent().unwrap_or(out)).map_err(io_error(&to))?;
            fsops::copy_file(&path, &to).map_err(io_error(&to))?;
        }
    }
    Ok(())
}

/// The files (with their bytes) and folders below a folder.
type Snapshot = (HashMap<PathBuf, Vec<u8>>, HashSet<PathBuf>);

/// What is below `dir` before Bundler runs, to tell what it wrote.
fn snapshot(dir: &Path) -> Result<Snapshot, WorkflowError> {
    let (files, folders) = crate::files::walk_tree(dir, &|_| false).map_err(io_error(dir))?;
    let mut contents = HashMap::new();
    for (rel, _) in files {
        let bytes = std::fs::read(dir.join(&rel)).map_err(io_error(dir))?;
        contents.insert(rel, bytes);
    }
    Ok((contents, folders.into_iter().collect()))
}

/// Copies `unit`'s source into `out`, without the files the install in
/// `deps` rewrote (its `Gemfile.lock`, `.bundle/config`): the artifact
/// takes those from the install, as sam's ran in place.
pub(super) fn build(unit: &BuildUnit, deps: Option<&Path>, out: &Path) -> Result<(), WorkflowError> {
    fsops::copy_tree(&unit.source_dir, out, Workflow::Bundler.excludes()).map_err(io_error(&unit.source_dir))?;
    match deps {
        Some(deps) => {
            for rel in fsops::list_files(deps, &[]).map_err(io_error(deps))? {
                let copied = out.join(&rel);
                if copied.is_file() {
                    fsops::remove_file(&copied).map_err(io_error(&copied))?;
                }
            }
        }
        // No Gemfile: sam's Bundler stops with "Gemfile not found" and sam
        // removes the `.bundle` folder it left.
        None => {
            let bundle = out.join(".bundle");
            if bundle.is_dir() {
                fsops::remove_tree(&bundle).map_err(io_error(&bundle))?;
            }
        }
    }
    Ok(())
}
