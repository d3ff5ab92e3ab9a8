//! Runs a [`SyncPlan`]: layers first (their flows re-point the functions
//! using them), then everything else, a bounded number at a time. Each
//! action hashes what it would send first and does nothing when `sync.toml`
//! holds the same hash; folders are zipped only when their files' metadata
//! changed since the last zip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::plan::{Action, Body, Flow, Source, SyncPlan};
use super::state::SyncState;
use super::{SyncEnv, SyncError};
use crate::aws::cloudformation::DeployedStack;
use crate::aws::error::{CallError, CallResult};
use crate::aws::lambda::{self, LambdaError, NewLayerVersion};
use crate::aws::{Aws, apigateway, sfn};
use crate::package::{self, PackageError};
use crate::printer::Task;
use crate::report::Event;
use crate::template::kind::{ResourceKind, SyncFlow};

/// Lambda takes a zip inline up to this size; sam switches to S3 above it.
const INLINE_LIMIT: usize = 50 * 1024 * 1024;

/// Actions running at once.
const CONCURRENCY: usize = 8;

/// Why one action failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ActionError {
    /// A Lambda step.
    #[error(transparent)]
    Lambda(#[from] LambdaError),
    /// Another service call.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Zipping.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// Reading a definition file.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A package too large to send inline.
    #[error("the package is {0} MiB, above the 50 MiB Lambda takes inline; deploy it with accel sync (without --code)")]
    TooLarge(usize),
    /// A definition file that does not parse.
    #[error("definition file: {0}")]
    Definition(String),
    /// An `Fn::Sub` the deployed stack cannot fill.
    #[error("cannot resolve Fn::Sub \"{0}\" in the definition file from the deployed stack")]
    Unresolved(String),
    /// `sync.toml` could not be written.
    #[error("cannot write sync.toml: {0}")]
    State(std::io::Error),
    /// `accel-hotswap.json` could not be written.
    #[error("cannot write .aws-sam/accel-hotswap.json: {0}")]
    Drift(std::io::Error),
}

/// What happened to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The deployed content already matched.
    Unchanged,
    /// New content was deployed.
    Updated,
}

/// One finished action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Synced {
    /// Full path of the resource.
    pub(crate) resource: String,
    /// What was sent: `code`, `config (Environment, MemorySize)` …
    pub(crate) label: String,
    /// The service call that sends it.
    pub(crate) api: &'static str,
    /// A hotswap of template properties.
    pub(crate) hotswapped: bool,
    /// What happened.
    pub(crate) outcome: Outcome,
    /// Time from the start of the action (or from the save, in watch mode).
    pub(crate) elapsed: Duration,
}

impl Synced {
    /// The event that reports it.
    pub(crate) fn event(&self) -> Event {
        let result = match self.outcome {
            Outcome::Updated if self.hotswapped => "hotswapped",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
        };
        Event::Sync {
            resource: self.resource.clone(),
            action: self.label.clone(),
            api: self.api,
            duration_ms: self.elapsed.as_millis(),
            result,
            error: None,
        }
    }
}

/// What a run of a plan did: every action ends in one of the two lists.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Actions that finished.
    pub(crate) synced: Vec<Synced>,
    /// Actions that failed, by resource.
    pub(crate) failed: Vec<(String, SyncError)>,
}

impl Applied {
    /// The finished actions, or the first failure.
    pub(crate) fn into_result(self) -> Result<Vec<Synced>, SyncError> {
        match self.failed.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(self.synced),
        }
    }
}

/// The summary line of a code sync.
pub(crate) fn summary(synced: &[Synced], elapsed: Duration) -> String {
    let updated = synced.iter().filter(|s| s.outcome == Outcome::Updated).count();
    format!("Code sync done in {} ms: {updated} updated, {} unchanged.", elapsed.as_millis(), synced.len() - updated)
}

/// Shared by the actions of one run.
struct Executor {
    aws: Aws,
    deployed: DeployedStack,
    /// `sync.toml`, saved after each action.
    state: Mutex<SyncState>,
    state_file: PathBuf,
    /// Folder → (fingerprint, zip hash).
    memo: Mutex<HashMap<String, (String, String)>>,
    stack_name: String,
    /// The account, read once when a definition needs `${AWS::AccountId}`.
    account: tokio::sync::OnceCell<String>,
    /// `accel-hotswap.json`; the lock keeps this run's writes in turn.
    drift: Mutex<PathBuf>,
    /// The live line of the run.
    task: Task,
}

