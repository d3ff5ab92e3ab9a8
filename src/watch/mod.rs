//! `accel sync --watch` (spec §3): a first sync, then one loop that turns
//! each burst of file events into exactly one sync — a code sync of the
//! resources whose files changed, or one infra sync when the template
//! changed beyond code locations — and never dies on a bad save.
//!
//! Events come from `notify` (inotify, FSEvents …) on the project folder,
//! recursively, so editor saves of every style (write in place, write a
//! temporary file and rename, delete and create) and vanished-then-restored
//! folders are all seen. A burst ends after a short quiet period; events
//! that arrive while a sync runs wait in the channel and make one follow-up.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};
use serde_json::Value;

use crate::aws::Aws;
use crate::project::{Project, ProjectError};
use crate::sync::flows::{Deployed, Outcome, Synced};
use crate::sync::infra::{self, InfraOutcome, InfraRequest};
use crate::sync::{self, Reporter, SyncError, compare, flows};

/// A burst of events ends after this long without a new one. Editors write
/// a save within a few milliseconds; this keeps save-to-synced short.
const QUIET: Duration = Duration::from_millis(40);

/// A burst never waits longer than this before syncing.
const MAX_BURST: Duration = Duration::from_millis(500);

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The file watcher failed.
    #[error("cannot watch {}: {source}", path.display())]
    Notify {
        /// The folder.
        path: PathBuf,
        /// The error.
        source: notify::Error,
    },
}

/// What to watch and how to sync.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// `--code`: never touch CloudFormation.
    pub code_only: bool,
    /// `--watch-exclude Resource=fragment`.
    pub excludes: Vec<(String, String)>,
    /// The infra sync settings (stack name, bucket, …).
    pub infra: InfraRequest,
}

/// Where the watch loop reports.
pub trait WatchReporter: Reporter {
    /// An error the loop survives.
    fn error(&self, line: &str);
}

/// Why a changed path matters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    /// A template of the stack tree.
    Template,
    /// A file of a resource (`manifest` when it is a dependency manifest).
    Resource { path: String, manifest: bool },
}

/// Runs the watch loop until Ctrl-C. `load` reads the project afresh.
pub async fn watch(
    aws: &Aws,
    cwd: &Path,
    load: &(dyn Fn() -> Result<Project, ProjectError> + Sync),
    options: &WatchOptions,
    reporter: &dyn WatchReporter,
) -> Result<(), WatchError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, EventKind::Access(_))
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|source| WatchError::Notify { path: cwd.to_path_buf(), source })?;

    let mut state = State { project: None, synced: HashMap::new(), deployed: None, paused: false };
    let mut watched = BTreeSet::new();
    match load() {
        Ok(project) => {
            state.remember(&project);
            state.project = Some(project);
        }
        Err(e) => {
            reporter.error(&format!("Error: {e}"));
            state.paused = true;
        }
    }
    if options.code_only {
        reporter.note(
            "You have enabled the --code flag, which limits sam sync updates to code changes only. To do a complete infrastructure and code sync, remove the --code flag.",
        );
    } else if let Some(project) = &state.project {
        let started = Instant::now();
        let outcome = infra::infra_sync(aws, &project.stack, cwd, &options.infra, reporter).await;
        state.after_infra(outcome, started, reporter);
    }
    let template_dir = state.project.as_ref().and_then(|p| p.template_file.parent().map(Path::to_path_buf));
    let root = template_dir.unwrap_or_else(|| cwd.to_path_buf());
    rewatch(&mut watcher, &mut watched, &root, state.project.as_ref(), reporter);
    reporter.note("Sync watch started.");

    let mut pending: BTreeSet<String> = BTreeSet::new();
    loop {
        let first = tokio::select! {
            path = rx.recv() => match path { Some(path) => path, None => break },
            _ = tokio::signal::ctrl_c() => break,
        };
        let burst_started = Instant::now();
        let mut paths = vec![first];
        while burst_started.elapsed() < MAX_BURST {
            match tokio::time::timeout(QUIET, rx.recv()).await {
                Ok(Some(path)) => paths.push(path),
                _ => break,
            }
        }
        let changes = state.classify(&paths, &options.excludes);
        if changes.is_empty() {
            continue;
        }
        report_changes(&changes, &root, reporter);
        pending.extend(changes.iter().filter_map(|(_, c)| match c {
            Change::Resource { path, .. } => Some(path.clone()),
            Change::Template => None,
        }));
        if changes.iter().any(|(_, c)| *c == Change::Template) {
            state.template_changed(aws, cwd, load, options, &mut pending, reporter).await;
            rewatch(&mut watcher, &mut watched, &root, state.project.as_ref(), reporter);
        }
        if state.paused || pending.is_empty() {
            continue;
        }
        let batch = std::mem::take(&mut pending);
        state.code_sync(aws, cwd, options, &batch, burst_started, reporter).await;
    }
    reporter.note("Shutting down sync watch...");
    drop(watcher);
    reporter.note("Sync watch stopped.");
    Ok(())
}

