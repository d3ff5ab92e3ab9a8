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
mod case;
mod classify;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use case::PathCase;
use classify::{Change, TemplateTrigger};
use notify::{EventKind, RecursiveMode, Watcher};
use serde_json::Value;

use crate::builder::{self, adl};
use crate::held;
use crate::project::{Paths, Project, TemplateSource};
use crate::sync::apply::Outcome;
use crate::sync::drift;
use crate::sync::hotswap::{self, StackFacts};
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
    /// Hotswap configuration changes (the default; `--no-hotswap` deploys
    /// them through CloudFormation, as sam does).
    pub(crate) hotswap: bool,
    /// The infra sync settings (bucket, capabilities, …).
    pub(crate) infra: InfraRequest,
}

/// The first wait after a failure that may pass by itself; it doubles up to
/// [`MAX_RETRY_WAIT`] while the failure lasts.
const FIRST_RETRY_WAIT: Duration = Duration::from_secs(1);

/// The longest wait between two tries.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// The longest wait after a failure caused by a file being saved or held
/// (Windows): past it, only the next save tries again, as a file that
/// stays missing needs a save anyway.
const MAX_FILE_RETRY_WAIT: Duration = Duration::from_secs(8);

/// How a failure that may pass by itself is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Retry {
    /// A file was held by another process or missing for a moment: a few
    /// tries, up to [`MAX_FILE_RETRY_WAIT`].
    Briefly,
    /// The network or throttling: tries until it works.
    Forever,
}

/// How `e` is tried again without a save; `None`: only a save helps. A
/// file read refused or missing while it is saved must not drop the edit:
/// the sync runs again once the file is readable.
fn retry_for(e: &SyncError) -> Option<Retry> {
    if e.is_transient() {
        Some(Retry::Forever)
    } else if held::caused_by_passing(e) {
        Some(Retry::Briefly)
    } else {
        None
    }
}

/// Runs the watch loop until Ctrl-C, reading the project from `source`
/// afresh on every template change. It never stops on its own: a failed
/// sync keeps its resources pending, and a failure that may pass by itself
/// (network, throttling) is retried with backoff as well as on the next save.
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

    let mut state = State {
        env,
        project: None,
        synced: HashMap::new(),
        facts: None,
        paused: false,
        infra_due: false,
        infra_synced: false,
        pending: BTreeSet::new(),
        pending_config: BTreeMap::new(),
        retry: None,
    };
    let mut watched = BTreeSet::new();
    match Project::load(source, Paths::Required) {
        Ok(project) => {
            state.synced = classify::snapshot(&project.stack);
            state.project = Some(project);
        }
        Err(e) => {
            printer.failed(&e);
            state.paused = true;
        }
    }
    if options.code_only {
        printer.note(
            "You have enabled the --code flag, which limits sam sync updates to code changes only. To do a complete infrastructure and code sync, remove the --code flag.",
        );
    } else if state.project.is_some() {
        state.infra_due = true;
        state.sync_due(options, Instant::now()).await;
    }
    let template_dir = state.project.as_ref().and_then(|p| p.template_file.parent().map(Path::to_path_buf));
    let root = template_dir.unwrap_or(cwd);
    // Before watching starts: the probe's file makes no event.
    let case = PathCase::probe(&root);
    rewatch(&mut watcher, &mut watched, &root, state.project.as_ref(), env);
    printer.note("Sync watch started.");

    loop {
        let retry_at = state.retry.map(|(at, _)| tokio::time::Instant::from_std(at));
        let first = tokio::select! {
            path = rx.recv() => match path { Some(path) => Some(path), None => break },
            () = tokio::time::sleep_until(retry_at.unwrap_or_else(tokio::time::Instant::now)), if retry_at.is_some() => None,
            _ = tokio::signal::ctrl_c() => break,
        };
        let since = match first {
            Some(first) => {
                let (started, paths) = burst::collect(first, &mut rx).await;
                let inputs = builder::recorded_inputs(&env.layout.build_inputs());
                let stack = state.project.as_ref().map(|p| &p.stack);
                let changes = classify::classify(stack, &paths, &options.excludes, &inputs, case);
                if changes.is_empty() {
                    continue;
                }
                report_changes(&changes, &root, env);
                state.pending.extend(changes.iter().filter_map(|(_, c)| match c {
                    Change::Resource { path, .. } => Some(path.clone()),
                    Change::Template => None,
                }));
                if changes.iter().any(|(_, c)| *c == Change::Template) {
                    state.template_changed(source, options).await;
                    rewatch(&mut watcher, &mut watched, &root, state.project.as_ref(), env);
                }
                started
            }
            None => {
                printer.note("Trying the failed sync again.");
                Instant::now()
            }
        };
        state.sync_due(options, since).await;
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
    // Files builds read outside the resources' folders (shared code, includes).
    for input in builder::recorded_inputs(&env.layout.build_inputs()).into_values().flatten() {
        let dir = if input.is_dir() { input } else { input.parent().map(Path::to_path_buf).unwrap_or(input) };
        if dir.is_dir() {
            wanted.insert(dir);
        }
    }
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
    facts: Option<StackFacts>,
    /// Syncs wait for a template fix (or a working infra sync).
    paused: bool,
    /// An infra sync is owed (the first one, or one that failed).
    infra_due: bool,
    /// An infra sync succeeded in this session: later ones follow template
    /// changes and are never skipped (only the first may be, as `accel sync`).
    infra_synced: bool,
    /// Resources whose code waits for a sync: new edits and failures alike.
    pending: BTreeSet<String>,
    /// Configuration waiting for a hotswap: full path → properties.
    pending_config: BTreeMap<String, Vec<String>>,
    /// When to try again after a failure that may pass by itself, and the
    /// wait that led there.
    retry: Option<(Instant, Duration)>,
}

