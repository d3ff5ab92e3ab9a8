//! `accel sync`: configuration through CloudFormation ([`infra`]), code
//! straight through the service APIs — planned as plain data ([`plan`]),
//! then run ([`apply`]) — with sam's safety prompt ([`prompt`]) and
//! `sync.toml` ([`state`]).

pub(crate) mod apply;
pub(crate) mod compare;
pub(crate) mod drift;
pub(crate) mod hotswap;
pub(crate) mod infra;
pub(crate) mod plan;
pub(crate) mod preview;
pub(crate) mod prompt;
pub(crate) mod state;

use std::sync::Arc;
use std::time::Instant;

use apply::Applied;

use crate::aws::Aws;
use crate::aws::cloudformation::DeployedStack;
use crate::aws::error::CallError;
use crate::builder::remote::RemoteCache;
use crate::builder::{self, BuildError, BuildOptions, adl};
use crate::deploy::DeployError;
use crate::layout::ProjectLayout;
use crate::package::PackageError;
use crate::printer::Printer;
use crate::template::{Resource, Stack};

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    /// The stack is not deployed.
    #[error("Invalid --stack-name parameter. Stack with id '{0}' does not exist")]
    NoStack(String),
    /// A resource of the template is not in the deployed stack.
    #[error("Cannot find resource {0} in remote. Try sam sync without --code or sam deploy.")]
    NotDeployed(String),
    /// Reading the stack failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Syncing one resource failed.
    #[error("{resource}: {source}")]
    Action {
        /// Full path of the resource.
        resource: String,
        /// What went wrong.
        #[source]
        source: Box<apply::ActionError>,
    },
    /// A sync task panicked or was cancelled.
    #[error("a sync task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Packaging or uploading failed.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// `sync.toml` could not be written.
    #[error("cannot write .aws-sam/sync.toml: {0}")]
    State(std::io::Error),
    /// The build before the sync failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The CloudFormation deploy failed.
    #[error(transparent)]
    Deploy(#[from] DeployError),
}

impl SyncError {
    /// The failed AWS call behind this error, if one is.
    fn call(&self) -> Option<&CallError> {
        use crate::aws::lambda::LambdaError;
        match self {
            SyncError::Call(e) => Some(e),
            SyncError::Action { source, .. } => match source.as_ref() {
                apply::ActionError::Call(e) | apply::ActionError::Lambda(LambdaError::Call(e)) => Some(e),
                apply::ActionError::Package(PackageError::S3 { source, .. }) => Some(source),
                _ => None,
            },
            SyncError::Package(PackageError::S3 { source, .. }) => Some(source),
            SyncError::Deploy(DeployError::Call(e) | DeployError::Rejected { source: e, .. }) => Some(e),
            _ => None,
        }
    }

    /// Whether trying again later may succeed with nothing changed: the
    /// network or the endpoint was down, or AWS asked to slow down.
    pub(crate) fn is_transient(&self) -> bool {
        self.call().is_some_and(|e| e.is_unreachable() || e.is_throttling())
    }

    /// The resources whose build failed, when that is what went wrong.
    pub(crate) fn failed_build(&self) -> Option<Vec<String>> {
        match self {
            SyncError::Build(BuildError::Workflow { resource, .. }) => {
                Some(resource.split(", ").map(str::to_string).collect())
            }
            _ => None,
        }
    }
}

/// What `--code` should sync.
#[derive(Debug, Clone, Default)]
pub(crate) struct CodeSyncRequest {
    /// `--resource-id`: full paths or logical ids.
    pub(crate) resource_ids: Vec<String>,
    /// `--resource`: resource types.
    pub(crate) resource_types: Vec<String>,
}

impl CodeSyncRequest {
    /// Whether the flags pick `resource`. Inline code lives in the template:
    /// a plain `--code` cannot tell it from what CloudFormation deployed (the
    /// zips differ), so it goes only when named, or through `accel sync`'s
    /// template comparison.
    pub(crate) fn selects(&self, resource: &Resource) -> bool {
        let everything = self.resource_ids.is_empty() && self.resource_types.is_empty();
        let inline =
            resource.properties.get("InlineCode").is_some() || resource.properties.pointer("/Code/ZipFile").is_some();
        everything && !inline
            || self.resource_ids.iter().any(|id| *id == resource.full_path || *id == resource.logical_id)
            || self.resource_types.contains(&resource.resource_type)
    }
}

/// The deployed stack, or [`SyncError::NoStack`].
pub(crate) async fn deployed(aws: &Aws, stack_name: &str) -> Result<DeployedStack, SyncError> {
    crate::aws::cloudformation::deployed_stack(&aws.cloudformation(), stack_name)
        .await?
        .ok_or_else(|| SyncError::NoStack(stack_name.to_string()))
}

