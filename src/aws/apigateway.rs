//! API Gateway calls of a code sync: a REST API's definition and its stage
//! deployments, an HTTP API's re-import, and the stages `accel logs` reads.

use aws_sdk_apigateway::types::PutMode;

use super::error::{CallError, CallResult};

/// Overwrites a REST API with `body`, then deploys it to each of `stages`
/// (a deployment with a stage name moves an existing stage to it) and
/// deletes the stage's previous deployment unless another stage uses it.
pub(crate) async fn put_rest_api(
    api: &aws_sdk_apigateway::Client,
    id: &str,
    body: Vec<u8>,
    stages: &[String],
) -> Result<(), CallError> {
    let put = api.put_rest_api().rest_api_id(id).mode(PutMode::Overwrite);
    put.body(body.into()).send().await.call("API Gateway", "PutRestApi")?;
    for stage in stages {
        let old = api.get_stage().rest_api_id(id).stage_name(stage).send().await.ok();
        let deployment = api.create_deployment().rest_api_id(id).stage_name(stage).description("Created by accel sync");
        let deployment = deployment.send().await.call("API Gateway", "CreateDeployment")?;
        if let Some(old_id) = old.as_ref().and_then(|o| o.deployment_id()).filter(|o| Some(*o) != deployment.id()) {
            // Best effort: a deployment still serving another stage cannot go.
            let _ = api.delete_deployment().rest_api_id(id).deployment_id(old_id).send().await;
        }
    }
    Ok(())
}

/// Re-imports an HTTP API from its OpenAPI `body`.
pub(crate) async fn reimport_http_api(
    api: &aws_sdk_apigatewayv2::Client,
    id: &str,
    body: String,
) -> Result<(), CallError> {
    api.reimport_api().api_id(id).body(body).send().await.call("API Gateway v2", "ReimportApi")?;
    Ok(())
}

/// The stage names of a REST API.
pub(crate) async fn rest_api_stages(api: &aws_sdk_apigateway::Client, id: &str) -> Result<Vec<String>, CallError> {
    let stages = api.get_stages().rest_api_id(id).send().await.call("API Gateway", "GetStages")?;
    Ok(stages.item().iter().filter_map(|s| s.stage_name()).map(str::to_string).collect())
}

/// The access log destinations (log group ARNs) of an HTTP API's stages.
pub(crate) async fn http_api_log_destinations(
    api: &aws_sdk_apigatewayv2::Client,
    id: &str,
) -> Result<Vec<String>, CallError> {
    let stages = api.get_stages().api_id(id).send().await.call("API Gateway v2", "GetStages")?;
    Ok(stages
        .items()
        .iter()
        .filter_map(|s| s.access_log_settings().and_then(|a| a.destination_arn()))
        .map(str::to_string)
        .collect())
}
