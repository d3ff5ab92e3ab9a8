//! CloudFormation: the managed artifact bucket (spec §2.3) and stack
//! deploys without change sets (spec §2.5) — CreateStack/UpdateStack, stack
//! events streamed as a table while they happen, outputs at the end.

use std::time::Duration;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{
    Capability, DeploymentConfig, DeploymentConfigMode, OnFailure, Parameter, StackEvent, StackStatus, Tag,
};

use crate::aws::cloudformation::describe;
use crate::aws::error::{CallError, CallResult};
use crate::printer::Printer;
use crate::report::{EVENTS_HEADER, Event};

/// The stack sam creates for its artifact bucket; accel finds and makes the same one.
pub(crate) const MANAGED_STACK: &str = "aws-sam-cli-managed-default";

/// Why a deploy failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeployError {
    /// A CloudFormation call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// CloudFormation refused the stack operation.
    #[error("Failed to {verb} the stack: {stack}, {source}")]
    Rejected {
        /// `create` or `update`.
        verb: &'static str,
        /// Stack name.
        stack: String,
        /// CloudFormation's answer.
        source: CallError,
    },
    /// The managed stack exists but is not sam's.
    #[error(
        "Stack {MANAGED_STACK} exists but lacks the ManagedStackSource=AwsSamCli tag or the SourceBucket output. Failing as the stack was likely not created by the AWS SAM CLI"
    )]
    NotManaged,
    /// The stack operation ended in failure.
    #[error("Failed to {verb} the stack: {stack}, it ended in {status}{}", failures.iter().map(|f| format!("\n  {f}")).collect::<String>())]
    Failed {
        /// `create` or `update`.
        verb: &'static str,
        /// Stack name.
        stack: String,
        /// Final status.
        status: String,
        /// `LogicalId (Type): reason` of each failed resource.
        failures: Vec<String>,
    },
    /// The stack operation did not finish in time.
    #[error("The stack {0} was still in progress after an hour")]
    Timeout(String),
}

/// The managed stack's template (a plain CloudFormation template, so it
/// deploys without the Serverless transform).
fn managed_template() -> String {
    serde_json::json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Managed Stack for AWS SAM CLI",
        "Resources": {
            "SamCliSourceBucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicPolicy": true, "BlockPublicAcls": true,
                        "IgnorePublicAcls": true, "RestrictPublicBuckets": true
                    },
                    "BucketEncryption": { "ServerSideEncryptionConfiguration": [
                        { "ServerSideEncryptionByDefault": { "SSEAlgorithm": "aws:kms" } }
                    ]},
                    "VersioningConfiguration": { "Status": "Enabled" },
                    "Tags": [{ "Key": "ManagedStackSource", "Value": "AwsSamCli" }]
                }
            },
            "SamCliSourceBucketBucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": { "Ref": "SamCliSourceBucket" },
                    "PolicyDocument": { "Statement": [
                        {
                            "Action": ["s3:GetObject"], "Effect": "Allow",
                            "Resource": { "Fn::Join": ["", ["arn:", { "Ref": "AWS::Partition" }, ":s3:::", { "Ref": "SamCliSourceBucket" }, "/*"]] },
                            "Principal": { "Service": "serverlessrepo.amazonaws.com" },
                            "Condition": { "StringEquals": { "aws:SourceAccount": { "Ref": "AWS::AccountId" } } }
                        },
                        {
                            "Action": ["s3:*"], "Effect": "Deny",
                            "Resource": [
                                { "Fn::Join": ["", ["arn:", { "Ref": "AWS::Partition" }, ":s3:::", { "Ref": "SamCliSourceBucket" }]] },
                                { "Fn::Join": ["", ["arn:", { "Ref": "AWS::Partition" }, ":s3:::", { "Ref": "SamCliSourceBucket" }, "/*"]] }
                            ],
                            "Principal": "*",
                            "Condition": { "Bool": { "aws:SecureTransport": "false" } }
                        }
                    ]}
                }
            }
        },
        "Outputs": { "SourceBucket": { "Value": { "Ref": "SamCliSourceBucket" } } }
    })
    .to_string()
}

/// The bucket of the managed stack, or `None` when sam's managed stack
/// does not exist yet.
pub(crate) async fn find_managed_bucket(cfn: &Client) -> Result<Option<String>, DeployError> {
    let Some(stack) = describe(cfn, MANAGED_STACK).await? else { return Ok(None) };
    let tagged = stack.tags().iter().any(|t| t.key() == Some("ManagedStackSource") && t.value() == Some("AwsSamCli"));
    let bucket = stack.outputs().iter().find(|o| o.output_key() == Some("SourceBucket"));
    match (tagged, bucket.and_then(|o| o.output_value())) {
        (true, Some(bucket)) => Ok(Some(bucket.to_string())),
        _ => Err(DeployError::NotManaged),
    }
}

