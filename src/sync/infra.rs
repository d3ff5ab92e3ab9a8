//! Infra sync (spec §2.5–2.6): build (cached), package, then decide — before
//! anything is created or uploaded — between skipping the deploy (only code
//! changed: push it through the service APIs) and a CloudFormation deploy
//! of what the bucket lacks.

use std::collections::HashMap;

use super::apply::{self, Synced};
use super::compare::{self, RemoteTemplates, Structural};
use super::drift::{self, Drift, StackDrift};
use super::hotswap::{self, StackFacts};
use super::plan::{self, SyncPlan};
use super::state::{self, SyncState};
use super::{SyncEnv, SyncError, build_options};
use crate::aws::Aws;
use crate::aws::cloudformation::{self, DeployedStack};
use crate::builder::{self, BuildReport, adl};
use crate::deploy::{self, DeployRequest, Deployed, StackOutput};
use crate::package::Uploader;
use crate::package::template::{self as packaging, Artifact, Content, Packaged, Target};
use crate::template::Stack;
use crate::template::parameters::Overrides;

/// A deploy is forced when the last one is older than this (sam's rule).
const MAX_DAYS_WITHOUT_DEPLOY: f64 = 7.0;

/// A skip is refused when this many resources or more need a code sync.
const MAX_CODE_SYNCS_ON_SKIP: usize = 50;

/// Uploads running at once.
const UPLOADS: usize = 8;

/// What `accel sync` (without `--code`) deploys and how.
#[derive(Debug, Clone, Default)]
pub(crate) struct InfraRequest {
    /// `--s3-bucket`; the managed bucket without it.
    pub(crate) bucket: Option<String>,
    /// `--s3-prefix`.
    pub(crate) prefix: Option<String>,
    /// `--kms-key-id`.
    pub(crate) kms_key_id: Option<String>,
    /// `--metadata`.
    pub(crate) metadata: HashMap<String, String>,
    /// `--role-arn`.
    pub(crate) role_arn: Option<String>,
    /// `--capabilities`.
    pub(crate) capabilities: Vec<String>,
    /// `--notification-arns`.
    pub(crate) notification_arns: Vec<String>,
    /// `--tags`.
    pub(crate) tags: Vec<(String, String)>,
    /// `--express`.
    pub(crate) express: bool,
    /// `--skip-deploy-sync`.
    pub(crate) skip_deploy_sync: bool,
    /// `--parameter-overrides`.
    pub(crate) overrides: Overrides,
    /// `--dependency-layer`.
    pub(crate) dependency_layer: bool,
    /// `--hotswap`: configuration the service APIs can change skips the deploy too.
    pub(crate) hotswap: bool,
}

/// Why a deploy is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeployReason {
    /// `--no-skip-deploy-sync`.
    Asked,
    /// No infra sync in the last 7 days on record.
    NoRecentSync,
    /// The stack (or the managed bucket) does not exist yet.
    Missing,
    /// Parameters or templates differ beyond what the service APIs change.
    Changed(Vec<Structural>),
    /// Configuration was hotswapped since the last deploy (these resources).
    Owed(Vec<String>),
    /// Too many resources would need a code sync.
    TooManyCodeChanges,
}

impl DeployReason {
    /// What is said about it, if anything.
    pub(crate) fn note(&self) -> Option<String> {
        match self {
            DeployReason::NoRecentSync => Some("No infra sync in the last 7 days on record: deploying.".into()),
            DeployReason::TooManyCodeChanges => {
                Some("The number of resources that needs an update exceeds 50, an infra sync will be executed.".into())
            }
            DeployReason::Owed(resources) => Some(format!(
                "Configuration of {} was hotswapped since the last deploy: deploying the template.",
                resources.join(", ")
            )),
            _ => None,
        }
    }
}