/// Runs `plan` against the stack. Every action runs, whatever the others
/// do. Each updated resource is printed as it finishes, timed from `since`
/// when given.
pub(crate) async fn apply(
    env: SyncEnv<'_>,
    deployed: DeployedStack,
    plan: SyncPlan,
    since: Option<Instant>,
) -> Applied {
    let SyncEnv { aws, layout, stack_name, printer, .. } = env;
    for skipped in &plan.skipped {
        printer.note(skipped);
    }
    let memo = std::fs::read(layout.zip_memo()).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let executor = Arc::new(Executor {
        aws: aws.clone(),
        deployed,
        state: Mutex::new(SyncState::load(&layout.sync_state())),
        state_file: layout.sync_state(),
        memo: Mutex::new(memo),
        stack_name: stack_name.to_string(),
        account: tokio::sync::OnceCell::new(),
        drift: Mutex::new(layout.drift()),
        task: printer.task("Syncing", Some(plan.actions.len())),
    });
    let (layers, others): (Vec<_>, Vec<_>) = plan.actions.into_iter().partition(|a| a.flow.kind() == SyncFlow::Layer);
    let mut applied = Applied::default();
    for batch in [layers, others] {
        let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        let mut names = HashMap::new();
        for action in batch {
            let (executor, limit) = (executor.clone(), limit.clone());
            let reported = (action.resource.clone(), action.label(), action.flow.call(), action.hotswap.is_some());
            let task = tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let started = since.unwrap_or_else(Instant::now);
                (executor.run(&action).await, started.elapsed())
            });
            names.insert(task.id(), reported);
        }
        while let Some(joined) = tasks.join_next_with_id().await {
            let id = joined.as_ref().map_or_else(tokio::task::JoinError::id, |(id, _)| *id);
            let (resource, label, api, hotswapped) = names.remove(&id).unwrap_or_default();
            executor.task.tick(&resource);
            let (result, elapsed) = match joined {
                Ok((_, (result, elapsed))) => {
                    let action_error =
                        |source| SyncError::Action { resource: resource.clone(), source: Box::new(source) };
                    (result.map_err(action_error), elapsed)
                }
                Err(e) => (Err(SyncError::Task(e)), Duration::ZERO),
            };
            match result {
                Ok(outcome) => {
                    let synced = Synced { resource, label, api, hotswapped, outcome, elapsed };
                    printer.event(&synced.event());
                    applied.synced.push(synced);
                }
                Err(e) => {
                    let (duration_ms, error) = (elapsed.as_millis(), Some(e.to_string()));
                    let failed = Event::Sync {
                        resource: resource.clone(),
                        action: label,
                        api,
                        duration_ms,
                        result: "failed",
                        error,
                    };
                    printer.event(&failed);
                    applied.failed.push((resource, e));
                }
            }
        }
    }
    executor.save_memo(&layout.zip_memo());
    applied
}