/// One line per changed resource (or template): a file that still exists
/// (an editor's temporary file is gone by now) and how many others changed.
fn report_changes(changes: &[(PathBuf, Change)], root: &Path, reporter: &dyn WatchReporter) {
    let mut seen: Vec<&Change> = Vec::new();
    for (_, change) in changes {
        if seen.contains(&change) {
            continue;
        }
        seen.push(change);
        let paths: Vec<&PathBuf> = changes.iter().filter(|(_, c)| c == change).map(|(p, _)| p).collect();
        let shown = paths.iter().find(|p| p.exists()).unwrap_or(&paths[0]);
        let shown = shown.strip_prefix(root).unwrap_or(shown).display();
        let more = if paths.len() > 1 { format!(" (+{} more)", paths.len() - 1) } else { String::new() };
        match change {
            Change::Template => reporter.note(&format!("{shown}{more}: template changed")),
            Change::Resource { path: resource, manifest } => {
                let what = if *manifest { "dependencies" } else { "code" };
                reporter.note(&format!("{shown}{more}: {what} of {resource}"));
            }
        }
    }
}

/// Watches the template folder and every folder a resource or nested
/// template lives in outside it.
fn rewatch(
    watcher: &mut notify::RecommendedWatcher,
    watched: &mut BTreeSet<PathBuf>,
    root: &Path,
    project: Option<&Project>,
    reporter: &dyn WatchReporter,
) {
    let mut wanted = BTreeSet::from([root.to_path_buf()]);
    if let Some(project) = project {
        for stack in project.stack.stacks() {
            wanted.extend(stack.file.parent().map(Path::to_path_buf));
            for resource in &stack.resources {
                for (_, path) in crate::template::resources::local_paths(stack, resource) {
                    let dir = if path.is_dir() { path } else { path.parent().map(Path::to_path_buf).unwrap_or(path) };
                    wanted.insert(dir);
                }
            }
        }
    }
    // Folders under another watched folder are covered by it.
    let wanted: BTreeSet<PathBuf> =
        wanted.iter().filter(|p| !wanted.iter().any(|o| o != *p && p.starts_with(o))).cloned().collect();
    for gone in watched.difference(&wanted).cloned().collect::<Vec<_>>() {
        let _ = watcher.unwatch(&gone);
        watched.remove(&gone);
    }
    for path in wanted {
        if watched.contains(&path) {
            continue;
        }
        match watcher.watch(&path, RecursiveMode::Recursive) {
            Ok(()) => {
                watched.insert(path);
            }
            Err(e) => reporter.error(&format!("cannot watch {}: {e}", path.display())),
        }
    }
}

/// Paths no sync cares about: build output, installed dependencies, VCS
/// data and editor scratch files.
fn ignored(path: &Path) -> bool {
    let in_ignored_folder =
        path.components().any(|c| matches!(c.as_os_str().to_str(), Some(".aws-sam" | "node_modules" | ".git")));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    in_ignored_folder
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.starts_with(".#")
        || name == "4913"
}

