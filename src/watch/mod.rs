//! `accel sync --watch` (spec §3): a first sync, then one loop that turns
//! each burst of file events ([`burst`]) into exactly one sync — a code sync
//! of the resources whose files changed, or one infra sync when the template
//! changed beyond code locations ([`classify`]) — and never dies on a bad save.
//!
//! Events come from `notify` (inotify, FSEvents …) on the project folder,
//! recursively, so editor saves of every style (write in place, write a
//! temporary file and rename, delete and create) and vanished-then-restored
//! folders are all seen. Events that arrive while a sync runs wait in the
//! channel and make one follow-up.

mod burst;
mod classify;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use classify::{Change, TemplateTrigger};
use notify::{EventKind, RecursiveMode, Watcher};
use serde_json::Value;

use crate::aws::cloudformation::DeployedStack;
use crate::project::{Project, TemplateSource};
use crate::sync::apply::Outcome;
use crate::sync::infra::{self, InfraOutcome, InfraRequest};
use crate::sync::{self, SyncEnv, SyncError};
use crate::template::resources::local_paths;

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WatchError {
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
pub(crate) struct WatchOptions {
    /// `--code`: never touch CloudFormation.
    pub(crate) code_only: bool,
    /// `--watch-exclude Resource=fragment`.
    pub(crate) excludes: Vec<(String, String)>,
    /// The infra sync settings (bucket, capabilities, …).
    pub(crate) infra: InfraRequest,
}

/// Runs the watch loop until Ctrl-C, reading the project from `source`
/// afresh on every template change.
pub(crate) async fn watch(env: SyncEnv<'_>, source: &TemplateSource, options: &WatchOptions) -> Result<(), WatchError> {
    let printer = env.printer;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let cwd = env.layout.root().to_path_buf();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, EventKind::Access(_))
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|source| WatchError::Notify { path: cwd.clone(), source })?;

    let mut state = State { env, project: None, synced: HashMap::new(), deployed: None, paused: false };
    let mut watched = BTreeSet::new();
    match Project::load(source) {
        Ok(project) => {
            state.synced = classify::snapshot(&project.stack);
            state.project = Some(project);
        }
        Err(e) => {
            printer.note(format_args!("Error: {e}"));
            state.paused = true;
        }
    }
    if options.code_only {
        printer.note(
            "You have enabled the --code flag, which limits sam sync updates to code changes only. To do a complete infrastructure and code sync, remove the --code flag.",
        );
    } else if let Some(project) = &state.project {
        let started = Instant::now();
        let outcome = infra::infra_sync(env, &project.stack, &options.infra).await;
        state.after_infra(outcome, started);
    }
    let template_dir = state.project.as_ref().and_then(|p| p.template_file.parent().map(Path::to_path_buf));
    let root = template_dir.unwrap_or(cwd);
    rewatch(&mut watcher, &mut watched, &root, state.project.as_ref(), env);
    printer.note("Sync watch started.");

    let mut pending: BTreeSet<String> = BTreeSet::new();
    loop {
        let first = tokio::select! {
            path = rx.recv() => match path { Some(path) => path, None => break },
            _ = tokio::signal::ctrl_c() => break,
        };
        let (burst_started, paths) = burst::collect(first, &mut rx).await;
        let changes = classify::classify(state.project.as_ref().map(|p| &p.stack), &paths, &options.excludes);
        if changes.is_empty() {
            continue;
        }
        report_changes(&changes, &root, env);
        pending.extend(changes.iter().filter_map(|(_, c)| match c {
            Change::Resource { path, .. } => Some(path.clone()),
            Change::Template => None,
        }));
        if changes.iter().any(|(_, c)| *c == Change::Template) {
            state.template_changed(source, options, &mut pending).await;
            rewatch(&mut watcher, &mut watched, &root, state.project.as_ref(), env);
        }
        if state.paused || pending.is_empty() {
            continue;
        }
        let batch = std::mem::take(&mut pending);
        state.code_sync(&batch, burst_started).await;
    }
    printer.note("Shutting down sync watch...");
    drop(watcher);
    printer.note("Sync watch stopped.");
    Ok(())
}

