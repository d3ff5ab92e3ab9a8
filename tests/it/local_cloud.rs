//! The local cloud deploys SAM templates for real: these tests drive it
//! through the AWS SDK (path-style S3 included), and check what `accel sync`
//! leaves in S3.

use aws_sdk_cloudformation::types::{Capability, StackStatus};

use crate::support::{TestContext, files_of, unzip, zip_of};

const APP: &str = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'hi'}\n";

async fn upload(ctx: &TestContext, bucket: &str, key: &str, body: Vec<u8>) {
    let s3 = ctx.s3();
    // Creating a bucket twice in us-east-1 is fine; only the first call creates it.
    let _ = s3.create_bucket().bucket(bucket).send().await;
    s3.put_object().bucket(bucket).key(key).body(body.into()).send().await.expect("put_object");
}

async fn deploy(ctx: &TestContext, stack: &str, template: &str, update: bool) -> StackStatus {
    let cfn = ctx.cfn();
    let capabilities = [Capability::CapabilityIam, Capability::CapabilityAutoExpand];
    if update {
        cfn.update_stack()
            .stack_name(stack)
            .template_body(template)
            .set_capabilities(Some(capabilities.to_vec()))
            .send()
            .await
            .expect("update_stack");
    } else {
        cfn.create_stack()
            .stack_name(stack)
            .template_body(template)
            .set_capabilities(Some(capabilities.to_vec()))
            .send()
            .await
            .expect("create_stack");
    }
    for _ in 0..100 {
        let described = cfn.describe_stacks().stack_name(stack).send().await.expect("describe_stacks");
        let status = described.stacks()[0].stack_status().cloned().expect("status");
        if !status.as_str().ends_with("IN_PROGRESS") {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("stack {stack} did not settle");
}

#[tokio::test(flavor = "multi_thread")]
async fn sam_template_with_api_functions_and_state_machine_deploys() {
    let ctx = TestContext::new().with_cloud();
    upload(&ctx, "accel-test-code", "app.zip", zip_of(&[("app.py", APP)])).await;
    let template = r#"
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev}
Globals:
  Function:
    Runtime: python3.12
    Handler: app.handler
    CodeUri: s3://accel-test-code/app.zip
    Environment: {Variables: {STAGE: !Ref Stage}}
Resources:
  HelloFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Hello: {Type: Api, Properties: {Path: /hello, Method: get}}
  GreetingFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Greet: {Type: Api, Properties: {Path: /greet, Method: get}}
  Flow:
    Type: AWS::Serverless::StateMachine
    Properties:
      Definition:
        StartAt: Hello
        States:
          Hello: {Type: Task, Resource: !GetAtt HelloFunction.Arn, End: true}
      Policies:
        - LambdaInvokePolicy: {FunctionName: !Ref HelloFunction}
Outputs:
  Api:
    Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/"
"#;
    assert_eq!(deploy(&ctx, "accel-basic", template, false).await, StackStatus::CreateComplete);

    let functions = ctx.physical_ids_of_type("accel-basic", "AWS::Lambda::Function").await;
    assert_eq!(functions.len(), 2, "{functions:?}");
    for name in &functions {
        let got = ctx.lambda().get_function().function_name(name).send().await.expect("function exists");
        let config = got.configuration().unwrap();
        assert_eq!(config.runtime().map(|r| r.as_str()), Some("python3.12"));
        let env = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
        assert_eq!(env.get("STAGE").map(String::as_str), Some("dev"), "Globals and !Ref Stage went through");
    }
    assert_eq!(ctx.physical_ids_of_type("accel-basic", "AWS::StepFunctions::StateMachine").await.len(), 1);
    let apis = ctx.physical_ids_of_type("accel-basic", "AWS::ApiGateway::RestApi").await;
    assert_eq!(apis.len(), 1, "the implicit ServerlessRestApi");
    ctx.apigateway().get_rest_api().rest_api_id(&apis[0]).send().await.expect("rest api exists");

    let outputs = ctx.cfn().describe_stacks().stack_name("accel-basic").send().await.unwrap();
    let api_url = outputs.stacks()[0].outputs()[0].output_value().unwrap().to_string();
    assert_eq!(api_url, format!("https://{}.execute-api.us-east-1.amazonaws.com/Prod/", apis[0]));
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_stack_outputs_feed_a_layer_and_survive_an_update() {
    // The shape of sam's auto dependency layer: a nested stack (TemplateURL on
    // the loopback endpoint) whose output, a layer ARN, a function uses.
    let ctx = TestContext::new().with_cloud();
    upload(&ctx, "accel-test-nested", "app.zip", zip_of(&[("app.py", APP)])).await;
    let child = "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  DepLayer:\n    Type: AWS::Lambda::LayerVersion\n    Properties:\n      LayerName: deps\n      Content: {S3Bucket: accel-test-nested, S3Key: app.zip}\nOutputs:\n  DepLayer:\n    Value: !Ref DepLayer\n";
    upload(&ctx, "accel-test-nested", "child.template", child.as_bytes().to_vec()).await;
    let template = |memory: u32| {
        format!(
            r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Deps:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: {endpoint}/accel-test-nested/child.template
  HelloFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      MemorySize: {memory}
      CodeUri: s3://accel-test-nested/app.zip
      Layers:
        - Fn::GetAtt: [Deps, Outputs.DepLayer]
"#,
            endpoint = ctx.cloud().endpoint()
        )
    };
    assert_eq!(deploy(&ctx, "accel-nested", &template(128), false).await, StackStatus::CreateComplete);
    assert_eq!(deploy(&ctx, "accel-nested", &template(256), true).await, StackStatus::UpdateComplete);

    let functions = ctx.physical_ids_of_type("accel-nested", "AWS::Lambda::Function").await;
    let config = ctx.lambda().get_function().function_name(&functions[0]).send().await.unwrap();
    let config = config.configuration().unwrap();
    assert_eq!(config.memory_size(), Some(256));
    let layers: Vec<&str> = config.layers().iter().filter_map(|l| l.arn()).collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    assert!(layers[0].starts_with("arn:aws:lambda:us-east-1:123456789012:layer:"), "{layers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn packaging_uploads_once_per_content() {
    let ctx = TestContext::from_fixture("templates/blog").with_cloud();
    let s3 = ctx.s3();
    s3.create_bucket().bucket("accel-test-package").send().await.expect("create bucket");
    let args = ["sync", "--stack-name", "accel-package", "--s3-bucket", "accel-test-package", "--s3-prefix", "blog"];
    let first = ctx.accel(&args).stdin("y\n").assert_success();
    assert!(first.calls.iter().any(|c| c.starts_with("s3:PUT")), "{:?}", first.calls);

    // Keys are content hashes under the prefix, as sam names them.
    let listed = s3.list_objects_v2().bucket("accel-test-package").send().await.unwrap();
    let keys: Vec<String> = listed.contents().iter().filter_map(|o| o.key()).map(str::to_string).collect();
    assert!(!keys.is_empty());
    for key in &keys {
        let name = key.strip_prefix("blog/").unwrap_or_else(|| panic!("{key} is not under the prefix"));
        let hash = name.strip_suffix(".template").unwrap_or(name);
        assert!(hash.len() == 32 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{key}");
    }

    // Each function's code: stored with SSE (AES256), holding exactly the built folder.
    for function in ["HelloWorldFunction", "GreetingFunction"] {
        // With the dependency layer (sync's default), code is built apart from its dependencies.
        let built = files_of(&ctx.join(".aws-sam/auto-dependency-layer").join(function));
        let mut found = false;
        for key in keys.iter().filter(|k| !k.ends_with(".template")) {
            let stored = s3.get_object().bucket("accel-test-package").key(key).send().await.unwrap();
            let encryption = stored.server_side_encryption().map(|e| e.as_str().to_string());
            if unzip(&stored.body.collect().await.unwrap().into_bytes()) == built {
                assert_eq!(encryption.as_deref(), Some("AES256"), "{key}");
                found = true;
            }
        }
        assert!(found, "no object holds {function}'s build: {keys:?}");
    }

    // Same content: nothing uploaded again.
    let mut again = args.to_vec();
    again.push("--no-skip-deploy-sync");
    let again = ctx.accel(&again).assert_success();
    assert!(!again.calls.iter().any(|c| c.starts_with("s3:PUT")), "same content, no upload: {:?}", again.calls);
}

/// Past a rate quota each service answers its own throttling error, and the
/// AWS SDK takes it for throttling by its code: a 400 or 429 is retried only
/// then, so a client allowed two attempts sends the refused call twice.
/// API Gateway with its published CreateDeployment quota (one call every
/// 5 s); CloudWatch Logs and CloudFormation with a test quota of one call
/// every 5 s (CloudFormation publishes none).
#[tokio::test(flavor = "multi_thread")]
async fn past_a_rate_quota_each_service_answers_its_own_throttling_error() {
    use aws_config::retry::RetryConfig;
    use aws_sdk_cloudformation::error::ProvideErrorMetadata;
    let ctx = TestContext::new().with_cloud();
    ctx.set_quotas(&serde_json::json!({"logs:DescribeLogGroups": 0.2, "cloudformation:DescribeStacks": 0.2}));
    let config = ctx.own_sdk();
    let retries = |attempts: u32| match attempts {
        1 => RetryConfig::disabled(),
        n => RetryConfig::standard().with_max_attempts(n),
    };
    let sent = |ctx: &TestContext, call: &str| ctx.calls().iter().filter(|c| c.as_str() == call).count();

    // CloudFormation: 400, query protocol, code Throttling.
    let cfn = |attempts| {
        let conf = aws_sdk_cloudformation::config::Builder::from(&config).retry_config(retries(attempts));
        aws_sdk_cloudformation::Client::from_conf(conf.build())
    };
    cfn(1).describe_stacks().send().await.expect("within the quota");
    let refused = cfn(1).describe_stacks().send().await.expect_err("past the quota");
    assert_eq!(refused.raw_response().map(|r| r.status().as_u16()), Some(400));
    assert_eq!(refused.code(), Some("Throttling"));
    assert_eq!(refused.message(), Some("Rate exceeded"));
    let before = sent(&ctx, "cloudformation:DescribeStacks");
    let _ = cfn(2).describe_stacks().send().await;
    assert_eq!(sent(&ctx, "cloudformation:DescribeStacks") - before, 2, "the SDK retried Throttling");

    // CloudWatch Logs: 400, JSON 1.1, ThrottlingException.
    let logs = |attempts| {
        let conf = aws_sdk_cloudwatchlogs::config::Builder::from(&config).retry_config(retries(attempts));
        aws_sdk_cloudwatchlogs::Client::from_conf(conf.build())
    };
    logs(1).describe_log_groups().send().await.expect("within the quota");
    let refused = logs(1).describe_log_groups().send().await.expect_err("past the quota");
    assert_eq!(refused.raw_response().map(|r| r.status().as_u16()), Some(400));
    assert_eq!(refused.code(), Some("ThrottlingException"));
    let before = sent(&ctx, "logs:DescribeLogGroups");
    let _ = logs(2).describe_log_groups().send().await;
    assert_eq!(sent(&ctx, "logs:DescribeLogGroups") - before, 2, "the SDK retried ThrottlingException");

    // API Gateway: 429, REST JSON, TooManyRequestsException.
    let api = |attempts| {
        let conf = aws_sdk_apigateway::config::Builder::from(&config).retry_config(retries(attempts));
        aws_sdk_apigateway::Client::from_conf(conf.build())
    };
    let id = api(1).create_rest_api().name("quota").send().await.expect("create_rest_api").id().unwrap().to_string();
    // The first deployment takes the quota's call (and fails: the API has no method yet).
    let _ = api(1).create_deployment().rest_api_id(&id).stage_name("s").send().await;
    let refused = api(1).create_deployment().rest_api_id(&id).stage_name("s").send().await.expect_err("past");
    assert_eq!(refused.raw_response().map(|r| r.status().as_u16()), Some(429));
    assert_eq!(refused.code(), Some("TooManyRequestsException"));
    let deployments = format!("apigateway:POST /restapis/{id}/deployments");
    let before = sent(&ctx, &deployments);
    let _ = api(2).create_deployment().rest_api_id(&id).stage_name("s").send().await;
    assert_eq!(sent(&ctx, &deployments) - before, 2, "the SDK retried TooManyRequestsException");
    assert_eq!(ctx.throttled().len(), 9, "three refusals per service: {:?}", ctx.throttled());
}