const MANIFESTS: &[&str] = &["requirements.txt", "package.json", "package-lock.json", "go.mod", "go.sum", "Makefile"];

struct State {
    project: Option<Project>,
    /// Each stack file's template as last synced (or loaded at start).
    synced: HashMap<PathBuf, Value>,
    /// The deployed stack, read once and kept until an infra sync.
    deployed: Option<Deployed>,
    /// Code sync waits for a template fix (or a working infra sync).
    paused: bool,
}

impl State {
    fn remember(&mut self, project: &Project) {
        self.synced = project.stack.stacks().iter().map(|s| (s.file.clone(), s.template.clone())).collect();
    }

    fn classify(&self, paths: &[PathBuf], excludes: &[(String, String)]) -> Vec<(PathBuf, Change)> {
        let mut out: Vec<(PathBuf, Change)> = Vec::new();
        let Some(project) = &self.project else {
            // No valid template yet: only a template edit can help.
            return paths
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json"))
                .filter(|p| !ignored(p))
                .map(|p| (p.clone(), Change::Template))
                .collect();
        };
        for path in paths.iter().filter(|p| !ignored(p)) {
            let mut found = Vec::new();
            if project.stack.stacks().iter().any(|s| s.file == *path) {
                found.push(Change::Template);
            }
            for stack in project.stack.stacks() {
                for resource in &stack.resources {
                    let excluded = excludes.iter().any(|(id, fragment)| {
                        (*id == resource.logical_id || *id == resource.full_path)
                            && path.to_string_lossy().contains(fragment.as_str())
                    });
                    if excluded {
                        continue;
                    }
                    for (_, root) in crate::template::resources::local_paths(stack, resource) {
                        if path.starts_with(&root) {
                            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                            let manifest = MANIFESTS.contains(&name);
                            found.push(Change::Resource { path: resource.full_path.clone(), manifest });
                        }
                    }
                }
            }
            for change in found {
                if !out.iter().any(|(p, c)| p == path && *c == change) {
                    out.push((path.clone(), change));
                }
            }
        }
        out
    }

    /// Reloads the project and decides: code locations only → the changed
    /// resources join `pending`; anything else → one infra sync.
    async fn template_changed(
        &mut self,
        aws: &Aws,
        cwd: &Path,
        load: &(dyn Fn() -> Result<Project, ProjectError> + Sync),
        options: &WatchOptions,
        pending: &mut BTreeSet<String>,
        reporter: &dyn WatchReporter,
    ) {
        let project = match load() {
            Ok(project) => project,
            Err(e) => {
                reporter.error(&format!("Error: {e}"));
                reporter.error("Code sync is paused until the template is fixed.");
                self.paused = true;
                return;
            }
        };
        let stacks = project.stack.stacks();
        let same_files = stacks.len() == self.synced.len() && stacks.iter().all(|s| self.synced.contains_key(&s.file));
        let code_only = same_files
            && stacks.iter().all(|s| compare::sanitised(&s.template) == compare::sanitised(&self.synced[&s.file]));
        if code_only {
            for s in &stacks {
                let prefix = if s.stack_path.is_empty() { String::new() } else { format!("{}/", s.stack_path) };
                let changed = compare::code_changes(&s.template, &self.synced[&s.file]);
                pending.extend(changed.into_iter().map(|id| format!("{prefix}{id}")));
            }
            if pending.is_empty() && stacks.iter().all(|s| s.template == self.synced[&s.file]) {
                reporter.note("The template is as last synced: nothing to deploy.");
            } else {
                reporter.note("Template change touches code locations only: code sync.");
            }
            self.remember(&project);
            self.project = Some(project);
            self.paused = false;
            return;
        }
        if options.code_only {
            reporter.note("The template changed beyond code: with --code, accel does not deploy it. Run accel sync without --code.");
            self.project = Some(project);
            self.paused = false;
            return;
        }
        reporter.note("Template changed: infra sync.");
        let started = Instant::now();
        let request =
            InfraRequest { skip_deploy_sync: false, overrides: project.overrides.clone(), ..options.infra.clone() };
        let outcome = infra::infra_sync(aws, &project.stack, cwd, &request, reporter).await;
        let ok = outcome.is_ok();
        self.after_infra(outcome, started, reporter);
        if ok {
            // The deploy carried every code change made until now.
            pending.clear();
            self.remember(&project);
        }
        self.project = Some(project);
    }