/// What an infra sync will do.
#[derive(Debug, Clone)]
pub(crate) enum InfraPlan {
    /// Only code changed: these code syncs instead of a deploy.
    Skip {
        /// The deployed stack the actions target.
        deployed: DeployedStack,
        /// The code syncs.
        plan: SyncPlan,
    },
    /// A CloudFormation deploy.
    Deploy(DeployReason),
}

/// How an infra sync ended.
#[derive(Debug, Clone)]
pub(crate) enum InfraOutcome {
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

/// What the deployed stack looks like, as far as the skip decision needs.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    /// Its id, parameters and resources.
    pub(crate) facts: StackFacts,
    /// Templates by stack path.
    pub(crate) templates: RemoteTemplates,
}

/// What changed outside CloudFormation since the stack's last deploy.
pub(crate) struct SinceDeploy<'a> {
    /// Hotswapped properties.
    pub(crate) drift: &'a StackDrift,
    /// Resources whose code was synced through the service APIs: their
    /// deployed code may differ from both templates.
    pub(crate) code_synced: &'a [String],
}

/// Decides between a skip and a deploy. `recent`: the last infra sync on
/// record is under 7 days old; `packaged`: the packaged templates (`None`
/// while there is no bucket to package for); `remote`: the deployed stack
/// (`None` when it does not exist); `artifacts`: this build's output;
/// `since`: what went through the service APIs since the last deploy. With
/// `request.hotswap`, configuration changes the service APIs can apply are
/// planned as actions instead of a deploy.
pub(crate) fn decide(
    root: &Stack,
    request: &InfraRequest,
    recent: bool,
    packaged: Option<&Packaged>,
    remote: Option<Remote>,
    artifacts: &BuildReport,
    since: &SinceDeploy<'_>,
) -> Result<InfraPlan, SyncError> {
    let &SinceDeploy { drift, code_synced } = since;
    if !request.skip_deploy_sync {
        return Ok(InfraPlan::Deploy(DeployReason::Asked));
    }
    if !recent {
        return Ok(InfraPlan::Deploy(DeployReason::NoRecentSync));
    }
    let (Some(packaged), Some(remote)) = (packaged, remote) else {
        return Ok(InfraPlan::Deploy(DeployReason::Missing));
    };
    let parameters = &remote.facts.parameters;
    let changed: Vec<Structural> = request
        .overrides
        .iter()
        .filter(|(key, value)| !parameters.contains(&((*key).clone(), (*value).clone())))
        .map(|(key, _)| Structural { what: format!("Parameters.{key}"), why: "differs from the deployed value".into() })
        .collect();
    if !changed.is_empty() {
        return Ok(InfraPlan::Deploy(DeployReason::Changed(changed)));
    }
    let mut changes = compare::packaged_changes(packaged, &remote.templates);
    let templates = packaged.by_prefix();
    if request.hotswap {
        hotswap::already_hotswapped(&mut changes.config, &templates, |path, property| {
            drift.get(path).and_then(|values| values.get(property)).cloned()
        });
        hotswap::undone(&mut changes.config, &templates, drift);
    }
    let mut structural = changes.structural.clone();
    if !request.hotswap {
        let config = changes.config.iter().map(|(path, properties)| Structural {
            what: path.clone(),
            why: format!("{} changed", properties.join(", ")),
        });
        structural.extend(config);
    }
    if !structural.is_empty() {
        return Ok(InfraPlan::Deploy(DeployReason::Changed(structural)));
    }
    let owed: Vec<String> = drift.keys().cloned().collect();
    if !owed.is_empty() && !request.hotswap {
        return Ok(InfraPlan::Deploy(DeployReason::Owed(owed)));
    }
    if changes.code.len() >= MAX_CODE_SYNCS_ON_SKIP {
        return Ok(InfraPlan::Deploy(DeployReason::TooManyCodeChanges));
    }
    // A function is synced when its code or its dependency layer changed
    // since the deploy, or was code-synced since: a code sync that an edit
    // undid leaves CloudFormation's template equal to the source while
    // Lambda runs the synced code. (Unchanged ones cost no call: their
    // recorded hash is the one they would send.)
    let selected = |r: &crate::template::Resource| {
        let layer = format!("{}/{}", adl::NESTED_STACK, adl::layer_logical_id(&r.full_path));
        changes.code.iter().chain(code_synced).any(|c| *c == r.full_path || c.ends_with(&layer))
    };
    let mut plan = plan::plan(root, &remote.facts.deployed, &artifacts.artifacts, selected)?;
    let (config, refused) = hotswap::config_actions(&templates, &changes.config, &remote.facts);
    if !refused.is_empty() {
        return Ok(InfraPlan::Deploy(DeployReason::Changed(refused)));
    }
    plan.actions.extend(config);
    Ok(InfraPlan::Skip { deployed: remote.facts.deployed, plan })
}

