//! What CloudFormation says about a deployed stack: its status, parameters
//! and outputs, and its resources by full path (nested stacks included).
//! Shared by sync, watch and logs.

use std::collections::HashMap;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{StackResourceSummary, StackStatus};

use super::error::{CallError, CallResult};
use crate::template::kind::ResourceKind;

/// A resource of the deployed stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeployedResource {
    /// Physical id (function name, API id, ARN …).
    pub(crate) physical_id: String,
    /// CloudFormation type.
    pub(crate) resource_type: String,
}

impl DeployedResource {
    /// Its ARN (`Fn::GetAtt X.Arn`): the physical id when it is one, built
    /// for a function from its name, `None` for other types.
    pub(crate) fn arn(&self, partition: &str, region: &str, account: &str) -> Option<String> {
        if self.physical_id.starts_with("arn:") {
            Some(self.physical_id.clone())
        } else if self.resource_type == ResourceKind::LambdaFunction.type_name() {
            Some(format!("arn:{partition}:lambda:{region}:{account}:function:{}", self.physical_id))
        } else {
            None
        }
    }
}

/// The deployed resources by full path (`Child/Logical`), nested stacks included.
pub(crate) type DeployedStack = HashMap<String, DeployedResource>;

/// The stack, or `None` when it does not exist (or only holds a change set
/// under review, which sam treats the same way).
pub(crate) async fn describe(
    cfn: &Client,
    stack_name: &str,
) -> Result<Option<aws_sdk_cloudformation::types::Stack>, CallError> {
    match cfn.describe_stacks().stack_name(stack_name).send().await.call("CloudFormation", "DescribeStacks") {
        Ok(out) => {
            Ok(out.stacks().first().filter(|s| s.stack_status() != Some(&StackStatus::ReviewInProgress)).cloned())
        }
        Err(e) if e.is_stack_missing() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Nested stacks listed at once: a project split into many nested stacks
/// reads them side by side, not one after another.
const LISTS_AT_ONCE: usize = 8;

/// Reads the deployed resources of `stack_name` and its nested stacks;
/// `None` when the stack does not exist.
pub(crate) async fn deployed_stack(cfn: &Client, stack_name: &str) -> Result<Option<DeployedStack>, CallError> {
    let mut found = HashMap::new();
    let mut pending = vec![(String::new(), stack_name.to_string())];
    while !pending.is_empty() {
        let mut lists = tokio::task::JoinSet::new();
        for (prefix, stack) in pending.drain(..pending.len().min(LISTS_AT_ONCE)) {
            let cfn = cfn.clone();
            lists.spawn(async move { (prefix, list_resources(&cfn, &stack).await) });
        }
        while let Some(joined) = lists.join_next().await {
            // A listing task only panics if listing inline would have.
            let (prefix, listed) = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            let resources = match listed {
                Ok(resources) => resources,
                Err(e) if e.is_stack_missing() && prefix.is_empty() => return Ok(None),
                Err(e) => return Err(e),
            };
            for r in resources {
                let (Some(logical), Some(physical)) = (r.logical_resource_id(), r.physical_resource_id()) else {
                    continue;
                };
                let path = if prefix.is_empty() { logical.to_string() } else { format!("{prefix}/{logical}") };
                let resource_type = r.resource_type().unwrap_or_default().to_string();
                if ResourceKind::of(&resource_type).is_some_and(ResourceKind::is_nested_stack) {
                    pending.push((path.clone(), physical.to_string()));
                }
                found.insert(path, DeployedResource { physical_id: physical.to_string(), resource_type });
            }
        }
    }
    Ok(Some(found))
}

/// Every resource of one stack (all pages).
async fn list_resources(cfn: &Client, stack: &str) -> Result<Vec<StackResourceSummary>, CallError> {
    let pages: Result<Vec<StackResourceSummary>, _> = cfn
        .list_stack_resources()
        .stack_name(stack)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    pages.call("CloudFormation", "ListStackResources")
}

/// The stack's original template text (as uploaded, before transforms).
pub(crate) async fn original_template(cfn: &Client, stack_id: &str) -> Result<Option<String>, CallError> {
    let fetched = cfn
        .get_template()
        .stack_name(stack_id)
        .template_stage(aws_sdk_cloudformation::types::TemplateStage::Original)
        .send()
        .await
        .call("CloudFormation", "GetTemplate")?;
    Ok(fetched.template_body().map(str::to_string))
}