/// Creates sam's managed stack and returns its bucket.
pub(crate) async fn create_managed_bucket(cfn: &Client, printer: &Printer) -> Result<String, DeployError> {
    printer.note("\tCreating the required resources...");
    let created = cfn
        .create_stack()
        .stack_name(MANAGED_STACK)
        .template_body(managed_template())
        .capabilities(Capability::CapabilityIam)
        .tags(Tag::builder().key("ManagedStackSource").value("AwsSamCli").build())
        .send()
        .await
        .call("CloudFormation", "CreateStack");
    match created {
        Ok(_) => {}
        // Another run (sam's or ours) created it meanwhile: use theirs.
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e.into()),
    }
    let stack = {
        let _task = printer.task(format_args!("Creating {MANAGED_STACK}"), None);
        wait_for_stack(cfn, MANAGED_STACK, "create").await?
    };
    printer.note("\tSuccessfully created!");
    let bucket = stack.outputs().iter().find(|o| o.output_key() == Some("SourceBucket"));
    bucket.and_then(|o| o.output_value()).map(str::to_string).ok_or(DeployError::NotManaged)
}

/// Polls the stack every 100–500 ms, for up to an hour, until `settled`
/// says how it ended (`None`: not yet). The stack is `None` once it is gone.
async fn poll_stack<T>(
    cfn: &Client,
    stack_name: &str,
    settled: impl Fn(Option<aws_sdk_cloudformation::types::Stack>) -> Option<Result<T, DeployError>>,
) -> Result<T, DeployError> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        if let Some(result) = settled(describe(cfn, stack_name).await?) {
            return result;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err(DeployError::Timeout(stack_name.to_string()));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// The stack's status as text (`""` when it has none).
fn status_of(stack: &aws_sdk_cloudformation::types::Stack) -> String {
    stack.stack_status().map(|s| s.as_str().to_string()).unwrap_or_default()
}

/// Polls until the stack leaves its `*_IN_PROGRESS` state.
async fn wait_for_stack(
    cfn: &Client,
    stack_name: &str,
    verb: &'static str,
) -> Result<aws_sdk_cloudformation::types::Stack, DeployError> {
    poll_stack(cfn, stack_name, |stack| {
        let stack = stack?;
        let status = status_of(&stack);
        if status.ends_with("IN_PROGRESS") {
            return None;
        }
        Some(if status.ends_with("_COMPLETE") && !status.contains("ROLLBACK") {
            Ok(stack)
        } else {
            Err(DeployError::Failed { verb, stack: stack_name.to_string(), status, failures: Vec::new() })
        })
    })
    .await
}

/// A stack whose creation rolled back (`ROLLBACK_COMPLETE`) can only be
/// deleted: sam's sync fails on it until someone deletes it by hand. accel
/// deletes it (it has no resources left) so that the deploy creates it again.
async fn delete_rolled_back(cfn: &Client, stack_name: &str, printer: &Printer) -> Result<(), DeployError> {
    printer.note(format_args!(
        "Stack {stack_name} is in ROLLBACK_COMPLETE (its creation failed): deleting it to create it again."
    ));
    cfn.delete_stack().stack_name(stack_name).send().await.call("CloudFormation", "DeleteStack")?;
    let _task = printer.task(format_args!("Deleting {stack_name}"), None);
    poll_stack(cfn, stack_name, |stack| {
        let status = stack.as_ref().map(status_of).unwrap_or_default();
        match status.as_str() {
            "" | "DELETE_COMPLETE" => Some(Ok(())),
            s if s.ends_with("IN_PROGRESS") || s == "ROLLBACK_COMPLETE" => None,
            _ => Some(Err(DeployError::Failed {
                verb: "delete",
                stack: stack_name.to_string(),
                status,
                failures: Vec::new(),
            })),
        }
    })
    .await
}

/// A stack deploy.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeployRequest {
    /// Stack name.
    pub(crate) stack_name: String,
    /// Path-style URL of the packaged template.
    pub(crate) template_url: String,
    /// Every template parameter: its override, or `None` to keep the deployed value.
    pub(crate) parameters: Vec<(String, Option<String>)>,
    /// `--capabilities`.
    pub(crate) capabilities: Vec<String>,
    /// `--tags`.
    pub(crate) tags: Vec<(String, String)>,
    /// `--role-arn`.
    pub(crate) role_arn: Option<String>,
    /// `--notification-arns`.
    pub(crate) notification_arns: Vec<String>,
    /// `--express`.
    pub(crate) express: bool,
}

