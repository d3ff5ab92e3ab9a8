//! `accel build`: the build graph ([`graph`]), the language workflows
//! ([`workflow`]), the cache split into dependencies and code ([`cache`]),
//! and the output sam expects ([`output`]).
//!
//! A build runs in two phases. First every unit's dependencies and code are
//! built into the content-addressed cache, concurrently. Only when all of
//! them succeeded are the artifact folders, templates and `build.toml`
//! updated, so a failed build leaves the previous good one in place.

pub(crate) mod adl;
pub(crate) mod cache;
pub(crate) mod fsops;
pub(crate) mod graph;
mod hashes;
pub(crate) mod inputs;
mod output;
pub(crate) mod remote;
pub(crate) mod workflow;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache::Cache;
use graph::{BuildUnit, Selection};
use remote::{RemoteCache, RemoteError, Store};
use workflow::WorkflowError;

use crate::layout::ProjectLayout;
use crate::printer::{Printer, Task};
use crate::report::Event;
use crate::template::Stack;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    /// The positional resource id names nothing buildable.
    #[error("Unable to find a function or layer with name '{0}'")]
    NotFound(String),
    /// A resource the template describes in a way accel cannot build.
    #[error("{resource}: {message}")]
    Resource {
        /// Full path of the resource.
        resource: String,
        /// What is wrong with it.
        message: String,
    },
    /// A unit's workflow failed (bad runtime, failing tool …).
    #[error("{resource}: {source}")]
    Workflow {
        /// Full path of the resource (`A, B` for a shared build).
        resource: String,
        /// What went wrong; tool output included. Shared: units with one
        /// manifest share one install, and its failure.
        source: Arc<WorkflowError>,
    },
    /// A path to replace lies outside the build folder (never written).
    #[error("refusing to write {}: it is outside the build folder", .0.display())]
    Outside(PathBuf),
    /// A function without `Handler` (sam's words).
    #[error("Could not find handler for function: {0}")]
    NoHandler(String),
    /// A build task panicked or was cancelled.
    #[error("a build task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// `--build-dir` is the current folder, which a build would overwrite.
    #[error(
        "Failing build: Running a build with build-dir as current working directory is extremely dangerous since the build-dir contents is first removed. This is no longer supported, please remove the '--build-dir' option from the command to allow the build artifacts to be placed in the directory your template is in."
    )]
    BuildDirIsCwd,
    /// A file-system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io { path: path.to_path_buf(), source }
}

/// Where and how to build.
#[derive(Debug, Clone)]
pub(crate) struct BuildOptions {
    /// `--build-dir` (absolute).
    pub(crate) build_dir: PathBuf,
    /// `--cache-dir` (absolute): built code.
    pub(crate) cache_dir: PathBuf,
    /// `.aws-sam/deps` (absolute): installed dependencies.
    pub(crate) deps_dir: PathBuf,
    /// `--cached`: reuse cache entries and unchanged artifacts.
    pub(crate) cached: bool,
    /// What to build.
    pub(crate) selection: Selection,
    /// How many units build at once.
    pub(crate) jobs: usize,
    /// The stack name when Python and Node dependencies go into auto
    /// dependency layers (`accel sync`'s default) instead of each function.
    pub(crate) dependency_layer: Option<String>,
    /// Which units get a line (and whether a terminal shows a live line).
    pub(crate) progress: Progress,
    /// Where the inputs each resource's build read are recorded.
    pub(crate) inputs_file: PathBuf,
    /// `--build-in-source` (`Some(true)`), `--no-build-in-source`
    /// (`Some(false)`) or unset; each workflow takes what sam's takes.
    pub(crate) build_in_source: Option<bool>,
    /// `--remote-cache`: entries shared through S3.
    pub(crate) remote: Option<Arc<RemoteCache>>,
}

