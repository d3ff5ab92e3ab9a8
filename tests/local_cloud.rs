//! The local cloud deploys SAM templates for real: these tests drive it
//! through accel's own AWS client setup (path-style S3 included).

mod support;

use std::io::Write;

use aws_sdk_cloudformation::types::{Capability, StackStatus};
use support::LocalCloud;

const APP: &str = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'hi'}\n";

fn zip_of(name: &str, source: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(source.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

async fn upload(aws: &accel::aws::Aws, bucket: &str, key: &str, body: Vec<u8>) {
    let s3 = aws.s3();
    // Creating a bucket twice in us-east-1 is fine; only the first call creates it.
    let _ = s3.create_bucket().bucket(bucket).send().await;
    s3.put_object().bucket(bucket).key(key).body(body.into()).send().await.expect("put_object");
}

async fn deploy(aws: &accel::aws::Aws, stack: &str, template: &str, update: bool) -> StackStatus {
    let cfn = aws.cloudformation();
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

/// Physical ids of a stack's resources of one type.
async fn physical_ids(aws: &accel::aws::Aws, stack: &str, resource_type: &str) -> Vec<String> {
    let listed = aws.cloudformation().list_stack_resources().stack_name(stack).send().await.expect("list");
    listed
        .stack_resource_summaries()
        .iter()
        .filter(|r| r.resource_type() == Some(resource_type))
        .filter_map(|r| r.physical_resource_id().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sam_template_with_api_functions_and_state_machine_deploys() {
    let cloud = LocalCloud::shared();
    let aws = cloud.aws().await;
    upload(&aws, "accel-test-code", "app.zip", zip_of("app.py", APP)).await;
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
    assert_eq!(deploy(&aws, "accel-basic", template, false).await, StackStatus::CreateComplete);

    let functions = physical_ids(&aws, "accel-basic", "AWS::Lambda::Function").await;
    assert_eq!(functions.len(), 2, "{functions:?}");
    for name in &functions {
        let got = aws.lambda().get_function().function_name(name).send().await.expect("function exists");
        let config = got.configuration().unwrap();
        assert_eq!(config.runtime().map(|r| r.as_str()), Some("python3.12"));
        let env = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
        assert_eq!(env.get("STAGE").map(String::as_str), Some("dev"), "Globals and !Ref Stage went through");
    }
    assert_eq!(physical_ids(&aws, "accel-basic", "AWS::StepFunctions::StateMachine").await.len(), 1);
    let apis = physical_ids(&aws, "accel-basic", "AWS::ApiGateway::RestApi").await;
    assert_eq!(apis.len(), 1, "the implicit ServerlessRestApi");
    aws.apigateway().get_rest_api().rest_api_id(&apis[0]).send().await.expect("rest api exists");

    let outputs = aws.cloudformation().describe_stacks().stack_name("accel-basic").send().await.unwrap();
    let api_url = outputs.stacks()[0].outputs()[0].output_value().unwrap().to_string();
    assert_eq!(api_url, format!("https://{}.execute-api.us-east-1.amazonaws.com/Prod/", apis[0]));
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_stack_outputs_feed_a_layer_and_survive_an_update() {
    // The shape of sam's auto dependency layer: a nested stack (TemplateURL on
    // the loopback endpoint) whose output, a layer ARN, a function uses.
    let cloud = LocalCloud::shared();
    let aws = cloud.aws().await;
    upload(&aws, "accel-test-nested", "app.zip", zip_of("app.py", APP)).await;
    let child = "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  DepLayer:\n    Type: AWS::Lambda::LayerVersion\n    Properties:\n      LayerName: deps\n      Content: {S3Bucket: accel-test-nested, S3Key: app.zip}\nOutputs:\n  DepLayer:\n    Value: !Ref DepLayer\n";
    upload(&aws, "accel-test-nested", "child.template", child.as_bytes().to_vec()).await;
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
            endpoint = cloud.endpoint()
        )
    };
    assert_eq!(deploy(&aws, "accel-nested", &template(128), false).await, StackStatus::CreateComplete);
    assert_eq!(deploy(&aws, "accel-nested", &template(256), true).await, StackStatus::UpdateComplete);

    let functions = physical_ids(&aws, "accel-nested", "AWS::Lambda::Function").await;
    let config = aws.lambda().get_function().function_name(&functions[0]).send().await.unwrap();
    let config = config.configuration().unwrap();
    assert_eq!(config.memory_size(), Some(256));
    let layers: Vec<&str> = config.layers().iter().filter_map(|l| l.arn()).collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    assert!(layers[0].starts_with("arn:aws:lambda:us-east-1:123456789012:layer:"), "{layers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn packaging_uploads_once_per_content() {
    let cloud = LocalCloud::shared();
    let aws = cloud.aws().await;
    let s3 = aws.s3();
    s3.create_bucket().bucket("accel-test-package").send().await.expect("create bucket");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), APP).unwrap();

    let uploader = accel::package::Uploader::new(s3.clone(), "accel-test-package");
    let key = format!("blog/{}", accel::package::dir_checksum(dir.path()).unwrap());
    let body = accel::package::zip_dir(dir.path()).unwrap();
    use accel::package::Upload;
    assert_eq!(uploader.upload_with(&key, None, || Ok(body.clone())).await.unwrap(), Upload::Uploaded);
    assert_eq!(
        uploader.upload_with(&key, None, || Ok(body.clone())).await.unwrap(),
        Upload::Skipped,
        "same content, no upload"
    );

    let stored = s3.get_object().bucket("accel-test-package").key(&key).send().await.unwrap();
    assert!(key.starts_with("blog/") && key.len() == "blog/".len() + 32, "{key}");
    assert_eq!(stored.server_side_encryption().map(|e| e.as_str()), Some("AES256"));
    assert_eq!(stored.body.collect().await.unwrap().into_bytes().to_vec(), body);
}