/// A fingerprint of a folder from its files' paths, sizes and modification
/// times (no file is read). Artifacts are replaced, never edited in place,
/// so new content always brings new metadata.
fn fingerprint(dir: &Path) -> Option<String> {
    let mut hasher = Sha256::new();
    for rel in package::files(dir).ok()? {
        let meta = std::fs::metadata(dir.join(&rel)).ok()?;
        let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
        hasher.update(format!("\0{rel}\0{}\0{mtime}", meta.len()).as_bytes());
    }
    Some(hex::encode(hasher.finalize()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The bytes of a package.
fn package_bytes(source: &Source) -> Result<Vec<u8>, ActionError> {
    match source {
        Source::Folder(dir) => Ok(package::zip_dir(dir)?),
        Source::Zip(file) => std::fs::read(file).map_err(|source| ActionError::Read { path: file.clone(), source }),
        Source::Inline { file, text } => Ok(package::zip_file(file, text.as_bytes())?),
    }
}

impl Executor {
    fn save_memo(&self, path: &Path) {
        let Ok(memo) = self.memo.lock() else { return };
        let bytes = serde_json::to_vec(&*memo).unwrap_or_default();
        // A lost memo only costs a re-zip next time.
        let _ = crate::files::write_if_changed(path, &bytes);
    }

    /// Whether `sync.toml` holds `hash` for `key`: the action has nothing to send.
    fn stored(&self, key: &str, hash: &str) -> bool {
        self.state.lock().map(|s| s.hash(key) == Some(hash)).unwrap_or(false)
    }

    /// The package of a function or layer and its hash, re-using the last
    /// hash of a folder whose files did not change.
    fn package(&self, source: &Source, key: &str) -> Result<Option<(Vec<u8>, String)>, ActionError> {
        let fingerprint = match source {
            Source::Folder(dir) => fingerprint(dir).map(|f| (dir.to_string_lossy().into_owned(), f)),
            _ => None,
        };
        let known = fingerprint.as_ref().and_then(|(dir, f)| {
            let memo = self.memo.lock().ok()?;
            memo.get(dir).filter(|(known, _)| known == f).map(|(_, hash)| hash.clone())
        });
        if known.is_some_and(|hash| self.stored(key, &hash)) {
            return Ok(None);
        }
        let bytes = package_bytes(source)?;
        let hash = sha256_hex(&bytes);
        if let (Some((dir, f)), Ok(mut memo)) = (fingerprint, self.memo.lock()) {
            memo.insert(dir, (f, hash.clone()));
        }
        Ok(Some((bytes, hash)))
    }

    async fn run(&self, action: &Action) -> Result<Outcome, ActionError> {
        let key = format!("{}:{}", action.flow.kind().class(), action.resource);
        let packaged = match &action.flow {
            Flow::Function { source, .. } | Flow::Layer { source, .. } => self.package(source, &key)?,
            Flow::FunctionConfig { .. } => Some((Vec::new(), String::new())),
            // The hash is the file's, as sam's; what it resolves to is only
            // worked out when it is sent.
            Flow::RestApi { body, .. } | Flow::HttpApi { body, .. } | Flow::StateMachine { body, .. } => {
                let bytes = match body {
                    Body::File(file) => {
                        std::fs::read(file).map_err(|source| ActionError::Read { path: file.clone(), source })?
                    }
                    Body::Inline(text) => text.clone().into_bytes(),
                };
                let hash = sha256_hex(&bytes);
                Some((bytes, hash))
            }
        };
        // A hotswap is planned from a template change: always sent.
        let due = |hash: &String| action.hotswap.is_some() || !self.stored(&key, hash);
        let Some((bytes, hash)) = packaged.filter(|(_, hash)| due(hash)) else {
            return Ok(Outcome::Unchanged);
        };
        // Recorded before sending: a change that reached the service and
        // then failed (its wait, its alias) is owed to CloudFormation too.
        if let Some(values) = &action.hotswap
            && let Ok(file) = self.drift.lock()
        {
            let record = |d: &mut super::drift::Drift| d.record(&self.stack_name, &action.resource, values);
            super::drift::update(&file, record).map_err(ActionError::Drift)?;
        }
        let outcome = match &action.flow {
            Flow::FunctionConfig { name, config, alias, keep_layer } => {
                let client = self.aws.lambda();
                lambda::update_config(&client, name, config, keep_layer.as_deref()).await?;
                if let Some(alias) = alias {
                    lambda::publish_to_alias(&client, name, alias).await?;
                }
                Outcome::Updated
            }
            Flow::Function { name, alias, .. } => self.sync_function(name, bytes, &hash, alias.as_deref()).await?,
            Flow::Layer { arn, runtimes, architectures, description, license, users, .. } => {
                // The name rather than the ARN: Lambda takes both, emulators only the name.
                let name = arn.rsplit(':').next().unwrap_or(arn);
                let layer = NewLayerVersion {
                    name,
                    runtimes,
                    architectures,
                    description: description.as_deref(),
                    license: license.as_deref(),
                };
                self.sync_layer(arn, layer, users.as_deref(), bytes, &hash).await?
            }
            Flow::RestApi { id, stages, .. } => {
                let body = self.resolve_subs(bytes, &action.resource).await?;
                apigateway::put_rest_api(&self.aws.apigateway(), id, body, stages).await?;
                Outcome::Updated
            }
            Flow::HttpApi { id, .. } => {
                let body = self.resolve_subs(bytes, &action.resource).await?;
                let body = String::from_utf8_lossy(&body).into_owned();
                apigateway::reimport_http_api(&self.aws.apigatewayv2(), id, body).await?;
                Outcome::Updated
            }
            Flow::StateMachine { arn, substitutions, .. } => {
                let mut definition = String::from_utf8_lossy(&bytes).into_owned();
                for (name, value) in substitutions {
                    definition = definition.replace(&format!("${{{name}}}"), value);
                }
                sfn::update_definition(&self.aws.sfn(), arn, definition).await?;
                Outcome::Updated
            }
        };
        if action.hotswap.is_none()
            && let Ok(mut state) = self.state.lock()
        {
            state.record(key, hash);
            state.save(&self.state_file).map_err(ActionError::State)?;
        }
        Ok(outcome)
    }

    async fn sync_function(
        &self,
        name: &str,
        zip: Vec<u8>,
        hash: &str,
        alias: Option<&str>,
    ) -> Result<Outcome, ActionError> {
        let client = self.aws.lambda();
        if lambda::code_sha256(&client, name).await?.as_deref() == Some(hash) {
            return Ok(Outcome::Unchanged);
        }
        if zip.len() > INLINE_LIMIT {
            return Err(ActionError::TooLarge(zip.len() / (1024 * 1024)));
        }
        lambda::update_code(&client, name, zip).await?;
        if let Some(alias) = alias {
            lambda::publish_to_alias(&client, name, alias).await?;
        }
        Ok(Outcome::Updated)
    }

    /// A new layer version (unless the latest has this content), every
    /// deployed function using the layer (of `users`, when they are known)
    /// moved to it, the old version deleted.
    async fn sync_layer(
        &self,
        arn: &str,
        layer: NewLayerVersion<'_>,
        users: Option<&[String]>,
        zip: Vec<u8>,
        hash: &str,
    ) -> Result<Outcome, ActionError> {
        let client = self.aws.lambda();
        let latest = lambda::latest_layer_version(&client, layer.name).await?;
        if latest.as_ref().is_some_and(|(_, sha)| sha == hash) {
            return Ok(Outcome::Unchanged);
        }
        let name = layer.name;
        let functions = match users {
            Some(users) => users.to_vec(),
            None => self
                .deployed
                .values()
                .filter(|d| d.resource_type == ResourceKind::LambdaFunction.type_name())
                .map(|d| d.physical_id.clone())
                .collect(),
        };
        self.task.status(format_args!("publishing layer {name}"));
        let new_arn = lambda::publish_layer_version(&client, layer, zip).await?;
        let moved =
            |done, total| self.task.status(format_args!("{name}: {done}/{total} functions moved to the new version"));
        lambda::repoint_users(&client, functions, arn, &new_arn, moved).await?;
        if let Some((old, _)) = latest {
            lambda::delete_layer_version(&client, name, old).await?;
        }
        Ok(Outcome::Updated)
    }

    /// sam sends definition files verbatim; accel resolves `Fn::Sub` (and
    /// `!Sub`) in them as CloudFormation would — pseudo-parameters and the
    /// deployed stack's resources — and sends the result as JSON.
    async fn resolve_subs(&self, bytes: Vec<u8>, resource: &str) -> Result<Vec<u8>, ActionError> {
        let text = String::from_utf8_lossy(&bytes);
        if !text.contains("Fn::Sub") && !text.contains("!Sub") {
            return Ok(bytes);
        }
        let mut document = crate::template::yaml::parse(&text).map_err(|e| ActionError::Definition(e.message))?;
        let account = self
            .account
            .get_or_try_init(|| async {
                let identity = self.aws.sts().get_caller_identity().send().await.call("STS", "GetCallerIdentity")?;
                Ok::<_, CallError>(identity.account().unwrap_or_default().to_string())
            })
            .await?;
        let region = self.aws.region().to_string();
        let partition = crate::template::intrinsics::partition_of(&region);
        let prefix = resource.rsplit_once('/').map_or(String::new(), |(p, _)| format!("{p}/"));
        let lookup = |name: &str| -> Option<String> {
            match name {
                "AWS::Region" => Some(region.clone()),
                "AWS::AccountId" => Some(account.clone()),
                "AWS::Partition" => Some(partition.to_string()),
                "AWS::StackName" => Some(self.stack_name.clone()),
                "AWS::URLSuffix" => Some("amazonaws.com".to_string()),
                _ => {
                    let (id, attribute) = name.split_once('.').map_or((name, None), |(i, a)| (i, Some(a)));
                    let d = self.deployed.get(&format!("{prefix}{id}"))?;
                    match attribute {
                        None => Some(d.physical_id.clone()),
                        Some("Arn") => d.arn(partition, &region, account),
                        _ => None,
                    }
                }
            }
        };
        let mut unresolved = None;
        substitute_all(&mut document, &lookup, &mut unresolved);
        if let Some(text) = unresolved {
            return Err(ActionError::Unresolved(text));
        }
        serde_json::to_vec(&document).map_err(|e| ActionError::Definition(e.to_string()))
    }
}

/// Replaces every `{"Fn::Sub": "…"}` in `value` by its text; the first
/// string that cannot be resolved is left in `unresolved`.
fn substitute_all(value: &mut Value, lookup: &dyn Fn(&str) -> Option<String>, unresolved: &mut Option<String>) {
    if let Some(("Fn::Sub", Value::String(text))) = crate::template::intrinsics::single_entry(value) {
        match crate::template::intrinsics::substitute(text, lookup) {
            Some(done) => *value = Value::String(done),
            None => {
                unresolved.get_or_insert_with(|| text.clone());
            }
        }
        return;
    }
    match value {
        Value::Object(map) => map.values_mut().for_each(|v| substitute_all(v, lookup, unresolved)),
        Value::Array(items) => items.iter_mut().for_each(|v| substitute_all(v, lookup, unresolved)),
        _ => {}
    }
}
