//! Code sync (spec §2.7–2.8): one flow per resource, straight through the
//! service APIs. [`plan`] turns the template and the deployed stack into
//! flows; [`run`] executes them concurrently, layers first.
//!
//! Each flow computes a local hash first and skips without any call when
//! `sync.toml` holds the same one; otherwise it compares with the deployed
//! content where the service tells it (functions, layers) and updates only
//! on a difference.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::StackResourceSummary;
use aws_sdk_lambda::types::{Architecture, LastUpdateStatus, Runtime};
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::SyncError;
use super::state::SyncState;
use crate::aws::{Aws, call_error};
use crate::build::adl;
use crate::package;
use crate::template::resources::{Definition, HttpApi, Layer, PackageType, RestApi, StateMachine};
use crate::template::{CodeLocation, Function, Resource, Stack};

/// Lambda takes a zip inline up to this size; sam switches to S3 above it.
const INLINE_LIMIT: usize = 50 * 1024 * 1024;

/// How long a function update may stay `InProgress`.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(300);

/// Flows running at once.
const CONCURRENCY: usize = 8;

/// A resource of the deployed stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedResource {
    /// Physical id (function name, API id, ARN …).
    pub physical_id: String,
    /// CloudFormation type.
    pub resource_type: String,
}

impl DeployedResource {
    /// Its ARN (`Fn::GetAtt X.Arn`): the physical id when it is one, built
    /// for a function from its name, `None` for other types.
    fn arn(&self, partition: &str, region: &str, account: &str) -> Option<String> {
        if self.physical_id.starts_with("arn:") {
            Some(self.physical_id.clone())
        } else if self.resource_type == "AWS::Lambda::Function" {
            Some(format!("arn:{partition}:lambda:{region}:{account}:function:{}", self.physical_id))
        } else {
            None
        }
    }
}

/// The deployed resources by full path (`Child/Logical`), nested stacks included.
pub type Deployed = HashMap<String, DeployedResource>;

/// Reads the deployed resources of `stack_name` and its nested stacks.
pub async fn deployed_resources(cfn: &aws_sdk_cloudformation::Client, stack_name: &str) -> Result<Deployed, SyncError> {
    let mut found = HashMap::new();
    let mut pending = vec![(String::new(), stack_name.to_string())];
    while let Some((prefix, stack)) = pending.pop() {
        let pages: Result<Vec<StackResourceSummary>, _> = cfn
            .list_stack_resources()
            .stack_name(&stack)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect();
        let resources = pages.map_err(|e| {
            let text = call_error("ListStackResources", &e);
            if text.contains("does not exist") { SyncError::NoStack(stack.clone()) } else { SyncError::Aws(text) }
        })?;
        for r in resources {
            let (Some(logical), Some(physical)) = (r.logical_resource_id(), r.physical_resource_id()) else { continue };
            let path = if prefix.is_empty() { logical.to_string() } else { format!("{prefix}/{logical}") };
            let resource_type = r.resource_type().unwrap_or_default().to_string();
            if resource_type == "AWS::CloudFormation::Stack" {
                pending.push((path.clone(), physical.to_string()));
            }
            found.insert(path, DeployedResource { physical_id: physical.to_string(), resource_type });
        }
    }
    Ok(found)
}

/// What a flow sends.
#[derive(Debug, Clone)]
pub enum Flow {
    /// A zip function's code.
    Function {
        /// Physical name.
        name: String,
        /// The package.
        source: Source,
        /// `AutoPublishAlias`.
        alias: Option<String>,
    },
    /// A layer: a new version, re-pointed users, the old version deleted.
    Layer {
        /// Layer ARN without version.
        arn: String,
        /// The package.
        source: Source,
        /// What the new version keeps of the template.
        runtimes: Vec<String>,
        /// Compatible architectures.
        architectures: Vec<String>,
        /// Description.
        description: Option<String>,
        /// Licence.
        license: Option<String>,
    },
    /// A REST API definition: PutRestApi, then a deployment on its stages.
    RestApi {
        /// API id.
        id: String,
        /// The definition file.
        file: PathBuf,
        /// Stages the template names.
        stages: Vec<String>,
    },
    /// An HTTP API definition: ReimportApi.
    HttpApi {
        /// API id.
        id: String,
        /// The definition file.
        file: PathBuf,
    },
    /// A state machine definition: UpdateStateMachine.
    StateMachine {
        /// State machine ARN.
        arn: String,
        /// The definition file.
        file: PathBuf,
        /// `${Name}` → value, from `DefinitionSubstitutions`.
        substitutions: Vec<(String, String)>,
    },
}