/// One line per changed resource (or template): a file that still exists
/// (an editor's temporary file is gone by now) and how many others changed.
fn report_changes(changes: &[(PathBuf, Change)], root: &Path, env: SyncEnv<'_>) {
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
            Change::Template => env.printer.note(format_args!("{shown}{more}: template changed")),
            Change::Resource { path: resource, manifest } => {
                let what = if *manifest { "dependencies" } else { "code" };
                env.printer.note(format_args!("{shown}{more}: {what} of {resource}"));
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
    env: SyncEnv<'_>,
) {
    let mut wanted = BTreeSet::from([root.to_path_buf()]);
    if let Some(project) = project {
        for stack in project.stack.stacks() {
            wanted.extend(stack.file.parent().map(Path::to_path_buf));
            for resource in &stack.resources {
                for (_, path) in local_paths(stack, resource) {
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
            Err(e) => env.printer.note(format_args!("cannot watch {}: {e}", path.display())),
        }
    }
}

struct State<'a> {
    env: SyncEnv<'a>,
    project: Option<Project>,
    /// Each stack file's template as last synced (or loaded at start).
    synced: HashMap<PathBuf, Value>,
    /// The deployed stack, read once and kept until an infra sync.
    deployed: Option<DeployedStack>,
    /// Code sync waits for a template fix (or a working infra sync).
    paused: bool,
}

impl State<'_> {
    /// Reloads the project and decides: code locations only → the changed
    /// resources join `pending`; anything else → one infra sync.
    async fn template_changed(
        &mut self,
        source: &TemplateSource,
        options: &WatchOptions,
        pending: &mut BTreeSet<String>,
    ) {
        let printer = self.env.printer;
        let project = match Project::load(source) {
            Ok(project) => project,
            Err(e) => {
                printer.note(format_args!("Error: {e}"));
                printer.note("Code sync is paused until the template is fixed.");
                self.paused = true;
                return;
            }
        };
        match classify::template_trigger(&self.synced, &project.stack) {
            trigger @ (TemplateTrigger::Unchanged | TemplateTrigger::Code(_)) => {
                if let TemplateTrigger::Code(changed) = trigger {
                    pending.extend(changed);
                }
                if pending.is_empty() {
                    printer.note("The template is as last synced: nothing to deploy.");
                } else {
                    printer.note("Template change touches code locations only: code sync.");
                }
                self.synced = classify::snapshot(&project.stack);
                self.project = Some(project);
                self.paused = false;
                return;
            }
            TemplateTrigger::Infra => {}
        }
        if options.code_only {
            printer.note("The template changed beyond code: with --code, accel does not deploy it. Run accel sync without --code.");
            self.project = Some(project);
            self.paused = false;
            return;
        }
        printer.note("Template changed: infra sync.");
        let started = Instant::now();
        let request = InfraRequest { skip_deploy_sync: false, ..options.infra.clone() };
        let outcome = infra::infra_sync(self.env, &project.stack, &request).await;
        let ok = outcome.is_ok();
        self.after_infra(outcome, started);
        if ok {
            // The deploy carried every code change made until now.
            pending.clear();
            self.synced = classify::snapshot(&project.stack);
        }
        self.project = Some(project);
    }

    fn after_infra(&mut self, outcome: Result<InfraOutcome, SyncError>, started: Instant) {
        let printer = self.env.printer;
        self.deployed = None;
        match outcome {
            Ok(InfraOutcome::Skipped(synced)) => {
                let updated = synced.iter().filter(|s| s.outcome == Outcome::Updated).count();
                printer.note(format_args!(
                    "Skipped infra sync as the local template is in sync with the cloud template ({updated} code update(s), {} ms).",
                    started.elapsed().as_millis()
                ));
                self.paused = false;
            }
            Ok(InfraOutcome::Deployed { .. }) => {
                printer.note(format_args!("Infra sync completed in {} ms.", started.elapsed().as_millis()));
                self.paused = false;
            }
            Err(e) => {
                printer.note(format_args!("Error: {e}"));
                printer.note("Failed to sync infra. Code sync is paused until template/stack is fixed.");
                self.paused = true;
            }
        }
    }

    async fn code_sync(&mut self, batch: &BTreeSet<String>, since: Instant) {
        let Some(project) = &self.project else { return };
        let printer = self.env.printer;
        let deployed = match self.deployed.clone() {
            Some(deployed) => deployed,
            None => match sync::deployed(self.env.aws, self.env.stack_name).await {
                Ok(deployed) => {
                    self.deployed = Some(deployed.clone());
                    deployed
                }
                Err(e) => {
                    printer.note(format_args!("Error: {e}"));
                    return;
                }
            },
        };
        let selected = |r: &crate::template::Resource| batch.contains(&r.full_path);
        match sync::code_sync(self.env, &project.stack, deployed, selected, Some(since)).await {
            Ok(synced) if synced.iter().all(|s| s.outcome == Outcome::Unchanged) => {
                printer.note(format_args!("No code change to send ({} ms).", since.elapsed().as_millis()));
            }
            Ok(_) => {}
            Err(e) => {
                // A resource missing remotely may be new: read the stack again next time.
                self.deployed = None;
                printer.note(format_args!("Error: {e}"));
            }
        }
    }
}