impl State<'_> {
    /// Reloads the project and decides: code locations only → the changed
    /// resources join the pending ones; anything else → an infra sync is due.
    async fn template_changed(&mut self, source: &TemplateSource, options: &WatchOptions) {
        let printer = self.env.printer;
        let project = match Project::load(source, Paths::Required) {
            Ok(project) => project,
            Err(e) => {
                printer.failed(&e);
                printer.note("Code sync is paused until the template is fixed.");
                self.paused = true;
                return;
            }
        };
        self.paused = false;
        match classify::template_trigger(&self.synced, &project.stack, options.hotswap) {
            TemplateTrigger::Unchanged
                if self.pending.is_empty() && self.pending_config.is_empty() && !self.infra_due =>
            {
                printer.note("The template is as last synced: nothing to deploy.");
                self.synced = classify::snapshot(&project.stack);
            }
            TemplateTrigger::Unchanged => self.synced = classify::snapshot(&project.stack),
            TemplateTrigger::Service { code, config } => {
                if config.is_empty() {
                    printer.note("Template change touches code locations only: code sync.");
                } else {
                    let what: Vec<String> = config.iter().map(|(r, p)| format!("{r} ({})", p.join(", "))).collect();
                    printer.note(format_args!("Template change: hotswap of {}.", what.join(", ")));
                }
                self.pending.extend(code);
                for (resource, properties) in config {
                    merge_properties(self.pending_config.entry(resource).or_default(), properties);
                }
                self.synced = classify::snapshot(&project.stack);
            }
            TemplateTrigger::Infra(_) if options.code_only => {
                printer.note("The template changed beyond code: with --code, accel does not deploy it. Run accel sync without --code.");
            }
            TemplateTrigger::Infra(reasons) => {
                if options.hotswap {
                    for reason in &reasons {
                        printer.note(format_args!("{reason}: CloudFormation"));
                    }
                }
                printer.note("Template changed: infra sync.");
                self.infra_due = true;
            }
        }
        self.project = Some(project);
    }

    /// Runs what is owed: an infra sync if one is due, else a code sync of
    /// the pending resources. Updates are timed from `since`.
    async fn sync_due(&mut self, options: &WatchOptions, since: Instant) {
        if self.paused || self.project.is_none() {
            return;
        }
        if self.infra_due {
            self.infra_sync(options, since).await;
        } else if !self.pending.is_empty() || !self.pending_config.is_empty() {
            self.code_sync(since).await;
            // A hotswap the deployed stack cannot work out is deployed instead.
            if self.infra_due {
                self.infra_sync(options, since).await;
            }
        }
    }

    async fn infra_sync(&mut self, options: &WatchOptions, started: Instant) {
        let Some(project) = &self.project else { return };
        let printer = self.env.printer;
        // Only the first infra sync may be skipped: after that the template changed.
        let skip_deploy_sync = options.infra.skip_deploy_sync && !self.infra_synced;
        let request = InfraRequest { skip_deploy_sync, ..options.infra.clone() };
        let outcome = infra::infra_sync(self.env, &project.stack, &request).await;
        self.facts = None;
        match outcome {
            Ok(outcome) => {
                match outcome {
                    InfraOutcome::Skipped(synced) => {
                        let updated = synced.iter().filter(|s| s.outcome == Outcome::Updated).count();
                        printer.note(format_args!(
                            "Skipped infra sync as the local template is in sync with the cloud template ({updated} code update(s), {} ms).",
                            started.elapsed().as_millis()
                        ));
                    }
                    InfraOutcome::Deployed { .. } => {
                        printer.note(format_args!("Infra sync completed in {} ms.", started.elapsed().as_millis()));
                    }
                }
                // The deploy (or the code syncs it ran) carried every change made until now.
                self.infra_due = false;
                self.infra_synced = true;
                self.pending.clear();
                self.pending_config.clear();
                self.synced = classify::snapshot(&project.stack);
                self.retry = None;
            }
            // Still due: the next save (a fixed build, a fixed template)
            // tries again, and carries every edit made meanwhile.
            Err(e) => {
                printer.failed(&e);
                if !retry_for(&e).is_some_and(|retry| self.schedule_retry("the infra sync", retry)) {
                    // A try planned before must not fire again and again.
                    self.retry = None;
                    printer.note("Failed to sync infra: it runs again on the next save.");
                }
            }
        }
    }

    async fn code_sync(&mut self, since: Instant) {
        let Some(project) = &self.project else { return };
        let printer = self.env.printer;
        let work = crate::work::Tally::now();
        let batch = std::mem::take(&mut self.pending);
        let config_batch = std::mem::take(&mut self.pending_config);
        // The stack's id and parameters only matter to a hotswap.
        let describe = !config_batch.is_empty();
        let facts = match self.facts.clone().filter(|f| !describe || !f.stack_id.is_empty()) {
            Some(facts) => facts,
            None => match sync::stack_facts(self.env.aws, self.env.stack_name, describe).await {
                Ok(facts) => {
                    self.facts = Some(facts.clone());
                    facts
                }
                Err(e) => {
                    printer.failed(&e);
                    self.pending = batch;
                    self.pending_config = config_batch;
                    if e.is_transient() {
                        self.schedule_retry("the code sync", Retry::Forever);
                    }
                    return;
                }
            },
        };
        let templates: HashMap<String, &Value> = project
            .stack
            .stacks()
            .into_iter()
            .map(|s| (if s.stack_path.is_empty() { String::new() } else { format!("{}/", s.stack_path) }, &s.template))
            .collect();
        let (config, refused) = hotswap::config_actions(&templates, &config_batch, &facts);
        if !refused.is_empty() {
            for change in &refused {
                printer.note(format_args!("{change}: CloudFormation"));
            }
            self.pending = batch;
            self.infra_due = true;
            return;
        }
        let deployed = facts.deployed;
        // A resource whose build fails is left out, so the others still sync.
        let mut broken: Vec<String> = Vec::new();
        let mut retry = None;
        let result = loop {
            let selected = |r: &crate::template::Resource| batch.contains(&r.full_path);
            let request = sync::CodeSync { exclude: &broken, since: Some(since), config: config.clone() };
            let result = sync::code_sync(self.env, &project.stack, deployed.clone(), selected, request).await;
            match result.as_ref().err().and_then(SyncError::failed_build) {
                Some(failed) if !failed.iter().all(|f| broken.contains(f)) => {
                    if let Err(e) = &result {
                        printer.failed(e);
                        retry = retry.max(retry_for(e));
                    }
                    broken.extend(failed);
                }
                _ => break result,
            }
        };
        self.pending.extend(broken.into_iter().filter(|b| batch.contains(b)));
        match result {
            Ok(applied) => {
                for (resource, e) in &applied.failed {
                    printer.failed(e);
                    retry = retry.max(retry_for(e));
                    // A hotswap the service refuses for good is deployed instead.
                    match config_batch.get(resource) {
                        Some(properties) if e.is_transient() => {
                            merge_properties(
                                self.pending_config.entry(resource.clone()).or_default(),
                                properties.clone(),
                            );
                        }
                        Some(_) => {
                            printer.note(format_args!("{resource}: the hotswap failed: CloudFormation"));
                            self.infra_due = true;
                        }
                        None => {}
                    }
                    // A layer flow stands for its function: retry the function.
                    let owner = batch.iter().find(|b| *b == resource || resource.ends_with(&adl::layer_logical_id(b)));
                    if owner.is_some() || !config_batch.contains_key(resource) {
                        self.pending.insert(owner.cloned().unwrap_or_else(|| resource.clone()));
                    }
                    if matches!(e, SyncError::NotDeployed(_)) {
                        self.facts = None;
                    }
                }
                if applied.failed.is_empty()
                    && applied.synced.iter().all(|s| s.outcome == Outcome::Unchanged)
                    && self.pending.is_empty()
                {
                    printer.note(format_args!("No code change to send ({} ms).", since.elapsed().as_millis()));
                }
                if !config_batch.is_empty()
                    && let Some(note) = drift::behind_note(&self.env.layout.drift(), self.env.stack_name)
                {
                    printer.note(note);
                }
            }
            Err(e) => {
                printer.failed(&e);
                retry = retry.max(retry_for(&e));
                // A resource missing remotely may be new: read the stack again next time.
                self.facts = None;
                self.pending.extend(batch.iter().cloned());
                self.pending_config.extend(config_batch);
            }
        }
        printer.debug(format_args!("This sync: {}", work.since()));
        if self.pending.is_empty() && self.pending_config.is_empty() {
            self.retry = None;
        } else if !retry.is_some_and(|retry| self.schedule_retry("the code sync", retry)) {
            self.retry = None;
            let names: Vec<&str> = self.pending.iter().chain(self.pending_config.keys()).map(String::as_str).collect();
            printer.note(format_args!("Still pending: {} (synced on the next save).", names.join(", ")));
        }
    }

    /// Plans another try after a failure that may pass by itself; `false`
    /// (and none planned) when a [`Retry::Briefly`] failure has lasted.
    fn schedule_retry(&mut self, what: &str, retry: Retry) -> bool {
        let wait = self.retry.map_or(FIRST_RETRY_WAIT, |(_, last)| last * 2);
        let wait = match retry {
            Retry::Forever => wait.min(MAX_RETRY_WAIT),
            Retry::Briefly if wait > MAX_FILE_RETRY_WAIT => {
                self.retry = None;
                return false;
            }
            Retry::Briefly => wait,
        };
        self.retry = Some((Instant::now() + wait, wait));
        let names: Vec<&str> = self.pending.iter().map(String::as_str).collect();
        let pending = if names.is_empty() { String::new() } else { format!(" Still pending: {}.", names.join(", ")) };
        self.env.printer.note(format_args!("Retrying {what} in {} s (or on the next save).{pending}", wait.as_secs()));
        true
    }
}

/// Adds `new` properties to `into`, each once.
fn merge_properties(into: &mut Vec<String>, new: Vec<String>) {
    for property in new {
        if !into.contains(&property) {
            into.push(property);
        }
    }
}