impl Flow {
    /// sam's flow class name, the first half of the `sync.toml` key.
    fn class(&self) -> &'static str {
        match self {
            Flow::Function { .. } => "ZipFunctionSyncFlow",
            Flow::Layer { .. } => "LayerSyncFlow",
            Flow::RestApi { .. } => "RestApiSyncFlow",
            Flow::HttpApi { .. } => "HttpApiSyncFlow",
            Flow::StateMachine { .. } => "StepFunctionsSyncFlow",
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Flow::Function { .. } => "code",
            Flow::Layer { .. } => "layer",
            Flow::RestApi { .. } | Flow::HttpApi { .. } => "api",
            Flow::StateMachine { .. } => "definition",
        }
    }
}

/// Where a package comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A folder to zip (a built artifact, or the source itself).
    Folder(PathBuf),
    /// A `.zip` file sent as is.
    Zip(PathBuf),
    /// Inline source, zipped as `<file>`.
    Inline {
        /// File name in the zip (`index.py`, `index.js`).
        file: String,
        /// The source.
        text: String,
    },
}

impl Source {
    fn bytes(&self) -> Result<Vec<u8>, SyncError> {
        match self {
            Source::Folder(dir) => package::zip_dir(dir).map_err(|e| SyncError::Package(e.to_string())),
            Source::Zip(file) => {
                std::fs::read(file).map_err(|e| SyncError::Package(format!("{}: {e}", file.display())))
            }
            Source::Inline { file, text } => {
                use std::io::Write;
                let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                let options = zip::write::SimpleFileOptions::default()
                    .last_modified_time(zip::DateTime::default())
                    .unix_permissions(0o644);
                let failed = |e: String| SyncError::Package(format!("inline code: {e}"));
                zip.start_file(file.as_str(), options).map_err(|e| failed(e.to_string()))?;
                zip.write_all(text.as_bytes()).map_err(|e| failed(e.to_string()))?;
                Ok(zip.finish().map_err(|e| failed(e.to_string()))?.into_inner())
            }
        }
    }
}

/// One planned flow.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Full path of the resource.
    pub resource: String,
    /// What to do.
    pub flow: Flow,
}