    fn after_infra(
        &mut self,
        outcome: Result<InfraOutcome, SyncError>,
        started: Instant,
        reporter: &dyn WatchReporter,
    ) {
        self.deployed = None;
        match outcome {
            Ok(InfraOutcome::Skipped(synced)) => {
                let updated = synced.iter().filter(|s| s.outcome == Outcome::Updated).count();
                reporter.note(&format!(
                    "Skipped infra sync as the local template is in sync with the cloud template ({updated} code update(s), {} ms).",
                    started.elapsed().as_millis()
                ));
                self.paused = false;
            }
            Ok(InfraOutcome::Deployed { .. }) => {
                reporter.note(&format!("Infra sync completed in {} ms.", started.elapsed().as_millis()));
                self.paused = false;
            }
            Err(e) => {
                reporter.error(&format!("Error: {e}"));
                reporter.error("Failed to sync infra. Code sync is paused until template/stack is fixed.");
                self.paused = true;
            }
        }
    }

    async fn code_sync(
        &mut self,
        aws: &Aws,
        cwd: &Path,
        options: &WatchOptions,
        batch: &BTreeSet<String>,
        since: Instant,
        reporter: &dyn WatchReporter,
    ) {
        let Some(project) = &self.project else { return };
        let stack_name = &options.infra.stack_name;
        let deployed = match self.deployed.clone() {
            Some(deployed) => deployed,
            None => match flows::deployed_resources(&aws.cloudformation(), stack_name).await {
                Ok(deployed) => {
                    self.deployed = Some(deployed.clone());
                    deployed
                }
                Err(e) => {
                    reporter.error(&format!("Error: {e}"));
                    return;
                }
            },
        };
        let timed = Timed { inner: reporter, since };
        let selected = |r: &crate::template::Resource| batch.contains(&r.full_path);
        let result = sync::code_sync_selected(aws, &project.stack, cwd, stack_name, deployed, selected, &timed).await;
        match result {
            Ok(synced) if synced.iter().all(|s| s.outcome == Outcome::Unchanged) => {
                reporter.note(&format!("No code change to send ({} ms).", since.elapsed().as_millis()));
            }
            Ok(_) => {}
            Err(e) => {
                // A resource missing remotely may be new: read the stack again next time.
                self.deployed = None;
                reporter.error(&format!("Error: {e}"));
            }
        }
    }
}

/// Reports each synced resource with the time since the save that caused it.
struct Timed<'a> {
    inner: &'a dyn WatchReporter,
    since: Instant,
}

impl Reporter for Timed<'_> {
    fn note(&self, line: &str) {
        self.inner.note(line);
    }

    fn event(&self, line: &str) {
        self.inner.event(line);
    }

    fn synced(&self, synced: &Synced) {
        if synced.outcome == Outcome::Updated {
            let line = format!(
                "{:<32} {:<10} synced in {} ms",
                synced.resource,
                synced.kind,
                self.since.elapsed().as_millis()
            );
            self.inner.note(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_and_build_files_are_ignored() {
        for path in [
            "/p/.aws-sam/build/x.py",
            "/p/fn/node_modules/a/index.js",
            "/p/fn/.app.py.swp",
            "/p/fn/app.py~",
            "/p/fn/4913",
            "/p/.git/index",
        ] {
            assert!(ignored(Path::new(path)), "{path}");
        }
        for path in ["/p/fn/app.py", "/p/template.yaml", "/p/fn/requirements.txt"] {
            assert!(!ignored(Path::new(path)), "{path}");
        }
    }
}
