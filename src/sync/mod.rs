//! `accel sync`. For now the code path (`--code`) for zip functions: build
//! with the cache, then push each changed function straight through
//! `UpdateFunctionCode`. Infra sync, layers, APIs, state machines and watch
//! mode follow.

pub mod code;
pub mod prompt;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aws::Aws;
use crate::build::{self, BuildError, BuildOptions, Progress, UnitReport};
use crate::template::resources::PackageType;
use crate::template::{CodeLocation, Function, Stack};

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The stack is not deployed.
    #[error("Invalid --stack-name parameter. Stack with id '{0}' does not exist")]
    NoStack(String),
    /// A resource of the template is not in the deployed stack.
    #[error("Cannot find resource {0} in remote. Try sam sync without --code or sam deploy.")]
    NotDeployed(String),
    /// An AWS call failed.
    #[error("{0}")]
    Aws(String),
    /// Syncing one function failed.
    #[error("{function}: {message}")]
    Function {
        /// The function's physical name.
        function: String,
        /// What went wrong.
        message: String,
    },
    /// Zipping an artifact failed.
    #[error("{0}")]
    Package(String),
    /// The build before the sync failed.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// What `--code` should sync.
#[derive(Debug, Clone, Default)]
pub struct CodeSyncRequest {
    /// Stack to sync.
    pub stack_name: String,
    /// `--resource-id`: full paths or logical ids.
    pub resource_ids: Vec<String>,
    /// `--resource`: resource types.
    pub resource_types: Vec<String>,
}

/// One synced (or skipped) resource.
#[derive(Debug, Clone)]
pub struct Synced {
    /// Full path of the resource.
    pub resource: String,
    /// What happened.
    pub outcome: code::Outcome,
    /// Wall time of its sync.
    pub elapsed: Duration,
}

impl std::fmt::Display for Synced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.outcome {
            code::Outcome::Updated => "code  synced",
            code::Outcome::Unchanged => "code  unchanged, skipped",
        };
        write!(f, "{:<32} {what} in {} ms", self.resource, self.elapsed.as_millis())
    }
}

/// Builds quietly: sync reports per resource, not per build unit.
struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: usize) {}
    fn built(&self, _: &str) {}
    fn done(&self, _: &UnitReport) {}
}

/// `accel sync --code`: builds (cached) and pushes the code of the selected
/// zip functions whose deployed code differs. Resources it cannot sync are
/// named once through `note`.
pub async fn code_sync(
    aws: &Aws,
    stack: &Stack,
    cwd: &std::path::Path,
    request: &CodeSyncRequest,
    note: impl Fn(&str),
    on_synced: impl Fn(&Synced),
) -> Result<Vec<Synced>, SyncError> {
    let ids = code::physical_ids(&aws.cloudformation(), &request.stack_name).await?;
    let selected = |full_path: &str, logical: &str, kind: &str| {
        (request.resource_ids.is_empty() && request.resource_types.is_empty())
            || request.resource_ids.iter().any(|id| id == full_path || id == logical)
            || request.resource_types.iter().any(|t| t == kind)
    };
    let mut functions = Vec::new();
    for (s, r) in stack.all_resources() {
        if !selected(&r.full_path, &r.logical_id, &r.resource_type) || r.implicit {
            continue;
        }
        match Function::of(s, r) {
            Some(f) if f.package_type == PackageType::Zip && matches!(f.code, CodeLocation::Local { .. }) => {
                functions.push((r.full_path.clone(), s.stack_path.clone(), r.logical_id.clone()));
            }
            Some(_) => note(&format!("{}: no local code to sync (inline, pre-zipped, S3 or image)", r.full_path)),
            None if is_code_syncable_type(&r.resource_type) => {
                note(&format!("{}: accel sync --code does not sync {} yet", r.full_path, r.resource_type))
            }
            None => {}
        }
    }
    let options = build_options(cwd);
    build::build(stack, cwd, &options, &Quiet).await?;

    let lambda = aws.lambda();
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for (full_path, stack_path, logical_id) in functions {
        let physical = ids.get(&full_path).cloned().ok_or_else(|| SyncError::NotDeployed(full_path.clone()))?;
        let artifact: PathBuf = options.build_dir.join(stack_path).join(logical_id);
        let (lambda, limit) = (lambda.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let started = Instant::now();
            let outcome = code::sync_function(&lambda, &physical, &artifact).await;
            outcome.map(|outcome| Synced { resource: full_path, outcome, elapsed: started.elapsed() })
        });
    }
    let mut synced = Vec::new();
    let mut first_error = None;
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
    match first_error {
        Some(e) => Err(e),
        None => Ok(synced),
    }
}

fn is_code_syncable_type(resource_type: &str) -> bool {
    crate::cli::args::CODE_SYNC_TYPES.contains(&resource_type)
}

/// sam's sync builds with the cache into `.aws-sam/build` (without the
/// auto dependency layer, which accel does not make yet).
fn build_options(cwd: &std::path::Path) -> BuildOptions {
    BuildOptions {
        build_dir: cwd.join(".aws-sam/build"),
        cache_dir: cwd.join(".aws-sam/cache"),
        deps_dir: cwd.join(".aws-sam/deps"),
        cached: true,
        selection: Default::default(),
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
    }
}