/// Turns the selected resources into flows. Resources that cannot be code
/// synced come back as notes, each named once with the reason.
pub fn plan(
    root: &Stack,
    deployed: &Deployed,
    build_dir: &std::path::Path,
    selected: impl Fn(&Resource) -> bool,
) -> Result<(Vec<Planned>, Vec<String>), SyncError> {
    let mut flows = Vec::new();
    let mut notes = Vec::new();
    for (stack, resource) in root.all_resources() {
        if !selected(resource) || !crate::cli::args::CODE_SYNC_TYPES.contains(&resource.resource_type.as_str()) {
            continue;
        }
        let path = &resource.full_path;
        let built = build_dir.join(&stack.stack_path).join(&resource.logical_id);
        let physical = |path: &str| {
            deployed.get(path).map(|d| d.physical_id.clone()).ok_or_else(|| SyncError::NotDeployed(path.to_string()))
        };
        let definition_file = |definition: &Definition, what: &str| match definition {
            Definition::Uri(location) => match location.local_path() {
                Some(file) => Ok(file.clone()),
                None => Err(format!("{path}: its {what} is not a local file")),
            },
            _ => Err(format!("Resource {path} does not have {what} specified. Skipping the sync.")),
        };
        if let Some(f) = Function::of(stack, resource) {
            let source = match (&f.package_type, &f.code) {
                (PackageType::Image, _) => {
                    notes.push(format!("{path}: image functions need Docker, which accel does not use"));
                    continue;
                }
                (_, CodeLocation::Local { path: dir, .. }) => {
                    Source::Folder(if built.is_dir() { built.clone() } else { dir.clone() })
                }
                (_, CodeLocation::PreZipped(file)) => Source::Zip(file.clone()),
                (_, CodeLocation::Inline(text)) => {
                    let module = f.handler.as_deref().and_then(|h| h.rsplit_once('.')).map_or("index", |(m, _)| m);
                    let ext = if f.runtime.as_deref().is_some_and(|r| r.starts_with("python")) { "py" } else { "js" };
                    Source::Inline { file: format!("{module}.{ext}"), text: text.clone() }
                }
                _ => {
                    notes.push(format!("{path}: its code is in S3, not local"));
                    continue;
                }
            };
            // With the auto dependency layer, the dependencies travel apart.
            let layer_id = adl::layer_logical_id(path);
            let layer_folder = build_dir.join(&stack.stack_path).join(&layer_id);
            if layer_folder.is_dir() {
                let prefix = if stack.stack_path.is_empty() { String::new() } else { format!("{}/", stack.stack_path) };
                let layer_path = format!("{prefix}{}/{layer_id}", adl::NESTED_STACK);
                flows.push(Planned {
                    resource: layer_path.clone(),
                    flow: Flow::Layer {
                        arn: layer_arn(deployed, &layer_path, false)?,
                        source: Source::Folder(layer_folder),
                        runtimes: f.runtime.clone().into_iter().collect(),
                        architectures: Vec::new(),
                        description: Some(format!("Auto created layer for dependencies of function {path}")),
                        license: None,
                    },
                });
            }
            flows.push(Planned {
                resource: path.clone(),
                flow: Flow::Function { name: physical(path)?, source, alias: f.auto_publish_alias.clone() },
            });
        } else if let Some(layer) = Layer::of(stack, resource) {
            let source = match &layer.content {
                CodeLocation::Local { path: dir, .. } => {
                    Source::Folder(if built.is_dir() { built.clone() } else { dir.clone() })
                }
                CodeLocation::PreZipped(file) => Source::Zip(file.clone()),
                _ => {
                    notes.push(format!("{path}: its content is not local"));
                    continue;
                }
            };
            flows.push(Planned {
                resource: path.clone(),
                flow: Flow::Layer {
                    arn: layer_arn(deployed, path, resource.resource_type == "AWS::Lambda::LayerVersion")?,
                    source,
                    runtimes: layer.compatible_runtimes.clone(),
                    architectures: layer.compatible_architectures.clone(),
                    description: layer.description.clone(),
                    license: layer.license_info.clone(),
                },
            });
        } else if let Some(api) = RestApi::of(stack, resource) {
            match definition_file(&api.definition, "DefinitionUri") {
                Ok(file) => flows.push(Planned {
                    resource: path.clone(),
                    flow: Flow::RestApi { id: physical(path)?, file, stages: api.stage_name.into_iter().collect() },
                }),
                Err(note) => notes.push(note),
            }
        } else if let Some(api) = HttpApi::of(stack, resource) {
            match definition_file(&api.definition, "DefinitionUri") {
                Ok(file) => {
                    flows.push(Planned { resource: path.clone(), flow: Flow::HttpApi { id: physical(path)?, file } })
                }
                Err(note) => notes.push(note),
            }
        } else if let Some(machine) = StateMachine::of(stack, resource) {
            let file = match definition_file(&machine.definition, "DefinitionUri") {
                Ok(file) => file,
                Err(note) => {
                    notes.push(note);
                    continue;
                }
            };
            let arn = physical(path)?;
            // sam refuses DefinitionSubstitutions; accel fills them in from
            // the deployed stack, as CloudFormation would.
            let substitutions = match &machine.substitutions {
                Some(Value::Object(map)) => {
                    let prefix = path.strip_suffix(resource.logical_id.as_str()).unwrap_or_default();
                    match substitutions(map, prefix, &arn, deployed) {
                        Ok(pairs) => pairs,
                        Err(reason) => {
                            notes.push(format!("{path}: {reason}; run accel sync without --code"));
                            continue;
                        }
                    }
                }
                _ => Vec::new(),
            };
            flows.push(Planned { resource: path.clone(), flow: Flow::StateMachine { arn, file, substitutions } });
        }
    }
    Ok((flows, notes))
}