/// Reads what [`decide`] needs of the deployed stack; `None` when it does
/// not exist.
async fn read_remote(aws: &Aws, stack_name: &str, packaged: &Packaged) -> Result<Option<Remote>, SyncError> {
    let cfn = aws.cloudformation();
    let Some(stack) = cloudformation::describe(&cfn, stack_name).await? else { return Ok(None) };
    let parameters = stack
        .parameters()
        .iter()
        // An SSM parameter's value is its `ResolvedValue`, not the name.
        .filter_map(|p| Some((p.parameter_key()?.to_string(), p.resolved_value().or(p.parameter_value())?.to_string())))
        .collect();
    let stack_id = stack.stack_id().unwrap_or_default().to_string();
    let Some(deployed) = cloudformation::deployed_stack(&cfn, stack_name).await? else { return Ok(None) };
    let mut templates = RemoteTemplates::new();
    let mut pending = vec![(String::new(), stack_name.to_string(), packaged)];
    while let Some((prefix, stack_id, packaged)) = pending.pop() {
        let Some(body) = cloudformation::original_template(&cfn, &stack_id).await? else { continue };
        let Ok(template) = crate::template::yaml::parse(&body) else { continue };
        templates.insert(prefix.clone(), template);
        for (logical_id, child) in &packaged.children {
            if let Some(nested) = deployed.get(&format!("{prefix}{logical_id}")) {
                pending.push((format!("{prefix}{logical_id}/"), nested.physical_id.clone(), child));
            }
        }
    }
    Ok(Some(Remote { facts: StackFacts { stack_id, parameters, deployed }, templates }))
}

/// What an infra sync decided before changing anything: the plan, and
/// what carrying out a deploy needs.
pub(crate) struct Prepared {
    /// Skip (with these actions) or deploy (and why).
    pub(crate) plan: InfraPlan,
    bucket: Option<String>,
    packaged: Option<Packaged>,
    artifacts: Vec<Artifact>,
    built_template: std::path::PathBuf,
    url_base: String,
    /// The templates CloudFormation holds before the deploy, when read.
    deployed_templates: Option<RemoteTemplates>,
}