/// How a deploy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Deployed {
    /// The stack was created.
    Created,
    /// The stack was updated.
    Updated,
    /// CloudFormation had nothing to change.
    NoChanges,
}

/// One stack output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StackOutput {
    /// Output key.
    pub(crate) key: String,
    /// Description, if any.
    pub(crate) description: Option<String>,
    /// Value.
    pub(crate) value: String,
}

/// Creates or updates the stack, printing each new stack event as it
/// happens. Returns how it ended and the stack's outputs.
pub(crate) async fn deploy(
    cfn: &Client,
    request: &DeployRequest,
    printer: &Printer,
) -> Result<(Deployed, Vec<StackOutput>), DeployError> {
    let mut existing = describe(cfn, &request.stack_name).await?;
    if existing.as_ref().and_then(|s| s.stack_status()) == Some(&StackStatus::RollbackComplete) {
        delete_rolled_back(cfn, &request.stack_name, printer).await?;
        existing = None;
    }
    let deployed_params: Vec<String> = existing
        .as_ref()
        .map(|s| s.parameters().iter().filter_map(|p| p.parameter_key().map(str::to_string)).collect())
        .unwrap_or_default();
    let parameters: Vec<Parameter> = request
        .parameters
        .iter()
        .filter_map(|(key, value)| match value {
            Some(value) => Some(Parameter::builder().parameter_key(key).parameter_value(value).build()),
            None if deployed_params.contains(key) => {
                Some(Parameter::builder().parameter_key(key).use_previous_value(true).build())
            }
            None => None,
        })
        .collect();
    let capabilities: Vec<Capability> = request.capabilities.iter().map(|c| Capability::from(c.as_str())).collect();
    let tags: Vec<Tag> = request.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    let express = request
        .express
        .then(|| DeploymentConfig::builder().mode(DeploymentConfigMode::Express).disable_rollback(false).build());
    // Events older than this one belong to earlier operations.
    let marker = match &existing {
        Some(_) => latest_event_id(cfn, &request.stack_name).await?,
        None => None,
    };
    let verb = if existing.is_some() { "update" } else { "create" };
    let began = std::time::Instant::now();
    let report = |result| {
        let api = if existing.is_some() { "UpdateStack" } else { "CreateStack" };
        let (resource, duration_ms) = (request.stack_name.clone(), began.elapsed().as_millis());
        printer.event(&Event::Deploy { resource, action: verb, api, duration_ms, result });
    };
    // The SDK retries a call whose answer was lost; the token lets
    // CloudFormation, and us, recognise the retry as the same request.
    let token = request_token(&request.stack_name);
    // CreateStack and UpdateStack take the same settings through builders
    // of different types.
    macro_rules! settings {
        ($call:expr) => {
            $call
                .stack_name(&request.stack_name)
                .template_url(&request.template_url)
                .set_parameters(Some(parameters))
                .set_capabilities(Some(capabilities))
                .set_tags(Some(tags))
                .set_role_arn(request.role_arn.clone())
                .set_notification_arns(Some(request.notification_arns.clone()).filter(|n| !n.is_empty()))
                .client_request_token(&token)
        };
    }

    let sent = if existing.is_some() {
        let call = settings!(cfn.update_stack());
        let call = match express {
            Some(config) => call.deployment_config(config),
            None => call.disable_rollback(false),
        };
        call.send().await.map(|_| ()).call("CloudFormation", "UpdateStack")
    } else {
        let call = settings!(cfn.create_stack());
        let call = match express {
            Some(config) => call.deployment_config(config),
            None => call.on_failure(OnFailure::Rollback),
        };
        call.send().await.map(|_| ()).call("CloudFormation", "CreateStack")
    };
    match sent {
        Ok(()) => {}
        Err(e)
            if (e.is_already_exists() || e.is_in_progress()) && started_by(cfn, &request.stack_name, &token).await => {}
        Err(e) if e.is_no_updates() => {
            report("no changes");
            let outputs = existing.as_ref().map(outputs_of).unwrap_or_default();
            return Ok((Deployed::NoChanges, outputs));
        }
        Err(source) => return Err(DeployError::Rejected { verb, stack: request.stack_name.clone(), source }),
    }
    let failures = stream_events(cfn, &request.stack_name, marker.as_deref(), printer).await?;
    let stack = match wait_for_stack(cfn, &request.stack_name, verb).await {
        Ok(stack) => stack,
        Err(DeployError::Failed { verb, stack, status, .. }) => {
            return Err(DeployError::Failed { verb, stack, status, failures });
        }
        Err(e) => return Err(e),
    };
    let how = if existing.is_some() { Deployed::Updated } else { Deployed::Created };
    report(if existing.is_some() { "updated" } else { "created" });
    Ok((how, outputs_of(&stack)))
}

