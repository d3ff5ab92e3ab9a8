//! Code sync of zip functions (spec §2.8): zip the built artifact, compare
//! its SHA-256 with the deployed `CodeSha256`, `UpdateFunctionCode` when
//! they differ, and wait for the update — treating `Failed` as an error and
//! giving up after a timeout, unlike sam.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::StackResourceSummary;
use aws_sdk_lambda::types::LastUpdateStatus;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::SyncError;
use crate::package;

/// Lambda takes a zip inline up to this size; sam switches to S3 above it.
const INLINE_LIMIT: usize = 50 * 1024 * 1024;

/// How long an update may stay `InProgress`.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(300);

/// What happened to one function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The deployed code already matched.
    Unchanged,
    /// New code was deployed.
    Updated,
}

/// Physical ids of the deployed resources by full path (`Child/Logical`),
/// nested stacks included.
pub async fn physical_ids(
    cfn: &aws_sdk_cloudformation::Client,
    stack_name: &str,
) -> Result<HashMap<String, String>, SyncError> {
    let mut ids = HashMap::new();
    let mut pending = vec![(String::new(), stack_name.to_string())];
    while let Some((prefix, stack)) = pending.pop() {
        let pages: Result<Vec<_>, _> = cfn
            .list_stack_resources()
            .stack_name(&stack)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect();
        let resources: Vec<StackResourceSummary> = pages.map_err(|e| {
            let text = aws_sdk_cloudformation::error::DisplayErrorContext(&e).to_string();
            if text.contains("does not exist") { SyncError::NoStack(stack.clone()) } else { SyncError::Aws(text) }
        })?;
        for r in resources {
            let (Some(logical), Some(physical)) = (r.logical_resource_id(), r.physical_resource_id()) else { continue };
            let path = if prefix.is_empty() { logical.to_string() } else { format!("{prefix}/{logical}") };
            if r.resource_type() == Some("AWS::CloudFormation::Stack") {
                pending.push((path.clone(), physical.to_string()));
            }
            ids.insert(path, physical.to_string());
        }
    }
    Ok(ids)
}

/// Syncs one function's code from its built artifact folder.
pub async fn sync_function(
    lambda: &aws_sdk_lambda::Client,
    function_name: &str,
    artifact: &Path,
) -> Result<Outcome, SyncError> {
    let zip = package::zip_dir(artifact).map_err(|e| SyncError::Package(e.to_string()))?;
    let local_sha = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zip));
    let aws = |e: String| SyncError::Function { function: function_name.to_string(), message: e };
    let deployed = lambda
        .get_function()
        .function_name(function_name)
        .send()
        .await
        .map_err(|e| aws(aws_sdk_lambda::error::DisplayErrorContext(e).to_string()))?;
    if deployed.configuration().and_then(|c| c.code_sha256()) == Some(local_sha.as_str()) {
        return Ok(Outcome::Unchanged);
    }
    if zip.len() > INLINE_LIMIT {
        return Err(aws(format!(
            "the package is {} MiB, above the 50 MiB Lambda takes inline; code sync through S3 is not supported yet",
            zip.len() / (1024 * 1024)
        )));
    }
    lambda
        .update_function_code()
        .function_name(function_name)
        .zip_file(zip.into())
        .send()
        .await
        .map_err(|e| aws(aws_sdk_lambda::error::DisplayErrorContext(e).to_string()))?;
    wait_for_update(lambda, function_name).await?;
    Ok(Outcome::Updated)
}

/// Polls until `LastUpdateStatus` leaves `InProgress`; `Failed` is an error.
async fn wait_for_update(lambda: &aws_sdk_lambda::Client, function_name: &str) -> Result<(), SyncError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        let config = lambda.get_function_configuration().function_name(function_name).send().await.map_err(|e| {
            SyncError::Function {
                function: function_name.to_string(),
                message: aws_sdk_lambda::error::DisplayErrorContext(e).to_string(),
            }
        })?;
        match config.last_update_status() {
            Some(LastUpdateStatus::InProgress) => {}
            Some(LastUpdateStatus::Failed) => {
                let reason = config.last_update_status_reason().unwrap_or("no reason given");
                return Err(SyncError::Function {
                    function: function_name.to_string(),
                    message: format!("the code update failed: {reason}"),
                });
            }
            _ => return Ok(()),
        }
        if started.elapsed() > UPDATE_TIMEOUT {
            return Err(SyncError::Function {
                function: function_name.to_string(),
                message: format!("the code update was still in progress after {} s", UPDATE_TIMEOUT.as_secs()),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}