/// Builds, packages (uploading nothing) and reads the deployed stack to
/// plan an infra sync: every call it makes to AWS only reads.
pub(crate) async fn prepare(env: SyncEnv<'_>, stack: &Stack, request: &InfraRequest) -> Result<Prepared, SyncError> {
    let SyncEnv { aws, layout, stack_name, printer, remote } = env;
    let adl = request.dependency_layer.then_some(stack_name);
    let options = build_options(layout, adl, remote);
    let report = builder::build(stack, layout.root(), &options, printer).await?;

    let cfn = aws.cloudformation();
    let bucket = match &request.bucket {
        Some(bucket) => Some(bucket.clone()),
        None => deploy::find_managed_bucket(&cfn).await?,
    };
    let url_base = match aws.endpoint_url() {
        Some(endpoint) => endpoint.to_string(),
        None => format!("https://s3.{}.amazonaws.com", aws.region()),
    };
    let target = |bucket: String| Target { bucket, prefix: request.prefix.clone(), url_base: url_base.clone() };
    let built_template = options.build_dir.join("template.yaml");
    let mut artifacts = Vec::new();
    let packaged = match &bucket {
        Some(bucket) => Some(packaging::package(&built_template, &target(bucket.clone()), &mut artifacts)?),
        None => None,
    };
    let state = SyncState::load(&layout.sync_state());
    let recent = state.latest_infra_sync_time.is_some_and(|t| (state::now() - t) / 86400.0 <= MAX_DAYS_WITHOUT_DEPLOY);
    let drift = Drift::load(&layout.drift()).of(stack_name);
    let code_synced: Vec<String> =
        state.resources.keys().filter_map(|key| key.split_once(':').map(|(_, path)| path.to_string())).collect();
    // The deployed templates also tell which hotswaps a deploy leaves as they are.
    let remote = match &packaged {
        Some(packaged) if request.skip_deploy_sync && recent || !drift.is_empty() => {
            read_remote(aws, stack_name, packaged).await?
        }
        _ => None,
    };
    let deployed_templates = remote.as_ref().map(|r| r.templates.clone());
    let since = SinceDeploy { drift: &drift, code_synced: &code_synced };
    let plan = decide(stack, request, recent, packaged.as_ref(), remote, &report, &since)?;
    Ok(Prepared { plan, bucket, packaged, artifacts, built_template, url_base, deployed_templates })
}

/// Runs an infra sync of `stack` (the root of the template tree).
pub(crate) async fn infra_sync(
    env: SyncEnv<'_>,
    stack: &Stack,
    request: &InfraRequest,
) -> Result<InfraOutcome, SyncError> {
    let SyncEnv { aws, layout, stack_name, printer, .. } = env;
    let Prepared { plan, bucket, packaged, mut artifacts, built_template, url_base, deployed_templates } =
        prepare(env, stack, request).await?;
    let cfn = aws.cloudformation();
    let target = |bucket: String| Target { bucket, prefix: request.prefix.clone(), url_base: url_base.clone() };
    let reason = match plan {
        InfraPlan::Skip { deployed, plan } => {
            printer.debug(format_args!("infra sync skipped: {} code sync action(s)", plan.actions.len()));
            printer.note("Template hasn't been changed since last deployment, skipping infra sync...");
            let synced = apply::apply(env, deployed, plan, None).await.into_result()?;
            return Ok(InfraOutcome::Skipped(synced));
        }
        InfraPlan::Deploy(reason) => reason,
    };
    printer.debug(format_args!("infra sync deploys: {reason:?}"));
    if let Some(note) = reason.note() {
        printer.note(note);
    }
    if let DeployReason::Changed(changes) = &reason
        && request.hotswap
    {
        for change in changes {
            printer.note(format_args!("{change}: CloudFormation"));
        }
    }
    // Only now, with a deploy decided, may the managed bucket be created.
    let (bucket, packaged) = match (bucket, packaged) {
        (Some(bucket), Some(packaged)) => (bucket, packaged),
        _ => {
            let bucket = deploy::create_managed_bucket(&cfn, printer).await?;
            let packaged = packaging::package(&built_template, &target(bucket.clone()), &mut artifacts)?;
            (bucket, packaged)
        }
    };
    let target = target(bucket.clone());
    let body = packaged.body().into_bytes();
    let key = target.template_key(&body);
    artifacts.push(Artifact { key: key.clone(), content: Content::Template(body) });
    let mut uploader = Uploader::new(aws.s3(), bucket);
    uploader.kms_key_id = request.kms_key_id.clone();
    uploader.metadata = request.metadata.clone();
    let uploaded = packaging::upload_all(&uploader, &target, artifacts, UPLOADS, printer).await?;

    let parameters = stack
        .template
        .get("Parameters")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().map(|k| (k.clone(), request.overrides.get(k).cloned())).collect())
        .unwrap_or_default();
    let deploy_request = DeployRequest {
        stack_name: stack_name.to_string(),
        template_url: target.url(&key),
        parameters,
        capabilities: request.capabilities.clone(),
        tags: request.tags.clone(),
        role_arn: request.role_arn.clone(),
        notification_arns: request.notification_arns.clone(),
        express: request.express,
    };
    let (how, outputs) = deploy::deploy(&cfn, &deploy_request, printer).await?;
    let mut state = SyncState::load(&layout.sync_state());
    state.latest_infra_sync_time = Some(state::now());
    state.dependency_layer = Some(request.dependency_layer);
    // The deploy replaced the code the stored hashes describe.
    state.resources.clear();
    state.save(&layout.sync_state()).map_err(SyncError::State)?;
    reconcile(env, &packaged, deployed_templates.as_ref()).await?;
    Ok(InfraOutcome::Deployed { how, outputs, uploaded })
}

