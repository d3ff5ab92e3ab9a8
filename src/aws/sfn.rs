//! Step Functions calls: a state machine's definition (code sync) and its
//! logging destinations (`accel logs`).

use super::error::{CallError, CallResult};

/// Replaces a state machine's definition.
pub(crate) async fn update_definition(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    definition: String,
) -> Result<(), CallError> {
    sfn.update_state_machine()
        .state_machine_arn(arn)
        .definition(definition)
        .send()
        .await
        .call("Step Functions", "UpdateStateMachine")?;
    Ok(())
}

/// The log group ARNs a state machine writes to.
pub(crate) async fn log_group_arns(sfn: &aws_sdk_sfn::Client, arn: &str) -> Result<Vec<String>, CallError> {
    let machine = sfn
        .describe_state_machine()
        .state_machine_arn(arn)
        .send()
        .await
        .call("Step Functions", "DescribeStateMachine")?;
    Ok(machine
        .logging_configuration()
        .map(|l| l.destinations())
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.cloud_watch_logs_log_group()?.log_group_arn())
        .map(str::to_string)
        .collect())
}