/// What every sync works with: the account, the project, the stack and
/// where to report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SyncEnv<'a> {
    /// AWS clients.
    pub(crate) aws: &'a Aws,
    /// The project's `.aws-sam` paths.
    pub(crate) layout: &'a ProjectLayout,
    /// The stack synced.
    pub(crate) stack_name: &'a str,
    /// Output.
    pub(crate) printer: &'a Printer,
    /// `--remote-cache`: build entries shared through S3.
    pub(crate) remote: Option<&'a Arc<RemoteCache>>,
}

/// The deployed stack's resources and, with `describe`, its id and
/// parameters (what a hotswap resolves values from), or [`SyncError::NoStack`].
pub(crate) async fn stack_facts(aws: &Aws, stack_name: &str, describe: bool) -> Result<hotswap::StackFacts, SyncError> {
    let cfn = aws.cloudformation();
    let mut facts = hotswap::StackFacts::default();
    if describe {
        let stack = crate::aws::cloudformation::describe(&cfn, stack_name).await?;
        let stack = stack.ok_or_else(|| SyncError::NoStack(stack_name.to_string()))?;
        facts.stack_id = stack.stack_id().unwrap_or_default().to_string();
        facts.parameters = stack
            .parameters()
            .iter()
            // An SSM parameter's value is its `ResolvedValue`, not the name.
            .filter_map(|p| {
                Some((p.parameter_key()?.to_string(), p.resolved_value().or(p.parameter_value())?.to_string()))
            })
            .collect();
    }
    facts.deployed = deployed(aws, stack_name).await?;
    Ok(facts)
}

/// How a code sync runs besides what it selects.
#[derive(Debug, Clone, Default)]
pub(crate) struct CodeSync<'a> {
    /// Resources left out of the build (their builds fail).
    pub(crate) exclude: &'a [String],
    /// Updates are timed from here when given (watch: the save).
    pub(crate) since: Option<Instant>,
    /// Configuration hotswaps sent with the code.
    pub(crate) config: Vec<plan::Action>,
}

/// Builds (cached, leaving out `request.exclude`) and code-syncs the
/// resources `selected` picks against the `deployed` stack (watch mode
/// keeps it between saves), with `request.config`'s hotswaps. Nothing is
/// built when nothing is selected. An error means nothing was synced;
/// failed actions are in the result.
pub(crate) async fn code_sync(
    env: SyncEnv<'_>,
    stack: &Stack,
    deployed: DeployedStack,
    selected: impl Fn(&Resource) -> bool,
    request: CodeSync<'_>,
) -> Result<Applied, SyncError> {
    let CodeSync { exclude, since, config } = request;
    let mut plan =
        code_plan(env, stack, &deployed, |r| selected(r) && !exclude.contains(&r.full_path), exclude).await?;
    plan.actions.extend(config);
    Ok(apply::apply(env, deployed, plan, since).await)
}

/// Builds (cached, leaving out `exclude`) and plans the code sync of what
/// `selected` picks; builds nothing when nothing is selected.
pub(crate) async fn code_plan(
    env: SyncEnv<'_>,
    stack: &Stack,
    deployed: &DeployedStack,
    selected: impl Fn(&Resource) -> bool,
    exclude: &[String],
) -> Result<plan::SyncPlan, SyncError> {
    let SyncEnv { layout, stack_name, remote, .. } = env;
    if !stack.all_resources().any(|(_, r)| selected(r)) {
        return Ok(plan::SyncPlan::default());
    }
    // Code goes where the deployed stack expects it: apart from its
    // dependencies only when the stack has the dependency layers.
    // Nested stacks have their own dependency layer stacks: any of them counts.
    let nested = format!("/{}", adl::NESTED_STACK);
    let adl = deployed.keys().any(|k| k == adl::NESTED_STACK || k.ends_with(&nested)).then_some(stack_name);
    let mut options = build_options(layout, adl, remote);
    options.selection.exclude = exclude.to_vec();
    // A save builds what it touched; the other artifacts stay as they are.
    let picked: Vec<String> =
        stack.all_resources().filter(|(_, r)| selected(r)).map(|(_, r)| r.full_path.clone()).collect();
    if picked.len() < stack.all_resources().count() {
        options.selection.only = Some(picked);
    }
    let report = builder::build(stack, layout.root(), &options, env.printer).await?;
    plan::plan(stack, deployed, &report.artifacts, selected)
}

/// sam's sync builds with the cache into `.aws-sam/auto-dependency-layer`
/// with the dependency layer (for stack `dependency_layer`), else into
/// `.aws-sam/build`; accel's also with the remote cache, when there is one.
pub(crate) fn build_options(
    layout: &ProjectLayout,
    dependency_layer: Option<&str>,
    remote: Option<&Arc<RemoteCache>>,
) -> BuildOptions {
    let build_dir = match dependency_layer {
        Some(_) => layout.adl_build_dir(),
        None => layout.root().join(crate::layout::DEFAULT_BUILD_DIR),
    };
    let mut options = BuildOptions::new(layout, build_dir, true, dependency_layer.map(str::to_string));
    options.remote = remote.cloned();
    options.progress = builder::Progress::Work;
    options
}