/// `DefinitionSubstitutions` values from the deployed stack: literals, `Ref`
/// (a physical id) and `Fn::GetAtt [X, Arn]` (an ARN, built for functions
/// from the state machine's own region and account).
fn substitutions(
    map: &serde_json::Map<String, Value>,
    prefix: &str,
    machine_arn: &str,
    deployed: &Deployed,
) -> Result<Vec<(String, String)>, String> {
    let target = |id: &str| {
        deployed.get(&format!("{prefix}{id}")).ok_or_else(|| format!("DefinitionSubstitutions: {id} is not deployed"))
    };
    let mut parts = machine_arn.split(':');
    let (partition, region, account) =
        (parts.nth(1).unwrap_or("aws"), parts.nth(1).unwrap_or(""), parts.next().unwrap_or(""));
    map.iter()
        .map(|(name, value)| {
            let resolved = match value {
                Value::String(text) => text.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => match crate::template::intrinsics::single_entry(other) {
                    Some(("Ref", Value::String(id))) => target(id)?.physical_id.clone(),
                    Some(("Fn::GetAtt", Value::Array(args))) if args.get(1).and_then(Value::as_str) == Some("Arn") => {
                        let id = args[0].as_str().unwrap_or_default();
                        let d = target(id)?;
                        d.arn(partition, region, account).ok_or_else(|| {
                            format!("DefinitionSubstitutions: cannot build the ARN of a {}", d.resource_type)
                        })?
                    }
                    _ => return Err(format!("DefinitionSubstitutions: {name} is not a literal, Ref or GetAtt Arn")),
                },
            };
            Ok((name.clone(), resolved))
        })
        .collect()
}

/// The deployed layer's ARN without its version. SAM's translator renames a
/// Serverless layer to `<LogicalId><10 hash characters>`; a raw
/// `AWS::Lambda::LayerVersion` keeps its id.
fn layer_arn(deployed: &Deployed, full_path: &str, raw: bool) -> Result<String, SyncError> {
    let exact = deployed.get(full_path).filter(|_| raw);
    let translated = || {
        deployed.iter().find(|(path, d)| {
            d.resource_type == "AWS::Lambda::LayerVersion"
                && path.strip_prefix(full_path).is_some_and(|rest| {
                    rest.len() == 10 && rest.chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
                })
        })
    };
    let version_arn = match exact {
        Some(d) => &d.physical_id,
        None => &translated().ok_or_else(|| SyncError::NotDeployed(full_path.to_string()))?.1.physical_id,
    };
    Ok(version_arn.rsplit_once(':').map_or(version_arn.as_str(), |(arn, _)| arn).to_string())
}

/// What happened to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The deployed content already matched.
    Unchanged,
    /// New content was deployed.
    Updated,
}

/// One finished flow.
#[derive(Debug, Clone)]
pub struct Synced {
    /// Full path of the resource.
    pub resource: String,
    /// `code`, `layer`, `api`, `definition`.
    pub kind: &'static str,
    /// What happened.
    pub outcome: Outcome,
    /// Wall time.
    pub elapsed: Duration,
}

impl std::fmt::Display for Synced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.outcome {
            Outcome::Updated => "synced",
            Outcome::Unchanged => "unchanged, skipped",
        };
        write!(f, "{:<32} {:<10} {what} in {} ms", self.resource, self.kind, self.elapsed.as_millis())
    }
}

/// Shared by the flows of one run.
pub struct Runner {
    aws: Aws,
    deployed: Deployed,
    /// `sync.toml`, saved after each flow.
    state: Arc<Mutex<SyncState>>,
    /// Folder → (fingerprint, zip hash) (`.aws-sam/accel-zips.json`).
    memo: Mutex<HashMap<String, (String, String)>>,
    cwd: PathBuf,
    stack_name: String,
    /// The account, read once when a definition needs `${AWS::AccountId}`.
    account: tokio::sync::OnceCell<String>,
}

