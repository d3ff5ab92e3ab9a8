//! `accel sync`: configuration through CloudFormation ([`infra`]), code
//! straight through the service APIs ([`flows`]), with sam's safety prompt
//! ([`prompt`]) and `sync.toml` ([`state`]).

pub mod compare;
pub mod flows;
pub mod infra;
pub mod prompt;
pub mod state;

use std::path::Path;
use std::sync::Arc;

use crate::aws::Aws;
use crate::build::{self, BuildError, BuildOptions, Progress, UnitReport};
use crate::deploy::DeployError;
use crate::template::Stack;
use flows::{Runner, Synced};

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
    /// Syncing one resource failed.
    #[error("{resource}: {message}")]
    Resource {
        /// Full path of the resource.
        resource: String,
        /// What went wrong.
        message: String,
    },
    /// Packaging or uploading failed.
    #[error("{0}")]
    Package(String),
    /// `sync.toml` could not be written.
    #[error("cannot write .aws-sam/sync.toml: {0}")]
    State(String),
    /// The build before the sync failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The CloudFormation deploy failed.
    #[error(transparent)]
    Deploy(#[from] DeployError),
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

/// Where the user sees a sync happen.
pub trait Reporter: Sync {
    /// A progress line.
    fn note(&self, line: &str);
    /// A stack event line.
    fn event(&self, line: &str);
    /// A finished code sync.
    fn synced(&self, synced: &Synced);
}

/// Builds quietly: sync reports per resource, not per build unit.
pub(crate) struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: usize) {}
    fn built(&self, _: &str) {}
    fn done(&self, _: &UnitReport) {}
}

/// `accel sync --code`: builds (cached) and pushes the selected resources
/// whose deployed content differs. Resources it cannot sync are named once
/// through `note`.
pub async fn code_sync(
    aws: &Aws,
    stack: &Stack,
    cwd: &Path,
    request: &CodeSyncRequest,
    reporter: &dyn Reporter,
) -> Result<Vec<Synced>, SyncError> {
    let deployed = flows::deployed_resources(&aws.cloudformation(), &request.stack_name).await?;
    let everything = request.resource_ids.is_empty() && request.resource_types.is_empty();
    // Inline code lives in the template: a plain `--code` cannot tell it from
    // what CloudFormation deployed (the zips differ), so it goes only when
    // named, or through `accel sync`'s template comparison.
    let inline = |r: &crate::template::Resource| {
        r.properties.get("InlineCode").is_some() || r.properties.pointer("/Code/ZipFile").is_some()
    };
    let selected = |r: &crate::template::Resource| {
        everything && !inline(r)
            || request.resource_ids.iter().any(|id| *id == r.full_path || *id == r.logical_id)
            || request.resource_types.contains(&r.resource_type)
    };
    code_sync_selected(aws, stack, cwd, &request.stack_name, deployed, selected, reporter).await
}

/// Builds (cached) and code-syncs the resources `selected` picks, against
/// an already read `deployed` stack (watch mode keeps it between saves).
pub async fn code_sync_selected(
    aws: &Aws,
    stack: &Stack,
    cwd: &Path,
    stack_name: &str,
    deployed: flows::Deployed,
    selected: impl Fn(&crate::template::Resource) -> bool,
    reporter: &dyn Reporter,
) -> Result<Vec<Synced>, SyncError> {
    // Code goes where the deployed stack expects it: apart from its
    // dependencies only when the stack has the dependency layers.
    let adl = deployed.contains_key(build::adl::NESTED_STACK).then_some(stack_name);
    let options = build_options(cwd, adl);
    build::build(stack, cwd, &options, &Quiet).await?;
    let (planned, notes) = flows::plan(stack, &deployed, &options.build_dir, selected)?;
    for line in notes {
        reporter.note(&line);
    }
    let runner = Arc::new(Runner::new(aws, stack_name, deployed, cwd));
    flows::run(runner, planned, &|s| reporter.synced(s)).await
}

/// sam's sync builds with the cache into `.aws-sam/auto-dependency-layer`
/// with the dependency layer (for stack `dependency_layer`), else into
/// `.aws-sam/build`.
pub(crate) fn build_options(cwd: &Path, dependency_layer: Option<&str>) -> BuildOptions {
    let folder = if dependency_layer.is_some() { ".aws-sam/auto-dependency-layer" } else { ".aws-sam/build" };
    BuildOptions {
        build_dir: cwd.join(folder),
        dependency_layer: dependency_layer.map(str::to_string),
        cache_dir: cwd.join(".aws-sam/cache"),
        deps_dir: cwd.join(".aws-sam/deps"),
        cached: true,
        selection: Default::default(),
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
    }
}