/// A token unique to this deploy: `accel-` and 32 hex characters of a hash
/// of the stack name, the time and the process.
fn request_token(stack_name: &str) -> String {
    use sha2::Digest;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = format!("{stack_name}\0{}\0{}", now.as_nanos(), std::process::id());
    format!("accel-{}", &hex::encode(sha2::Sha256::digest(seed))[..32])
}

/// Whether the stack's operation under way was started by the request with
/// `token`: our own call, retried after its answer was lost.
async fn started_by(cfn: &Client, stack_name: &str, token: &str) -> bool {
    let events = cfn.describe_stack_events().stack_name(stack_name).send().await;
    events.is_ok_and(|out| out.stack_events().iter().any(|e| e.client_request_token() == Some(token)))
}

fn outputs_of(stack: &aws_sdk_cloudformation::types::Stack) -> Vec<StackOutput> {
    stack
        .outputs()
        .iter()
        .map(|o| StackOutput {
            key: o.output_key().unwrap_or_default().to_string(),
            description: o.description().map(str::to_string),
            value: o.output_value().unwrap_or_default().to_string(),
        })
        .collect()
}

async fn latest_event_id(cfn: &Client, stack_name: &str) -> Result<Option<String>, DeployError> {
    let out = cfn
        .describe_stack_events()
        .stack_name(stack_name)
        .send()
        .await
        .call("CloudFormation", "DescribeStackEvents")?;
    Ok(out.stack_events().first().and_then(|e| e.event_id()).map(str::to_string))
}

/// Prints the stack's new events oldest first until the root stack reaches
/// a final status. Returns the failed resources with their reasons.
async fn stream_events(
    cfn: &Client,
    stack_name: &str,
    marker: Option<&str>,
    printer: &Printer,
) -> Result<Vec<String>, DeployError> {
    let mut seen = std::collections::HashSet::new();
    let mut failures = Vec::new();
    let mut delay = Duration::from_millis(100);
    let started = std::time::Instant::now();
    if !printer.json() {
        printer.out(EVENTS_HEADER);
    }
    let task = printer.task(format_args!("Deploying {stack_name}"), None);
    loop {
        let mut fresh: Vec<StackEvent> = Vec::new();
        let mut pages = cfn.describe_stack_events().stack_name(stack_name).into_paginator().send();
        'pages: while let Some(page) = pages.next().await {
            let page = page.call("CloudFormation", "DescribeStackEvents")?;
            for e in page.stack_events() {
                if e.event_id() == marker || e.event_id().is_none() {
                    break 'pages;
                }
                if !seen.contains(e.event_id().unwrap_or_default()) {
                    fresh.push(e.clone());
                }
            }
        }
        let mut done = false;
        for e in fresh.iter().rev() {
            seen.insert(e.event_id().unwrap_or_default().to_string());
            let status = e.resource_status().map(|s| s.as_str()).unwrap_or_default();
            let reason = e.resource_status_reason().unwrap_or("-");
            let logical = e.logical_resource_id().unwrap_or_default();
            let kind = e.resource_type().unwrap_or_default();
            task.status(format_args!("{status} {logical}"));
            printer.event(&Event::Stack {
                resource: logical.to_string(),
                resource_type: kind.to_string(),
                status: status.to_string(),
                reason: e.resource_status_reason().map(str::to_string),
            });
            if status.ends_with("FAILED") {
                failures.push(format!("{logical} ({kind}): {reason}"));
            }
            let root = kind == "AWS::CloudFormation::Stack" && logical == stack_name;
            done |= root && !status.ends_with("IN_PROGRESS");
        }
        // Some CloudFormation implementations skip the root stack's final
        // event; its status settles the question as well.
        let settled = || async {
            let stack = describe(cfn, stack_name).await?;
            Ok::<_, DeployError>(
                stack.and_then(|s| s.stack_status().cloned()).is_none_or(|s| !s.as_str().ends_with("IN_PROGRESS")),
            )
        };
        if done || settled().await? {
            return Ok(failures);
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err(DeployError::Timeout(stack_name.to_string()));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}