impl Runner {
    /// A runner for stack `stack_name` of the project in `cwd`, reading its `sync.toml`.
    pub fn new(aws: &Aws, stack_name: &str, deployed: Deployed, cwd: &Path) -> Self {
        let memo = std::fs::read(memo_path(cwd)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        Runner {
            aws: aws.clone(),
            deployed,
            state: Arc::new(Mutex::new(SyncState::load(cwd))),
            memo: Mutex::new(memo),
            cwd: cwd.to_path_buf(),
            stack_name: stack_name.to_string(),
            account: tokio::sync::OnceCell::new(),
        }
    }

    fn save_memo(&self) {
        let Ok(memo) = self.memo.lock() else { return };
        let bytes = serde_json::to_vec(&*memo).unwrap_or_default();
        let _ = crate::build::write_atomic(&memo_path(&self.cwd), &bytes);
    }
}

fn memo_path(cwd: &Path) -> PathBuf {
    cwd.join(".aws-sam/accel-zips.json")
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

/// Runs `flows`: layers first (their users are re-pointed by the layer
/// flow), then everything else, `CONCURRENCY` at a time. Every flow runs;
/// the first error is returned after all have finished.
pub async fn run(
    runner: Arc<Runner>,
    flows: Vec<Planned>,
    on_synced: &(dyn Fn(&Synced) + Sync),
) -> Result<Vec<Synced>, SyncError> {
    let (layers, others): (Vec<_>, Vec<_>) = flows.into_iter().partition(|p| matches!(p.flow, Flow::Layer { .. }));
    let mut synced = Vec::new();
    let mut first_error = None;
    for batch in [layers, others] {
        let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for planned in batch {
            let (runner, limit) = (runner.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let started = Instant::now();
                let outcome = runner.sync(&planned).await;
                outcome.map(|outcome| Synced {
                    resource: planned.resource.clone(),
                    kind: planned.flow.kind(),
                    outcome,
                    elapsed: started.elapsed(),
                })
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined.map_err(|e| SyncError::Aws(e.to_string())).and_then(|r| r) {
                Ok(s) => {
                    on_synced(&s);
                    synced.push(s);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    runner.save_memo();
    match first_error {
        Some(e) => Err(e),
        None => Ok(synced),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Runner {
    /// Whether `sync.toml` holds `hash` for `key`: the flow has nothing to send.
    fn stored(&self, key: &str, hash: &str) -> bool {
        self.state.lock().map(|s| s.hash(key) == Some(hash)).unwrap_or(false)
    }

    async fn sync(&self, planned: &Planned) -> Result<Outcome, SyncError> {
        let key = format!("{}:{}", planned.flow.class(), planned.resource);
        let fail = |message: String| SyncError::Resource { resource: planned.resource.clone(), message };
        let (bytes, hash) = match &planned.flow {
            Flow::Function { source, .. } | Flow::Layer { source, .. } => {
                // A folder whose files did not change keeps its zip's hash:
                // no need to zip it to learn that nothing is to be sent.
                let fingerprint = match source {
                    Source::Folder(dir) => fingerprint(dir).map(|f| (dir.to_string_lossy().into_owned(), f)),
                    _ => None,
                };
                let known = fingerprint.as_ref().and_then(|(dir, f)| {
                    let memo = self.memo.lock().ok()?;
                    memo.get(dir).filter(|(known, _)| known == f).map(|(_, hash)| hash.clone())
                });
                if known.is_some_and(|hash| self.stored(&key, &hash)) {
                    return Ok(Outcome::Unchanged);
                }
                let bytes = source.bytes()?;
                let hash = sha256_hex(&bytes);
                if let (Some((dir, f)), Ok(mut memo)) = (fingerprint, self.memo.lock()) {
                    memo.insert(dir, (f, hash.clone()));
                }
                (bytes, hash)
            }
            // The hash is the file's, as sam's; what it resolves to is only
            // worked out when it is sent.
            Flow::RestApi { file, .. } | Flow::HttpApi { file, .. } | Flow::StateMachine { file, .. } => {
                let bytes: Vec<u8> = std::fs::read(file).map_err(|e| fail(format!("{}: {e}", file.display())))?;
                let hash = sha256_hex(&bytes);
                (bytes, hash)
            }
        };
        if self.stored(&key, &hash) {
            return Ok(Outcome::Unchanged);
        }
        let bytes = match &planned.flow {
            Flow::StateMachine { substitutions, .. } if !substitutions.is_empty() => {
                let mut text = String::from_utf8_lossy(&bytes).into_owned();
                for (name, value) in substitutions {
                    text = text.replace(&format!("${{{name}}}"), value);
                }
                text.into_bytes()
            }
            Flow::RestApi { .. } | Flow::HttpApi { .. } => {
                self.resolve_subs(bytes, &planned.resource).await.map_err(fail)?
            }
            _ => bytes,
        };
        let outcome = match &planned.flow {
            Flow::Function { name, alias, .. } => self.sync_function(name, bytes, &hash, alias.as_deref()).await,
            Flow::Layer { arn, runtimes, architectures, description, license, .. } => {
                let layer = NewLayer { arn, runtimes, architectures, description, license };
                self.sync_layer(&layer, bytes, &hash).await
            }
            Flow::RestApi { id, stages, .. } => self.sync_rest_api(id, bytes, stages).await,
            Flow::HttpApi { id, .. } => {
                let body = String::from_utf8_lossy(&bytes).into_owned();
                let api = self.aws.apigatewayv2();
                let call = api.reimport_api().api_id(id).body(body).send().await;
                call.map(|_| Outcome::Updated).map_err(|e| call_error("ReimportApi", &e))
            }
            Flow::StateMachine { arn, .. } => {
                let definition = String::from_utf8_lossy(&bytes).into_owned();
                let sfn = self.aws.sfn();
                let call = sfn.update_state_machine().state_machine_arn(arn).definition(definition).send().await;
                call.map(|_| Outcome::Updated).map_err(|e| call_error("UpdateStateMachine", &e))
            }
        }
        .map_err(|e: String| fail(e))?;
        if let Ok(mut state) = self.state.lock() {
            state.record(key, hash);
            state.save(&self.cwd).map_err(|e| fail(format!("cannot write sync.toml: {e}")))?;
        }
        Ok(outcome)
    }

    /// sam sends definition files verbatim; accel resolves `Fn::Sub` (and
    /// `!Sub`) in them as CloudFormation would — pseudo-parameters and the
    /// deployed stack's resources — and sends the result as JSON.
    async fn resolve_subs(&self, bytes: Vec<u8>, resource: &str) -> Result<Vec<u8>, String> {
        let text = String::from_utf8_lossy(&bytes);
        if !text.contains("Fn::Sub") && !text.contains("!Sub") {
            return Ok(bytes);
        }
        let mut document =
            crate::template::yaml::parse(&text).map_err(|e| format!("definition file: {}", e.message))?;
        let account = self
            .account
            .get_or_try_init(|| async {
                let identity = self.aws.sts().get_caller_identity().send().await;
                let identity = identity.map_err(|e| call_error("GetCallerIdentity", &e))?;
                Ok::<_, String>(identity.account().unwrap_or_default().to_string())
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
            return Err(format!("cannot resolve Fn::Sub \"{text}\" in the definition file from the deployed stack"));
        }
        serde_json::to_vec(&document).map_err(|e| e.to_string())
    }

    async fn sync_function(
        &self,
        name: &str,
        zip: Vec<u8>,
        hash: &str,
        alias: Option<&str>,
    ) -> Result<Outcome, String> {
        let lambda = self.aws.lambda();
        let deployed =
            lambda.get_function().function_name(name).send().await.map_err(|e| call_error("GetFunction", &e))?;
        let deployed_sha = deployed.configuration().and_then(|c| c.code_sha256()).map(base64_to_hex);
        if deployed_sha.as_deref() == Some(hash) {
            return Ok(Outcome::Unchanged);
        }
        if zip.len() > INLINE_LIMIT {
            return Err(format!(
                "the package is {} MiB, above the 50 MiB Lambda takes inline; deploy it with accel sync (without --code)",
                zip.len() / (1024 * 1024)
            ));
        }
        let update = lambda.update_function_code().function_name(name).zip_file(zip.into());
        update.send().await.map_err(|e| call_error("UpdateFunctionCode", &e))?;
        wait_for_update(&lambda, name).await?;
        if let Some(alias) = alias {
            let version = lambda.publish_version().function_name(name).send().await;
            let version = version.map_err(|e| call_error("PublishVersion", &e))?;
            let number = version.version().unwrap_or("$LATEST");
            let update = lambda.update_alias().function_name(name).name(alias).function_version(number);
            update.send().await.map_err(|e| call_error("UpdateAlias", &e))?;
        }
        Ok(Outcome::Updated)
    }

    async fn sync_layer(&self, layer: &NewLayer<'_>, zip: Vec<u8>, hash: &str) -> Result<Outcome, String> {
        let lambda = self.aws.lambda();
        // The name rather than the ARN: Lambda takes both, emulators only the name.
        let name = layer.arn.rsplit(':').next().unwrap_or(layer.arn);
        let versions = lambda.list_layer_versions().layer_name(name).send().await;
        let versions = versions.map_err(|e| call_error("ListLayerVersions", &e))?;
        let latest = versions.layer_versions().first().map(|v| v.version());
        if let Some(latest) = latest {
            let current = lambda.get_layer_version().layer_name(name).version_number(latest).send().await;
            let current = current.map_err(|e| call_error("GetLayerVersion", &e))?;
            if current.content().and_then(|c| c.code_sha256()).map(base64_to_hex).as_deref() == Some(hash) {
                return Ok(Outcome::Unchanged);
            }
        }
        let content = aws_sdk_lambda::types::LayerVersionContentInput::builder().zip_file(zip.into()).build();
        let published = lambda
            .publish_layer_version()
            .layer_name(name)
            .content(content)
            .set_compatible_runtimes(Some(layer.runtimes.iter().map(|r| Runtime::from(r.as_str())).collect()))
            .set_compatible_architectures(Some(
                layer.architectures.iter().map(|a| Architecture::from(a.as_str())).collect(),
            ))
            .set_description(layer.description.clone())
            .set_license_info(layer.license.clone())
            .send()
            .await
            .map_err(|e| call_error("PublishLayerVersion", &e))?;
        let new_arn = published.layer_version_arn().unwrap_or_default().to_string();
        self.repoint_users(layer.arn, &new_arn).await?;
        if let Some(old) = latest {
            let delete = lambda.delete_layer_version().layer_name(name).version_number(old);
            delete.send().await.map_err(|e| call_error("DeleteLayerVersion", &e))?;
        }
        Ok(Outcome::Updated)
    }

    /// Every function of the stack that uses a version of `layer_arn` moves
    /// to `new_arn`, keeping its layer order. The deployed configuration is
    /// the truth here: it covers Globals, parameters and nested stacks alike.
    async fn repoint_users(&self, layer_arn: &str, new_arn: &str) -> Result<(), String> {
        let lambda = self.aws.lambda();
        let prefix = format!("{layer_arn}:");
        let functions: Vec<String> = self
            .deployed
            .values()
            .filter(|d| d.resource_type == "AWS::Lambda::Function")
            .map(|d| d.physical_id.clone())
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for name in functions {
            let (lambda, prefix, new_arn) = (lambda.clone(), prefix.clone(), new_arn.to_string());
            tasks.spawn(async move {
                let config = lambda.get_function_configuration().function_name(&name).send().await;
                let config = config.map_err(|e| call_error("GetFunctionConfiguration", &e))?;
                let layers: Vec<String> = config.layers().iter().filter_map(|l| l.arn()).map(str::to_string).collect();
                if !layers.iter().any(|l| l.starts_with(&prefix)) || layers.contains(&new_arn) {
                    return Ok(());
                }
                let layers = layers.into_iter().map(|l| if l.starts_with(&prefix) { new_arn.clone() } else { l });
                let update = lambda.update_function_configuration().function_name(&name);
                update
                    .set_layers(Some(layers.collect()))
                    .send()
                    .await
                    .map_err(|e| call_error("UpdateFunctionConfiguration", &e))?;
                wait_for_update(&lambda, &name).await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.map_err(|e| e.to_string())??;
        }
        Ok(())
    }

    /// PutRestApi, then a deployment on each stage the template names (a
    /// deployment with a stage name moves an existing stage to it), then the
    /// stage's previous deployment is deleted.
    async fn sync_rest_api(&self, id: &str, body: Vec<u8>, stages: &[String]) -> Result<Outcome, String> {
        let api = self.aws.apigateway();
        let put = api.put_rest_api().rest_api_id(id).mode(aws_sdk_apigateway::types::PutMode::Overwrite);
        put.body(body.into()).send().await.map_err(|e| call_error("PutRestApi", &e))?;
        for stage in stages {
            let old = api.get_stage().rest_api_id(id).stage_name(stage).send().await.ok();
            let deployment =
                api.create_deployment().rest_api_id(id).stage_name(stage).description("Created by accel sync");
            let deployment = deployment.send().await.map_err(|e| call_error("CreateDeployment", &e))?;
            // The old deployment may serve another stage; then it stays.
            if let Some(old_id) = old.as_ref().and_then(|o| o.deployment_id()).filter(|o| Some(*o) != deployment.id()) {
                let _ = api.delete_deployment().rest_api_id(id).deployment_id(old_id).send().await;
            }
        }
        Ok(Outcome::Updated)
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

/// What a new layer version keeps of the template.
struct NewLayer<'a> {
    arn: &'a str,
    runtimes: &'a [String],
    architectures: &'a [String],
    description: &'a Option<String>,
    license: &'a Option<String>,
}

fn base64_to_hex(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.decode(text).map(hex::encode).unwrap_or_default()
}

/// Polls until `LastUpdateStatus` leaves `InProgress`; `Failed` is an error.
async fn wait_for_update(lambda: &aws_sdk_lambda::Client, name: &str) -> Result<(), String> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        let config = lambda.get_function_configuration().function_name(name).send().await;
        let config = config.map_err(|e| call_error("GetFunctionConfiguration", &e))?;
        match config.last_update_status() {
            Some(LastUpdateStatus::InProgress) => {}
            Some(LastUpdateStatus::Failed) => {
                let reason = config.last_update_status_reason().unwrap_or("no reason given");
                return Err(format!("the update failed: {reason}"));
            }
            _ => return Ok(()),
        }
        if started.elapsed() > UPDATE_TIMEOUT {
            return Err(format!("the update was still in progress after {} s", UPDATE_TIMEOUT.as_secs()));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_substitutions_from_the_deployed_stack() {
        let mut deployed = Deployed::new();
        let function =
            |id: &str| DeployedResource { physical_id: id.into(), resource_type: "AWS::Lambda::Function".into() };
        deployed.insert("Child/Fn".into(), function("child-Fn-123"));
        deployed.insert(
            "Child/Table".into(),
            DeployedResource { physical_id: "table-1".into(), resource_type: "AWS::DynamoDB::Table".into() },
        );
        let map = serde_json::json!({
            "FnArn": {"Fn::GetAtt": ["Fn", "Arn"]},
            "Table": {"Ref": "Table"},
            "Literal": "x",
        });
        let arn = "arn:aws:states:eu-west-1:111122223333:stateMachine:m";
        let pairs = substitutions(map.as_object().unwrap(), "Child/", arn, &deployed).unwrap();
        assert_eq!(pairs[0].1, "arn:aws:lambda:eu-west-1:111122223333:function:child-Fn-123");
        assert_eq!(pairs[1].1, "table-1");
        assert_eq!(pairs[2].1, "x");
        let bad = serde_json::json!({"X": {"Fn::GetAtt": ["Table", "StreamArn"]}});
        assert!(substitutions(bad.as_object().unwrap(), "Child/", arn, &deployed).is_err());
    }

    #[test]
    fn serverless_layer_found_by_translated_id() {
        let mut deployed = Deployed::new();
        let arn = "arn:aws:lambda:us-east-1:123456789012:layer:libs:3";
        let entry = |physical_id: &str| DeployedResource {
            physical_id: physical_id.into(),
            resource_type: "AWS::Lambda::LayerVersion".into(),
        };
        deployed.insert("Child/Libsa1b2c3d4e5".into(), entry(arn));
        deployed.insert("Child/LibsOther".into(), entry("arn:aws:lambda:us-east-1:123456789012:layer:other:1"));
        assert_eq!(
            layer_arn(&deployed, "Child/Libs", false).unwrap(),
            "arn:aws:lambda:us-east-1:123456789012:layer:libs"
        );
        assert!(layer_arn(&deployed, "Child/Other", false).is_err());
    }
}