impl BuildOptions {
    /// A build of everything into `build_dir`, with the project's caches.
    pub(crate) fn new(
        layout: &ProjectLayout,
        build_dir: PathBuf,
        cached: bool,
        dependency_layer: Option<String>,
    ) -> BuildOptions {
        BuildOptions {
            build_dir,
            cache_dir: layout.cache_dir().to_path_buf(),
            deps_dir: layout.deps_dir(),
            cached,
            selection: Selection::default(),
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            dependency_layer,
            progress: Progress::Quiet,
            inputs_file: layout.build_inputs(),
            build_in_source: None,
            remote: None,
        }
    }
}

/// Which build units are reported as they finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// None, and no live line.
    Quiet,
    /// Every unit: `accel build`.
    Every,
    /// Units that installed, built or wrote something: sync, which reports
    /// per resource and would otherwise list every cached unit on each run.
    Work,
}

/// What happened to one step of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing to do (no manifest, or no dependency step).
    None,
    /// Taken from the cache.
    Reused,
    /// Taken from the remote cache (`--remote-cache`).
    Downloaded,
    /// Run now.
    Built,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::None => "-",
            Step::Reused => "reused",
            Step::Downloaded => "downloaded",
            Step::Built => "built",
        })
    }
}

/// What one unit did.
#[derive(Debug, Clone)]
pub(crate) struct UnitReport {
    /// The resources, e.g. `HelloFunction, WorldFunction`.
    pub(crate) label: String,
    /// Runtime or build method.
    pub(crate) runtime: String,
    /// The dependency step.
    pub(crate) deps: Step,
    /// The code step.
    pub(crate) code: Step,
    /// Artifact folders rewritten (0 when all were already up to date).
    pub(crate) artifacts_written: usize,
    /// Wall time of the unit.
    pub(crate) elapsed: Duration,
}

impl std::fmt::Display for UnitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let artifacts = if self.artifacts_written == 0 {
            "unchanged".to_string()
        } else {
            format!("{} written", self.artifacts_written)
        };
        write!(
            f,
            "{:<32} {:<16} deps {:<7} code {:<7} artifact {:<10} {:>6} ms",
            self.label,
            self.runtime,
            self.deps.to_string(),
            self.code.to_string(),
            artifacts,
            self.elapsed.as_millis()
        )
    }
}

impl UnitReport {
    /// The event that reports it.
    fn event(&self) -> Event {
        let ran = [self.deps, self.code].contains(&Step::Built) || self.artifacts_written > 0;
        Event::Build {
            resource: self.label.clone(),
            action: "build",
            runtime: self.runtime.clone(),
            duration_ms: self.elapsed.as_millis(),
            result: if ran { "built" } else { "cached" },
            line: self.to_string(),
        }
    }
}

/// The outcome of a build.
#[derive(Debug, Clone, Default)]
pub(crate) struct BuildReport {
    /// One entry per unit, layers first.
    pub(crate) units: Vec<UnitReport>,
    /// Stale cache entries removed.
    pub(crate) cleaned: usize,
    /// The artifact folders the build folder now holds.
    pub(crate) artifacts: Artifacts,
}

/// Artifact folders by resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Artifacts {
    /// Full path → artifact folder (from this build, or an earlier one that
    /// a single-resource build kept).
    pub(crate) folders: HashMap<String, PathBuf>,
    /// Function full path → its auto dependency layer folder.
    pub(crate) dependency_layers: HashMap<String, PathBuf>,
}

/// What phase one produced for a unit.
struct Built {
    unit: BuildUnit,
    deps: Option<(String, PathBuf)>,
    code: (String, PathBuf),
    /// Files read outside the unit's folder (manifest includes, local
    /// packages, bundled imports).
    inputs: Vec<PathBuf>,
    deps_step: Step,
    code_step: Step,
    elapsed: Duration,
    /// What went wrong with the remote cache (the build went on without it).
    remote_notes: Vec<String>,
}

