//! Infra sync (spec §2.5–2.6): build (cached), package, and either skip the
//! deploy — when the deployed templates equal the packaged ones apart from
//! code locations, pushing just the changed code — or upload what the
//! bucket lacks and deploy through CloudFormation.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::flows::{self, Runner, Synced};
use super::state::{self, SyncState};
use super::{Reporter, SyncError, compare};
use crate::aws::Aws;
use crate::build;
use crate::deploy::{self, DeployRequest, Deployed, StackOutput};
use crate::package::Uploader;
use crate::package::template::{self as packaging, Artifact, Content, Target};
use crate::template::Stack;
use crate::template::parameters::Overrides;

/// A deploy is forced when the last one is older than this (sam's rule).
const MAX_DAYS_WITHOUT_DEPLOY: f64 = 7.0;

/// A skip is refused when more resources than this need a code sync.
const MAX_CODE_SYNCS_ON_SKIP: usize = 50;

/// Uploads running at once.
const UPLOADS: usize = 8;

/// What `accel sync` (without `--code`) deploys and how.
#[derive(Debug, Clone, Default)]
pub struct InfraRequest {
    /// Stack name.
    pub stack_name: String,
    /// `--s3-bucket`; the managed bucket without it.
    pub bucket: Option<String>,
    /// `--s3-prefix`.
    pub prefix: Option<String>,
    /// `--kms-key-id`.
    pub kms_key_id: Option<String>,
    /// `--metadata`.
    pub metadata: HashMap<String, String>,
    /// `--role-arn`.
    pub role_arn: Option<String>,
    /// `--capabilities`.
    pub capabilities: Vec<String>,
    /// `--notification-arns`.
    pub notification_arns: Vec<String>,
    /// `--tags`.
    pub tags: Vec<(String, String)>,
    /// `--express`.
    pub express: bool,
    /// `--skip-deploy-sync`.
    pub skip_deploy_sync: bool,
    /// `--parameter-overrides`.
    pub overrides: Overrides,
    /// `--dependency-layer`.
    pub dependency_layer: bool,
}

/// How an infra sync ended.
#[derive(Debug, Clone)]
pub enum InfraOutcome {
    /// The deploy was skipped; these code syncs ran instead.
    Skipped(Vec<Synced>),
    /// CloudFormation deployed.
    Deployed {
        /// Created, updated, or nothing to change.
        how: Deployed,
        /// Stack outputs.
        outputs: Vec<StackOutput>,
        /// Objects uploaded (those already in the bucket are not).
        uploaded: usize,
    },
}

/// Runs an infra sync of `stack` (the root of the template tree).
pub async fn infra_sync(
    aws: &Aws,
    stack: &Stack,
    cwd: &Path,
    request: &InfraRequest,
    reporter: &dyn Reporter,
) -> Result<InfraOutcome, SyncError> {
    let adl = request.dependency_layer.then_some(request.stack_name.as_str());
    let options = super::build_options(cwd, adl);
    build::build(stack, cwd, &options, &super::Quiet).await?;

    let cfn = aws.cloudformation();
    let bucket = match &request.bucket {
        Some(bucket) => bucket.clone(),
        None => deploy::managed_bucket(&cfn, &|line| reporter.note(line)).await?,
    };
    let url_base = match aws.endpoint_url() {
        Some(endpoint) => endpoint.to_string(),
        None => format!("https://s3.{}.amazonaws.com", aws.region()),
    };
    let target = Target { bucket: bucket.clone(), prefix: request.prefix.clone(), url_base };
    let mut artifacts = Vec::new();
    let packaged = packaging::package(&options.build_dir.join("template.yaml"), &target, &mut artifacts)
        .map_err(|e| SyncError::Package(e.to_string()))?;

    let recent = SyncState::load(cwd)
        .latest_infra_sync_time
        .is_some_and(|t| (state::now() - t) / 86400.0 <= MAX_DAYS_WITHOUT_DEPLOY);
    if request.skip_deploy_sync && recent {
        if let Some(synced) = try_skip(aws, stack, cwd, request, &packaged, reporter).await? {
            return Ok(InfraOutcome::Skipped(synced));
        }
    } else if request.skip_deploy_sync {
        reporter.note("No infra sync in the last 7 days on record: deploying.");
    }

    let body = packaged.body().into_bytes();
    let key = target.template_key(&body);
    artifacts.push(Artifact { key: key.clone(), content: Content::Template(body) });
    let mut uploader = Uploader::new(aws.s3(), bucket);
    uploader.kms_key_id = request.kms_key_id.clone();
    uploader.metadata = request.metadata.clone();
    let uploaded = packaging::upload_all(&uploader, &target, artifacts, UPLOADS)
        .await
        .map_err(|e| SyncError::Package(e.to_string()))?;

    let parameters = stack
        .template
        .get("Parameters")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().map(|k| (k.clone(), request.overrides.get(k).cloned())).collect())
        .unwrap_or_default();
    let deploy_request = DeployRequest {
        stack_name: request.stack_name.clone(),
        template_url: target.url(&key),
        parameters,
        capabilities: request.capabilities.clone(),
        tags: request.tags.clone(),
        role_arn: request.role_arn.clone(),
        notification_arns: request.notification_arns.clone(),
        express: request.express,
    };
    let (how, outputs) = deploy::deploy(&cfn, &deploy_request, &|line| reporter.event(line)).await?;
    let mut state = SyncState::load(cwd);
    state.latest_infra_sync_time = Some(state::now());
    state.dependency_layer = Some(request.dependency_layer);
    // The deploy replaced the code the stored hashes describe.
    state.resources.clear();
    state.save(cwd).map_err(|e| SyncError::State(e.to_string()))?;
    Ok(InfraOutcome::Deployed { how, outputs, uploaded })
}

/// Skips the deploy when only code changed, code-syncing those resources
/// from the build just made. `None` when a deploy is needed.
async fn try_skip(
    aws: &Aws,
    stack: &Stack,
    cwd: &Path,
    request: &InfraRequest,
    packaged: &packaging::Packaged,
    reporter: &dyn Reporter,
) -> Result<Option<Vec<Synced>>, SyncError> {
    let cfn = aws.cloudformation();
    let deployed = match flows::deployed_resources(&cfn, &request.stack_name).await {
        Ok(deployed) => deployed,
        Err(SyncError::NoStack(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(changed) =
        compare::code_only_changes(&cfn, &request.stack_name, packaged, &request.overrides, &deployed).await
    else {
        return Ok(None);
    };
    if changed.len() >= MAX_CODE_SYNCS_ON_SKIP {
        reporter.note("The number of resources that needs an update exceeds 50, an infra sync will be executed.");
        return Ok(None);
    }
    reporter.note("Template hasn't been changed since last deployment, skipping infra sync...");
    let adl = request.dependency_layer.then_some(request.stack_name.as_str());
    let build_dir = super::build_options(cwd, adl).build_dir;
    // A function is synced when its code or its dependency layer changed.
    let selected = |r: &crate::template::Resource| {
        let layer = format!("{}/{}", build::adl::NESTED_STACK, build::adl::layer_logical_id(&r.full_path));
        changed.iter().any(|c| *c == r.full_path || c.ends_with(&layer))
    };
    let (planned, notes) = flows::plan(stack, &deployed, &build_dir, selected)?;
    for note in notes {
        reporter.note(&note);
    }
    let runner = Arc::new(Runner::new(aws, &request.stack_name, deployed, cwd));
    let synced = flows::run(runner, planned, &|s| reporter.synced(s)).await?;
    Ok(Some(synced))
}