/// After a deploy, sets the configuration hotswapped since the last one to
/// what the template says: CloudFormation updates only what differs from
/// its own template (`before`, when known), so a hotswapped value the
/// template no longer changes (an edit undone) would stay. Then nothing is
/// owed.
async fn reconcile(env: SyncEnv<'_>, packaged: &Packaged, before: Option<&RemoteTemplates>) -> Result<(), SyncError> {
    let SyncEnv { aws, layout, stack_name, printer, .. } = env;
    let mut owed = Drift::load(&layout.drift()).owed(stack_name);
    let templates = packaged.by_prefix();
    if let Some(before) = before {
        hotswap::deployed_anyway(&mut owed, &templates, before);
    }
    if !owed.is_empty() {
        let facts = super::stack_facts(aws, stack_name, true).await?;
        let (actions, refused) = hotswap::config_actions(&templates, &owed, &facts);
        for change in refused {
            printer.note(format_args!("{change}: left as CloudFormation deployed it"));
        }
        let plan = SyncPlan { actions, skipped: Vec::new() };
        apply::apply(env, facts.deployed, plan, None).await.into_result()?;
    }
    drift::update(&layout.drift(), |d| d.clear(stack_name)).map_err(SyncError::State)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::aws::cloudformation::DeployedResource;
    use crate::template::LoadOptions;

    const TEMPLATE: &str = "Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn, Handler: app.handler, Runtime: python3.12, MemorySize: 128}
";

    fn packaged(key: &str, memory: u32) -> Packaged {
        let text =
            TEMPLATE.replace("CodeUri: fn", &format!("CodeUri: s3://bucket/{key}")).replace("128", &memory.to_string());
        Packaged { template: crate::template::yaml::parse(&text).unwrap(), children: BTreeMap::new() }
    }

    fn remote(key: &str, parameters: &[(&str, &str)]) -> Remote {
        let deployed = DeployedStack::from([(
            "Fn".to_string(),
            DeployedResource { physical_id: "blog-Fn-1".into(), resource_type: "AWS::Lambda::Function".into() },
        )]);
        Remote {
            facts: StackFacts {
                stack_id: "arn:aws:cloudformation:eu-west-1:111122223333:stack/blog/1".into(),
                parameters: parameters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                deployed,
            },
            templates: RemoteTemplates::from([(String::new(), packaged(key, 128).template)]),
        }
    }

    fn decision(request: &InfraRequest, recent: bool, local: &Packaged, remote: Option<Remote>) -> InfraPlan {
        decision_owing(request, recent, local, remote, Vec::new())
    }

    fn decision_owing(
        request: &InfraRequest,
        recent: bool,
        local: &Packaged,
        remote: Option<Remote>,
        owed: Vec<String>,
    ) -> InfraPlan {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("template.yaml"), TEMPLATE).unwrap();
        let root = Stack::load(&dir.path().join("template.yaml"), &LoadOptions::default()).unwrap();
        let mut drift = Drift::default();
        for resource in owed {
            drift.record("blog", &resource, &BTreeMap::from([("Timeout".to_string(), serde_json::Value::from(3))]));
        }
        let since = SinceDeploy { drift: &drift.of("blog"), code_synced: &[] };
        decide(&root, request, recent, Some(local), remote, &BuildReport::default(), &since).unwrap()
    }

    fn deploy_reason(plan: InfraPlan) -> Option<DeployReason> {
        match plan {
            InfraPlan::Deploy(reason) => Some(reason),
            InfraPlan::Skip { .. } => None,
        }
    }

    #[test]
    fn only_code_changed_skips_the_deploy() {
        let request = InfraRequest { skip_deploy_sync: true, ..InfraRequest::default() };
        let InfraPlan::Skip { plan, .. } = decision(&request, true, &packaged("new", 128), Some(remote("old", &[])))
        else {
            panic!("a skip expected")
        };
        let resources: Vec<&str> = plan.actions.iter().map(|a| a.resource.as_str()).collect();
        assert_eq!(resources, ["Fn"]);
        // Nothing changed: a skip with nothing to push.
        let same = decision(&request, true, &packaged("old", 128), Some(remote("old", &[])));
        assert!(matches!(same, InfraPlan::Skip { ref plan, .. } if plan.actions.is_empty()), "{same:?}");
    }

    #[test]
    fn every_other_case_deploys() {
        let skip = InfraRequest { skip_deploy_sync: true, ..InfraRequest::default() };
        let local = packaged("old", 128);
        let asked = InfraRequest { skip_deploy_sync: false, ..InfraRequest::default() };
        assert_eq!(deploy_reason(decision(&asked, true, &local, Some(remote("old", &[])))), Some(DeployReason::Asked));
        assert_eq!(deploy_reason(decision(&skip, false, &local, None)), Some(DeployReason::NoRecentSync));
        assert_eq!(deploy_reason(decision(&skip, true, &local, None)), Some(DeployReason::Missing));
        let memory = packaged("old", 256);
        let changed = |what: &str, why: &str| Structural { what: what.into(), why: why.into() };
        assert_eq!(
            deploy_reason(decision(&skip, true, &memory, Some(remote("old", &[])))),
            Some(DeployReason::Changed(vec![changed("Fn", "MemorySize changed")]))
        );
        let overrides = [("Stage".to_string(), "prod".to_string())].into_iter().collect();
        let with_parameter = InfraRequest { overrides, ..skip.clone() };
        let deployed_dev = remote("old", &[("Stage", "dev")]);
        assert_eq!(
            deploy_reason(decision(&with_parameter, true, &local, Some(deployed_dev))),
            Some(DeployReason::Changed(vec![changed("Parameters.Stage", "differs from the deployed value")]))
        );
        let deployed_prod = remote("old", &[("Stage", "prod")]);
        assert_eq!(deploy_reason(decision(&with_parameter, true, &local, Some(deployed_prod))), None);
        // Hotswapped configuration is owed a deploy, even with the template as deployed.
        let owed = decision_owing(&skip, true, &local, Some(remote("old", &[])), vec!["Fn".into()]);
        assert_eq!(deploy_reason(owed), Some(DeployReason::Owed(vec!["Fn".into()])));
    }

    #[test]
    fn hotswap_plans_configuration_instead_of_a_deploy() {
        let request = InfraRequest { skip_deploy_sync: true, hotswap: true, ..InfraRequest::default() };
        let plan = decision_owing(&request, true, &packaged("new", 256), Some(remote("old", &[])), vec!["Fn".into()]);
        let InfraPlan::Skip { plan, .. } = plan else { panic!("a skip expected: {plan:?}") };
        let calls: Vec<String> = plan.actions.iter().map(|a| format!("{} {}", a.resource, a.call())).collect();
        // Timeout, hotswapped to 3 and since removed from the template, goes back too.
        assert_eq!(calls, ["Fn UpdateFunctionCode", "Fn UpdateFunctionConfiguration (MemorySize, Timeout)"]);
    }
}