/// Builds `stack` (the root of a template tree) as `options` say, showing
/// its progress on `printer` as `options.progress` asks, and its cache
/// decisions as debug lines.
pub(crate) async fn build(
    stack: &Stack,
    cwd: &Path,
    options: &BuildOptions,
    printer: &Printer,
) -> Result<BuildReport, BuildError> {
    let progress = (options.progress != Progress::Quiet).then_some(printer);
    let work = crate::work::Tally::now();
    if options.build_dir == cwd {
        return Err(BuildError::BuildDirIsCwd);
    }
    let mut units = graph::plan(stack, &options.selection)?;
    for unit in &mut units {
        let (in_source, warning) = unit.workflow.builds_in_source(options.build_in_source);
        unit.build_in_source = in_source;
        if let Some(warning) = warning {
            printer.note(warning);
        }
    }
    // What this template builds now. Artifacts of earlier builds count only
    // for these: a resource that moved to S3 or inline code, or whose id
    // now names something else, never gets an old folder.
    let buildable: HashSet<String> = match options.selection.is_everything() {
        true => units.iter().flat_map(BuildUnit::resources).collect(),
        false => {
            let everything = Selection { resource: None, only: None, ..options.selection.clone() };
            graph::plan(stack, &everything)
                .unwrap_or_else(|_| units.clone())
                .iter()
                .flat_map(BuildUnit::resources)
                .collect()
        }
    };
    let cache = Cache::new(&options.deps_dir, &options.cache_dir);
    let task = progress.map(|printer| printer.task("Building", Some(units.len())));

    // Phase one: dependencies and code into the cache; layers first.
    let (layers, functions): (Vec<_>, Vec<_>) = units.into_iter().partition(BuildUnit::is_layer);
    let installs = Installs::default();
    let built = run_all(layers, &cache, options, &installs, task.as_ref()).await;
    let built = match built {
        Ok(mut built) => run_all(functions, &cache, options, &installs, task.as_ref()).await.map(|more| {
            built.extend(more);
            built
        }),
        Err(e) => Err(e),
    };
    drop(task);
    let built = built?;

    // Phase two: artifacts, templates, build.toml, state.
    // One state file per build folder (`build`, `auto-dependency-layer`).
    let state_file = ProjectLayout::build_state(&options.build_dir);
    let mut state: BTreeMap<String, String> =
        std::fs::read(&state_file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let mut report = BuildReport::default();
    let mut definitions = Vec::new();
    let mut keep = Vec::new();
    let mut layers = Vec::new();
    for b in &built {
        for line in &b.remote_notes {
            printer.note(format_args!("Warning: {line}"));
        }
        let started = Instant::now();
        let mut written = 0;
        let adl = options.dependency_layer.as_deref().filter(|_| adl::eligible(&b.unit));
        if let Some(stack_name) = adl {
            for layer in adl::layers_of(&b.unit, stack_name, &options.build_dir) {
                written += write_adl_layer(&layer, &b.unit, b.deps.as_ref(), &mut state, options)?;
                layers.push(layer);
            }
        }
        for (logical_id, _) in b.unit.logical_ids.iter().zip(b.unit.resources()) {
            let artifact = options.build_dir.join(&b.unit.stack_path).join(logical_id);
            if !ProjectLayout::within(&options.build_dir, &artifact) {
                return Err(BuildError::Outside(artifact));
            }
            let subfolder =
                if b.unit.is_layer() { b.unit.workflow.layer_subfolder(&b.unit.runtime).unwrap_or("") } else { "" };
            let key = format!("{}+{}+{subfolder}", b.code.0, b.deps.as_ref().map(|d| d.0.as_str()).unwrap_or("-"));
            // Relative to the build folder: a moved project keeps its state.
            let state_key = crate::files::slash_path(&Path::new(&b.unit.stack_path).join(logical_id));
            // In-source dependencies are npm's to change under the same key.
            let fresh_deps =
                b.unit.build_in_source && b.deps_step == Step::Built && b.unit.workflow.ships_dependencies();
            if options.cached && artifact.is_dir() && state.get(&state_key) == Some(&key) && !fresh_deps {
                continue;
            }
            let staging = fsops::staging_dir(&artifact).map_err(io_error(&artifact))?;
            let target = staging.path().join(subfolder);
            let code = Some(&b.code.1);
            let deps = b.deps.as_ref().filter(|_| b.unit.workflow.ships_dependencies() && adl.is_none()).map(|d| &d.1);
            // Where both hold a path, the one placed last wins, as in sam.
            let order = if b.unit.workflow.source_over_dependencies() { [deps, code] } else { [code, deps] };
            for tree in order.into_iter().flatten() {
                fsops::link_tree(tree, &target).map_err(io_error(tree))?;
            }
            fsops::publish(staging, &artifact).map_err(io_error(&artifact))?;
            state.insert(state_key, key);
            written += 1;
        }
        keep.push(b.code.1.clone());
        keep.extend(b.deps.as_ref().map(|d| d.1.clone()));
        let manifest_md5 = b.unit.manifest.as_ref().and_then(|m| cache.hashes.md5(m).ok());
        definitions.push((b.unit.clone(), manifest_md5, b.code.0.clone()));
        let unit_report = UnitReport {
            label: b.unit.label(),
            runtime: b.unit.runtime.clone(),
            deps: b.deps_step,
            code: b.code_step,
            artifacts_written: written,
            elapsed: b.elapsed + started.elapsed(),
        };
        printer.debug(format_args!(
            "{}: dependencies {} (key {}), code {} (key {})",
            unit_report.label,
            b.deps_step,
            b.deps.as_ref().map_or("-", |d| d.0.as_str()),
            b.code_step,
            b.code.0
        ));
        let event = unit_report.event();
        let shown = options.progress == Progress::Every || matches!(event, Event::Build { result: "built", .. });
        if let Some(printer) = progress.filter(|_| shown) {
            printer.event(&event);
        }
        report.units.push(unit_report);
    }

    let artifacts = artifact_paths(stack, &options.build_dir, &state, &buildable);
    let patches = esbuild_patches(stack, &built, &artifacts);
    output::write_templates(stack, &options.build_dir, &artifacts, &patches, &layers)
        .map_err(io_error(&options.build_dir))?;
    // A watch save that picked every buildable resource is a full build.
    let full_build = options.selection.resource.is_none()
        && options.selection.only.as_ref().is_none_or(|only| {
            let only: HashSet<&String> = only.iter().collect();
            buildable.iter().all(|b| only.contains(b))
        });
    if full_build {
        let toml_path = ProjectLayout::build_toml(&options.build_dir);
        crate::files::write_if_changed(&toml_path, output::build_toml(&definitions).as_bytes())
            .map_err(io_error(&toml_path))?;
    }
    let state_bytes = serde_json::to_vec_pretty(&state).unwrap_or_default();
    crate::files::write_if_changed(&state_file, &state_bytes).map_err(io_error(&state_file))?;
    if full_build && options.cached {
        report.cleaned = cache.clean(&keep);
    }
    cache.hashes.save();
    let dependency_layers = layers.into_iter().map(|l| (l.function, l.folder)).collect();
    let inputs: HashMap<String, Vec<PathBuf>> =
        built.iter().flat_map(|b| b.unit.resources().into_iter().map(|r| (r, b.inputs.clone()))).collect();
    record_inputs(&options.inputs_file, &inputs);
    report.artifacts = Artifacts { folders: artifacts, dependency_layers };
    printer.debug(format_args!("Build: {}", work.since()));
    Ok(report)
}

/// Adds this build's inputs to the project's record (a partial build keeps
/// the others'). The record only guides watching: losing it loses nothing.
fn record_inputs(file: &Path, inputs: &HashMap<String, Vec<PathBuf>>) {
    let known = recorded_inputs(file);
    let mut all = known.clone();
    all.extend(inputs.iter().filter(|(_, read)| !read.is_empty()).map(|(k, v)| (k.clone(), v.clone())));
    all.retain(|k, _| inputs.get(k).is_none_or(|read| !read.is_empty()));
    if all != known {
        let _ = crate::files::write_atomic(file, &serde_json::to_vec_pretty(&all).unwrap_or_default());
    }
}

/// What each resource's last build read outside its folder, by full path.
pub(crate) fn recorded_inputs(file: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    std::fs::read(file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Writes one auto dependency layer folder (`python/` or `nodejs/` with the
/// unit's dependencies, and sam's README) unless it is already up to date.
/// Returns how many folders were written.
fn write_adl_layer(
    layer: &adl::AdlLayer,
    unit: &BuildUnit,
    deps: Option<&(String, PathBuf)>,
    state: &mut BTreeMap<String, String>,
    options: &BuildOptions,
) -> Result<usize, BuildError> {
    let (build_dir, cached) = (&options.build_dir, options.cached);
    let key = format!("adl+{}", deps.map_or("-", |d| d.0.as_str()));
    let state_key = crate::files::slash_path(&Path::new(&unit.stack_path).join(&layer.layer_logical_id));
    if cached && layer.folder.is_dir() && state.get(&state_key) == Some(&key) {
        return Ok(0);
    }
    if !ProjectLayout::within(build_dir, &layer.folder) {
        return Err(BuildError::Outside(layer.folder.clone()));
    }
    let staging = fsops::staging_dir(&layer.folder).map_err(io_error(&layer.folder))?;
    let readme = staging.path().join("AWS_SAM_CLI_README");
    std::fs::write(&readme, adl::readme(&layer.function)).map_err(io_error(&readme))?;
    if let Some((_, deps)) = deps {
        let subfolder = staging.path().join(unit.workflow.layer_subfolder(&unit.runtime).unwrap_or(""));
        fsops::link_tree(deps, &subfolder).map_err(io_error(deps))?;
    }
    fsops::publish(staging, &layer.folder).map_err(io_error(&layer.folder))?;
    state.insert(state_key, key);
    Ok(1)
}

fn esbuild_patches(
    stack: &Stack,
    built: &[Built],
    artifacts: &HashMap<String, PathBuf>,
) -> HashMap<String, output::Patch> {
    let mut patches = HashMap::new();
    for b in built.iter().filter(|b| b.unit.workflow == workflow::Workflow::Esbuild) {
        for path in b.unit.resources() {
            if let (Some((_, resource)), Some(artifact)) = (stack.find(&path), artifacts.get(&path)) {
                patches.insert(path.clone(), output::esbuild_patch(resource, artifact, b.unit.build_properties()));
            }
        }
    }
    patches
}

/// Publishes a cache entry. A cached build keeps an entry another build
/// published meanwhile (same key, same content, maybe being linked from); a
/// build from scratch replaces it.
fn publish_entry(staging: tempfile::TempDir, entry: &Path, cached: bool) -> std::io::Result<()> {
    if cached { fsops::publish_if_absent(staging, entry) } else { fsops::publish(staging, entry) }
}

/// Every `buildable` resource with a built artifact folder, from this build
/// or an earlier one (a single-resource build keeps the others).
fn artifact_paths(
    stack: &Stack,
    build_dir: &Path,
    state: &BTreeMap<String, String>,
    buildable: &HashSet<String>,
) -> HashMap<String, PathBuf> {
    stack
        .all_resources()
        .filter(|(_, r)| buildable.contains(&r.full_path))
        .filter_map(|(s, r)| {
            let key = Path::new(&s.build_path).join(&r.logical_id);
            let dir = build_dir.join(&key);
            (state.contains_key(&crate::files::slash_path(&key)) && dir.is_dir()).then(|| (r.full_path.clone(), dir))
        })
        .collect()
}

/// One dependency install of a build: locked while it runs, then its result.
type Install = Arc<tokio::sync::Mutex<Option<Result<Step, Arc<WorkflowError>>>>>;

/// Dependency installs of one build, by key: each runs once.
type Installs = Arc<tokio::sync::Mutex<HashMap<String, Install>>>;

/// A unit's place among the `jobs` that build at once: held while it works,
/// given up while it waits for an install another unit runs, so that units
/// with other work (another install, their code) can go ahead.
struct Slot {
    limit: Arc<tokio::sync::Semaphore>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Slot {
    /// Waits for a place, unless it holds one.
    async fn hold(&mut self) {
        if self.permit.is_none() {
            // The semaphore is never closed.
            self.permit = self.limit.clone().acquire_owned().await.ok();
        }
    }

    /// Gives its place up.
    fn release(&mut self) {
        self.permit = None;
    }
}

/// Awaits a remote cache call without a job slot: it waits on the network,
/// and the remote cache bounds its own calls.
async fn off_slot<T>(slot: &mut Slot, call: impl std::future::Future<Output = T>) -> T {
    slot.release();
    let out = call.await;
    slot.hold().await;
    out
}

/// Runs phase one for `units` concurrently; the first error wins, after all
/// have finished (as sam does).
async fn run_all(
    units: Vec<BuildUnit>,
    cache: &Cache,
    options: &BuildOptions,
    installs: &Installs,
    task: Option<&Task>,
) -> Result<Vec<Built>, BuildError> {
    let limit = Arc::new(tokio::sync::Semaphore::new(options.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, unit) in units.into_iter().enumerate() {
        let (cache, limit, cached, installs) = (cache.clone(), limit.clone(), options.cached, installs.clone());
        let remote = options.remote.clone();
        tasks.spawn(async move {
            let mut slot = Slot { limit, permit: None };
            slot.hold().await;
            let label = unit.label();
            (index, label, build_unit(unit, &cache, cached, &installs, remote.as_deref(), &mut slot).await)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, label, result) = joined?;
        if let Some(task) = task {
            task.tick(&label);
        }
        results.push((index, result));
    }
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, r)| r).collect()
}

async fn build_unit(
    unit: BuildUnit,
    cache: &Cache,
    cached: bool,
    installs: &Installs,
    remote: Option<&RemoteCache>,
    slot: &mut Slot,
) -> Result<Built, BuildError> {
    let started = Instant::now();
    let remote_notes = std::sync::Mutex::new(Vec::new());
    let note = |what: &str, e: RemoteError| {
        if let Ok(mut notes) = remote_notes.lock() {
            notes.push(format!("{}: remote cache, {what}: {e}", unit.label()));
        }
    };
    // Every failure names the unit's resources: watch mode syncs the others.
    let fail = |source: Arc<WorkflowError>| BuildError::Workflow { resource: unit.label(), source };
    let unit_io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| fail(Arc::new(WorkflowError::Io { path, source }))
    };
    let mut inputs = match &unit.manifest {
        Some(manifest) => inputs::manifest_inputs(unit.workflow, manifest).map_err(unit_io(manifest))?,
        None => Vec::new(),
    };
    let deps_key = cache::deps_key(&unit, &inputs, &cache.hashes)
        .map_err(unit_io(unit.manifest.as_deref().unwrap_or(&unit.source_dir)))?;
    let mut deps_step = Step::None;
    let deps = match (&deps_key, &unit.manifest) {
        (Some(key), Some(manifest)) => {
            let entry = cache.deps_entry(key);
            // In the source, npm runs every build as sam's does: what it
            // left there may have changed since (a cached entry replaced).
            let cached = cached && !unit.build_in_source;
            if cached && entry.is_dir() {
                deps_step = Step::Reused;
                Cache::touch(&entry);
            } else {
                // Units with the same manifest, runtime and architecture share
                // one install per build: the first runs it, the others wait
                // for it without a job slot (a unit that holds one never
                // waits here, so the one running it always gets one).
                let install = installs.lock().await.entry(key.clone()).or_default().clone();
                let mut done = match install.try_lock() {
                    Ok(done) => done,
                    Err(_) => {
                        slot.release();
                        let done = install.lock().await;
                        slot.hold().await;
                        done
                    }
                };
                // Run only when no other unit has installed this key yet.
                let run = async {
                    let io = |source| Arc::new(WorkflowError::Io { path: entry.clone(), source });
                    if cached && let Some(remote) = remote.filter(|r| r.reads()) {
                        let staging = fsops::staging_dir(&entry).map_err(io)?;
                        match off_slot(slot, remote.fetch(Store::Deps, key, staging.path())).await {
                            Ok(true) => {
                                return publish_entry(staging, &entry, cached).map_err(io).map(|()| Step::Downloaded);
                            }
                            Ok(false) => {}
                            Err(e) => note("dependencies not used", e),
                        }
                    }
                    let staging = fsops::staging_dir(&entry).map_err(io)?;
                    let tools = cache.tool_cache();
                    unit.workflow
                        .install_dependencies(&unit, manifest, staging.path(), &tools)
                        .await
                        .map_err(Arc::new)?;
                    publish_entry(staging, &entry, cached).map_err(io)?;
                    if let Some(remote) = remote.filter(|r| r.writes())
                        && let Err(e) = off_slot(slot, remote.store(Store::Deps, key, &entry)).await
                    {
                        note("dependencies not stored", e);
                    }
                    Ok(Step::Built)
                };
                deps_step = match &*done {
                    Some(installed) => installed.clone().map(|_| Step::Reused),
                    None => done.insert(run.await).clone(),
                }
                .map_err(fail)?;
            }
            Some((key.clone(), entry))
        }
        _ => None,
    };
    // The code's key covers what its last build read outside its folder
    // (esbuild imports), as recorded then; a new build records it afresh.
    let base = cache::code_key(&unit, deps_key.as_deref(), &cache.hashes).map_err(unit_io(&unit.source_dir))?;
    // A fresh machine learns what the code read from the machine that built it.
    let inputs_file = cache.inputs_file(&base);
    let fetch_inputs = cached && unit.workflow.records_inputs() && !inputs_file.exists();
    if let Some(remote) = remote.filter(|r| fetch_inputs && r.reads()) {
        match off_slot(slot, remote.fetch_inputs(&base)).await {
            Ok(Some(record)) => crate::files::write_atomic(&inputs_file, &record).map_err(unit_io(&inputs_file))?,
            Ok(None) => {}
            Err(e) => note("inputs record not used", e),
        }
    }
    let mut read = cache.recorded_inputs(&base, &unit.source_dir);
    let mut code_key = cache::with_inputs(&base, &unit.source_dir, &read, &cache.hashes);
    let mut entry = cache.code_entry(&code_key);
    let downloaded = match remote.filter(|r| cached && r.reads() && !entry.is_dir()) {
        Some(remote) => {
            let staging = fsops::staging_dir(&entry).map_err(unit_io(&entry))?;
            match off_slot(slot, remote.fetch(Store::Code, &code_key, staging.path())).await {
                Ok(true) => publish_entry(staging, &entry, cached).map_err(unit_io(&entry)).map(|()| true)?,
                Ok(false) => false,
                Err(e) => {
                    note("code not used", e);
                    false
                }
            }
        }
        None => false,
    };
    let code_step = if downloaded {
        Step::Downloaded
    } else if cached && entry.is_dir() {
        Cache::touch(&entry);
        Step::Reused
    } else {
        let staging = fsops::staging_dir(&entry).map_err(unit_io(&entry))?;
        let deps_dir = deps.as_ref().map(|d| d.1.as_path());
        let recorded = std::mem::take(&mut read);
        read = unit.workflow.build_code(&unit, deps_dir, staging.path()).await.map_err(|e| fail(Arc::new(e)))?;
        code_key = cache::with_inputs(&base, &unit.source_dir, &read, &cache.hashes);
        entry = cache.code_entry(&code_key);
        if read != recorded {
            cache.record_inputs(&base, &unit.source_dir, &read).map_err(unit_io(&entry))?;
        }
        publish_entry(staging, &entry, cached).map_err(unit_io(&entry))?;
        if let Some(remote) = remote.filter(|r| r.writes()) {
            if let Err(e) = off_slot(slot, remote.store(Store::Code, &code_key, &entry)).await {
                note("code not stored", e);
            }
            if let Ok(record) = std::fs::read(&inputs_file)
                && let Err(e) = off_slot(slot, remote.store_inputs(&base, record)).await
            {
                note("inputs record not stored", e);
            }
        }
        Step::Built
    };
    inputs.extend(read);
    let code = (code_key, entry);
    let remote_notes = remote_notes.into_inner().unwrap_or_default();
    Ok(Built { unit, deps, code, inputs, deps_step, code_step, elapsed: started.elapsed(), remote_notes })
}
