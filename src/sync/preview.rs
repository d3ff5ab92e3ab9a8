//! `accel sync --dry-run`: the plan a sync would carry out, as text or
//! JSON — the same [`InfraPlan`] value a real run executes, so what is shown
//! is what would happen.

use serde_json::{Value, json};

use super::infra::{DeployReason, InfraPlan};
use crate::template::Stack;
use crate::template::kind::ResourceKind;

/// Why the deploy happens, in words.
fn reason_text(reason: &DeployReason) -> String {
    match reason {
        DeployReason::Asked => "--no-skip-deploy-sync".into(),
        DeployReason::NoRecentSync => "no infra sync on record in the last 7 days".into(),
        DeployReason::Missing => "the stack or the artifact bucket does not exist yet".into(),
        DeployReason::Changed(changes) => changes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        DeployReason::Owed(resources) => format!("hotswapped configuration to reconcile: {}", resources.join(", ")),
        DeployReason::TooManyCodeChanges => "50 or more resources need a code sync".into(),
    }
}

/// One row per resource of the template that a sync can touch: the action
/// and its call, or why CloudFormation handles it, or `unchanged`.
fn rows(stack: &Stack, plan: &InfraPlan) -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    match plan {
        InfraPlan::Skip { plan, .. } => {
            for action in &plan.actions {
                rows.push((action.resource.clone(), action.label(), format!("via {}", action.call())));
            }
            for skipped in &plan.skipped {
                rows.push((skipped.resource.clone(), "skipped".into(), skipped.reason.to_string()));
            }
        }
        InfraPlan::Deploy(DeployReason::Changed(changes)) => {
            for change in changes {
                rows.push((change.what.clone(), "CloudFormation".into(), format!("because {}", change.why)));
            }
        }
        InfraPlan::Deploy(_) => {}
    }
    let deploys = matches!(plan, InfraPlan::Deploy(_));
    for (_, resource) in stack.all_resources() {
        let syncable = ResourceKind::of(&resource.resource_type).and_then(ResourceKind::sync_flow).is_some();
        if syncable && !rows.iter().any(|(r, _, _)| *r == resource.full_path) {
            let action = if deploys { "CloudFormation" } else { "unchanged" };
            rows.push((resource.full_path.clone(), action.into(), String::new()));
        }
    }
    rows
}

/// The plan for people.
pub(crate) fn text(stack_name: &str, stack: &Stack, plan: &InfraPlan, code_only: bool) -> String {
    let mut out = format!("Dry run of accel sync for stack {stack_name}: nothing is changed.\n");
    let rows = rows(stack, plan);
    let width = |column: fn(&(String, String, String)) -> usize| rows.iter().map(column).max().unwrap_or(0);
    let (resources, actions) = (width(|r| r.0.chars().count()), width(|r| r.1.chars().count()));
    for (resource, action, detail) in &rows {
        out.push_str(format!("  {resource:<resources$}  {action:<actions$}  {detail}").trim_end());
        out.push('\n');
    }
    out.push_str(&match plan {
        _ if code_only => "CloudFormation deploy: never (--code).".to_string(),
        InfraPlan::Skip { .. } => "CloudFormation deploy: skipped.".to_string(),
        InfraPlan::Deploy(reason) => format!("CloudFormation deploy: yes ({}).", reason_text(reason)),
    });
    out
}

/// The plan for scripts (`--output json`).
pub(crate) fn json(stack_name: &str, stack: &Stack, plan: &InfraPlan, code_only: bool) -> Value {
    let mut actions = Vec::new();
    if let InfraPlan::Skip { plan, .. } = plan {
        for action in &plan.actions {
            let properties: Vec<&String> = action.hotswap.iter().flat_map(|values| values.keys()).collect();
            actions.push(json!({
                "resource": action.resource,
                "action": action.flow.kind().label(),
                "call": action.flow.call(),
                "properties": properties,
            }));
        }
    }
    let resources: Vec<Value> = rows(stack, plan)
        .into_iter()
        .map(|(resource, action, detail)| json!({"resource": resource, "action": action, "detail": detail}))
        .collect();
    let deploy = match plan {
        _ if code_only => json!({"needed": false, "reason": "--code"}),
        InfraPlan::Skip { .. } => json!({"needed": false, "reason": null}),
        InfraPlan::Deploy(reason) => json!({"needed": true, "reason": reason_text(reason)}),
    };
    json!({"stack": stack_name, "deploy": deploy, "actions": actions, "resources": resources})
}
