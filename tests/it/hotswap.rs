//! Hotswap (issue 15): configuration changes pushed through Lambda's API
//! instead of CloudFormation, each counted from the local cloud's call log
//! (no `UpdateStack`), the drift it causes remembered and reconciled by the
//! next plain sync, and `--dry-run` showing the plan without one mutating call.

use crate::support::{RunOutput, TestContext};

const TEMPLATE: &str = "Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Handler: app.handler
    Environment:
      Variables:
        LEVEL: debug
Parameters:
  Stage:
    Type: String
    Default: dev
Resources:
  A:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: a/
      Role: !GetAtt ARole.Arn
      AutoPublishAlias: live
      Description: first
      MemorySize: 128
      Timeout: 3
      Environment:
        Variables:
          MODE: one
          STAGE: !Ref Stage
          TABLE: !Ref Table
  B:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: b/
  Libs:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: libs/
  Table:
    Type: AWS::SNS::Topic
  ARole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: 'sts:AssumeRole'}]
";

fn project() -> TestContext {
    let ctx = TestContext::new().with_cloud();
    ctx.write("template.yaml", TEMPLATE);
    ctx.write("a/app.py", "def handler(e, c):\n    return 'a'\n");
    ctx.write("a/app2.py", "def handler(e, c):\n    return 'a2'\n");
    ctx.write("b/app.py", "def handler(e, c):\n    return 'b'\n");
    ctx.write("libs/python/shared.py", "X = 1\n");
    ctx
}

fn sync(ctx: &TestContext, args: &[&str]) -> RunOutput {
    let mut all = vec!["sync", "--no-dependency-layer"];
    all.extend(args);
    let out = ctx.accel(&all).stdin("y\n").run();
    assert_eq!(out.code, Some(0), "{out}");
    out
}

fn count(out: &RunOutput, call: &str) -> usize {
    out.calls.iter().filter(|c| c.contains(call)).count()
}

/// `PUT …/configuration` is UpdateFunctionConfiguration.
const UPDATE_CONFIGURATION: &str = "lambda:PUT /2015-03-31/functions/";

fn config_updates(out: &RunOutput) -> usize {
    config_calls(&out.calls)
}

/// Whether a logged call only reads (`Describe*`, `Get*`, `List*`, GET, HEAD).
fn reads_only(call: &str) -> bool {
    let action = call.split_once(':').map_or(call, |(_, a)| a);
    ["Describe", "Get", "List", "GET ", "HEAD "].iter().any(|p| action.starts_with(p))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_hotswappable_property_changes_through_lambda_without_cloudformation() {
    let ctx = project();
    const STACK: &str = "hotswap-each";
    sync(&ctx, &["--stack-name", STACK]);
    let lambda = ctx.lambda();
    let name = ctx.physical_id(STACK, "A").await;
    let layer = ctx.physical_ids_of_type(STACK, "AWS::Lambda::LayerVersion").await.remove(0);
    let edits: [(&str, &str, &str); 10] = [
        ("Environment", "MODE: one", "MODE: two"),
        ("Description", "Description: first", "Description: second"),
        ("MemorySize", "MemorySize: 128", "MemorySize: 256"),
        ("Timeout", "Timeout: 3", "Timeout: 30"),
        ("Handler", "CodeUri: a/\n", "CodeUri: a/\n      Handler: app2.handler\n"),
        ("Runtime", "CodeUri: a/\n", "CodeUri: a/\n      Runtime: python3.11\n"),
        ("Layers", "CodeUri: a/\n", "CodeUri: a/\n      Layers: [!Ref Libs]\n"),
        ("EphemeralStorage", "CodeUri: a/\n", "CodeUri: a/\n      EphemeralStorage: {Size: 1024}\n"),
        ("Tracing", "CodeUri: a/\n", "CodeUri: a/\n      Tracing: Active\n"),
        (
            "LoggingConfig",
            "CodeUri: a/\n",
            "CodeUri: a/\n      LoggingConfig: {LogFormat: JSON, ApplicationLogLevel: DEBUG}\n",
        ),
    ];
    for (property, from, to) in edits {
        ctx.replace("template.yaml", from, to);
        let out = sync(&ctx, &["--stack-name", STACK, "--hotswap"]);
        let text = out.text();
        assert!(text.contains(&format!("config ({property})")) && text.contains("hotswapped in"), "{property}: {text}");
        assert_eq!(count(&out, "UpdateStack"), 0, "{property}: no CloudFormation deploy: {:?}", out.calls);
        assert_eq!(config_updates(&out), 1, "{property}: one call: {:?}", out.calls);
        assert!(text.contains("CloudFormation is behind for A"), "{text}");
    }
    let config = lambda.get_function_configuration().function_name(&name).send().await.unwrap();
    let variables = config.environment().and_then(|e| e.variables()).unwrap();
    assert_eq!(variables["MODE"], "two");
    assert_eq!(variables["LEVEL"], "debug", "Globals merged");
    assert_eq!(variables["STAGE"], "dev", "a parameter from the deployed stack");
    assert!(variables["TABLE"].starts_with("arn:aws:sns:"), "Ref of a topic is its ARN: {variables:?}");
    assert_eq!(config.description(), Some("second"));
    assert_eq!(config.memory_size(), Some(256));
    assert_eq!(config.timeout(), Some(30));
    assert_eq!(config.handler(), Some("app2.handler"));
    assert_eq!(config.runtime().map(|r| r.as_str()), Some("python3.11"));
    let layers: Vec<&str> = config.layers().iter().filter_map(|l| l.arn()).collect();
    assert_eq!(layers, [layer.as_str()]);
    assert_eq!(config.ephemeral_storage().map(|e| e.size()), Some(1024));
    assert_eq!(config.tracing_config().and_then(|t| t.mode()).map(|m| m.as_str()), Some("Active"));
    let logging = config.logging_config().unwrap();
    assert_eq!(logging.log_format().map(|f| f.as_str()), Some("JSON"));
    assert_eq!(logging.application_log_level().map(|l| l.as_str()), Some("DEBUG"));

    // AutoPublishAlias: the alias moved to a version with the new configuration.
    let alias = lambda.get_alias().function_name(&name).name("live").send().await.unwrap();
    let version = alias.function_version().unwrap();
    let published = lambda.get_function_configuration().function_name(&name).qualifier(version).send().await.unwrap();
    assert_eq!(published.memory_size(), Some(256), "alias at version {version}");

    // The next plain sync deploys the template (the hotswaps are owed) and
    // then owes nothing: the one after skips the deploy.
    let plain = sync(&ctx, &["--stack-name", STACK]);
    assert_eq!(count(&plain, "UpdateStack"), 1, "{plain}");
    assert!(!ctx.read(".aws-sam/accel-hotswap.json").contains("\"A\""));
    let again = sync(&ctx, &["--stack-name", STACK]);
    assert_eq!(count(&again, "UpdateStack"), 0, "{again}");
    assert!(again.text().contains("skipping infra sync"), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_globals_edit_reaches_every_function_and_an_undone_hotswap_is_reconciled() {
    let ctx = project();
    const STACK: &str = "hotswap-globals";
    sync(&ctx, &["--stack-name", STACK]);
    ctx.replace("template.yaml", "LEVEL: debug", "LEVEL: info");
    let out = sync(&ctx, &["--stack-name", STACK, "--hotswap"]);
    assert_eq!(config_updates(&out), 2, "A and B: {:?}", out.calls);
    assert_eq!(count(&out, "UpdateStack"), 0);
    for function in ["A", "B"] {
        let config = ctx.function(STACK, function).await;
        assert_eq!(config.environment().and_then(|e| e.variables()).unwrap()["LEVEL"], "info", "{function}");
    }
    // Undo the edit: CloudFormation's template is what the file says again,
    // so only the reconciliation after the deploy sets LEVEL back.
    ctx.replace("template.yaml", "LEVEL: info", "LEVEL: debug");
    let plain = sync(&ctx, &["--stack-name", STACK]);
    assert!(plain.text().contains("was hotswapped since the last deploy"), "{plain}");
    for function in ["A", "B"] {
        let config = ctx.function(STACK, function).await;
        assert_eq!(config.environment().and_then(|e| e.variables()).unwrap()["LEVEL"], "debug", "{function}");
    }
    assert!(!plain.text().contains("CloudFormation is behind"), "{plain}");

    // The same undo with --hotswap: the functions go back without a deploy.
    ctx.replace("template.yaml", "LEVEL: debug", "LEVEL: info");
    sync(&ctx, &["--stack-name", STACK, "--hotswap"]);
    ctx.replace("template.yaml", "LEVEL: info", "LEVEL: debug");
    let undone = sync(&ctx, &["--stack-name", STACK, "--hotswap"]);
    assert_eq!(config_updates(&undone), 2, "{:?}", undone.calls);
    assert_eq!(count(&undone, "UpdateStack"), 0, "{:?}", undone.calls);
    for function in ["A", "B"] {
        let config = ctx.function(STACK, function).await;
        assert_eq!(config.environment().and_then(|e| e.variables()).unwrap()["LEVEL"], "debug", "{function}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn structural_and_unresolvable_changes_deploy_through_cloudformation() {
    let ctx = project();
    const STACK: &str = "hotswap-structural";
    sync(&ctx, &["--stack-name", STACK]);
    // A value only CloudFormation can work out: the whole change deploys.
    ctx.replace("template.yaml", "Description: first", "Description: !GetAtt Table.TopicName");
    let out = sync(&ctx, &["--stack-name", STACK, "--hotswap"]);
    let text = out.text();
    assert!(
        text.contains("A: Description: Table.TopicName is not known from the deployed stack: CloudFormation"),
        "{text}"
    );
    assert_eq!(count(&out, "UpdateStack"), 1, "{:?}", out.calls);
    assert_eq!(config_updates(&out), 0, "{:?}", out.calls);
    // A config change next to a structural one: one deploy carries both.
    ctx.replace("template.yaml", "MemorySize: 128", "MemorySize: 512");
    ctx.replace("template.yaml", "  Table:\n", "  Topic2:\n    Type: AWS::SNS::Topic\n  Table:\n");
    let out = sync(&ctx, &["--stack-name", STACK, "--hotswap"]);
    assert!(out.text().contains("Topic2: added: CloudFormation"), "{out}");
    assert_eq!(count(&out, "UpdateStack"), 1, "{:?}", out.calls);
    assert_eq!(config_updates(&out), 0, "{:?}", out.calls);
    assert_eq!(ctx.function(STACK, "A").await.memory_size(), Some(512));
    // Without --hotswap a configuration edit deploys, as with sam.
    ctx.replace("template.yaml", "MemorySize: 512", "MemorySize: 1024");
    let out = sync(&ctx, &["--stack-name", STACK]);
    assert_eq!(count(&out, "UpdateStack"), 1, "{:?}", out.calls);
    assert_eq!(config_updates(&out), 0, "{:?}", out.calls);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_the_plan_and_changes_nothing() {
    let ctx = project();
    const STACK: &str = "hotswap-dry";
    sync(&ctx, &["--stack-name", STACK]);
    ctx.replace("template.yaml", "MODE: one", "MODE: two");
    ctx.write("b/app.py", "def handler(e, c):\n    return 'b2'\n");
    let out = ctx.accel(&["sync", "--stack-name", STACK, "--no-dependency-layer", "--hotswap", "--dry-run"]).run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.calls.iter().all(|c| reads_only(c)), "only reads: {:?}", out.calls);
    let text = out.stdout.clone();
    assert!(text.contains("  A     config (Environment)  via UpdateFunctionConfiguration (Environment)\n"), "{text}");
    assert!(text.contains("  B     code                  via UpdateFunctionCode\n"), "{text}");
    assert!(text.contains("  Libs  unchanged\n"), "{text}");
    assert!(text.ends_with("CloudFormation deploy: skipped.\n"), "{text}");
    ctx.snapshot_settings().bind(|| insta::assert_snapshot!("dry_run", text));

    let json =
        ctx.accel(&["sync", "--stack-name", STACK, "--no-dependency-layer", "--dry-run", "--output", "json"]).run();
    assert_eq!(json.code, Some(0), "{json}");
    assert!(json.calls.iter().all(|c| reads_only(c)), "only reads: {:?}", json.calls);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(plan["deploy"]["needed"], true, "without --hotswap the configuration edit deploys: {plan}");
    assert_eq!(plan["deploy"]["reason"], "A: Environment changed");

    // The plan shown is the plan run.
    let run = sync(&ctx, &["--stack-name", STACK, "--hotswap"]);
    assert_eq!(config_updates(&run), 1, "{run}");
    assert_eq!(count(&run, "UpdateStack"), 0, "{run}");
}

/// `UpdateFunctionConfiguration` calls in `calls`.
fn config_calls(calls: &[String]) -> usize {
    calls.iter().filter(|c| c.starts_with(UPDATE_CONFIGURATION) && c.ends_with("/configuration")).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_hotswaps_configuration_and_deploys_a_mixed_burst_once() {
    let ctx = project();
    const STACK: &str = "hotswap-watch";
    let watch = ctx.accel(&["sync", "--stack-name", STACK, "--watch", "--no-dependency-layer"]).stdin("y\n").spawn();
    watch.wait_for_stderr("the first sync", |t| t.contains("Sync watch started."));
    let name = ctx.physical_id(STACK, "A").await;

    // An environment edit: hotswapped, no CloudFormation call.
    let before = ctx.calls().len();
    ctx.replace("template.yaml", "MODE: one", "MODE: two");
    watch.wait_for_stderr("the hotswap", |t| t.contains("config (Environment) hotswapped in"));
    watch.wait_for_stderr("the drift note", |t| t.contains("CloudFormation is behind for A"));
    let config = ctx.lambda().get_function_configuration().function_name(&name).send().await.unwrap();
    assert_eq!(config.environment().and_then(|e| e.variables()).unwrap()["MODE"], "two");
    let calls = ctx.calls()[before..].to_vec();
    assert_eq!(config_calls(&calls), 1, "{calls:?}");
    assert!(
        !calls.iter().any(|c| c.contains("cloudformation:Update") || c.contains("cloudformation:Create")),
        "{calls:?}"
    );

    // A configuration edit and a new resource in one save: one deploy
    // carries both, and nothing is hotswapped.
    let before = ctx.calls().len();
    let template = ctx.read("template.yaml").replace("MemorySize: 128", "MemorySize: 512");
    ctx.write("template.yaml", &template.replace("  Table:\n", "  Topic2:\n    Type: AWS::SNS::Topic\n  Table:\n"));
    watch.wait_for_stderr("the infra sync", |t| t.matches("Infra sync completed").count() == 2);
    let calls = ctx.calls()[before..].to_vec();
    assert_eq!(calls.iter().filter(|c| c.ends_with(":UpdateStack")).count(), 1, "{calls:?}");
    assert_eq!(config_calls(&calls), 0, "the deploy sets MODE and MemorySize itself: {calls:?}");
    assert_eq!(ctx.function(STACK, "A").await.memory_size(), Some(512));
    assert!(!ctx.read(".aws-sam/accel-hotswap.json").contains("\"A\""), "nothing owed after the deploy");
    drop(watch);

    // --no-hotswap: sam's behaviour, a configuration edit deploys.
    let watch = ctx
        .accel(&["sync", "--stack-name", STACK, "--watch", "--no-dependency-layer", "--no-hotswap"])
        .stdin("y\n")
        .spawn();
    watch.wait_for_stderr("the first sync", |t| t.contains("Sync watch started."));
    let before = ctx.calls().len();
    ctx.replace("template.yaml", "Timeout: 3", "Timeout: 20");
    watch.wait_for_stderr("the infra sync", |t| t.contains("Infra sync completed"));
    let calls = ctx.calls()[before..].to_vec();
    assert_eq!(calls.iter().filter(|c| c.ends_with(":UpdateStack")).count(), 1, "{calls:?}");
    assert_eq!(config_calls(&calls), 0, "{calls:?}");
    assert_eq!(ctx.function(STACK, "A").await.timeout(), Some(20));
}

const DEFINITIONS: &str = "Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: a/, Handler: app.handler, Runtime: python3.12}
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Role: arn:aws:iam::123456789012:role/machine
      Definition:
        StartAt: Call
        States:
          Call:
            Type: Task
            Resource: !GetAtt Fn.Arn
            Comment: ${Note}
            End: true
      DefinitionSubstitutions:
        Note: first
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      DefinitionBody:
        openapi: '3.0.1'
        info: {title: http, version: '1'}
        paths:
          /one:
            get:
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                payloadFormatVersion: '2.0'
                uri: !Sub 'arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations'
";

#[tokio::test(flavor = "multi_thread")]
async fn inline_definitions_hotswap_through_step_functions_and_api_gateway() {
    let ctx = TestContext::new().with_cloud();
    ctx.write("template.yaml", DEFINITIONS);
    ctx.write("a/app.py", "def handler(e, c):\n    return 'a'\n");
    const STACK: &str = "hotswap-definitions";
    sync(&ctx, &["--stack-name", STACK]);
    let function_arn = ctx.function(STACK, "Fn").await.function_arn().unwrap().to_string();

    ctx.replace("template.yaml", "Note: first", "Note: second");
    ctx.replace("template.yaml", "          /one:", "          /two:");
    let out = sync(&ctx, &["--stack-name", STACK, "--hotswap"]);
    let text = out.text();
    assert!(text.contains("definition (DefinitionSubstitutions) hotswapped in"), "{text}");
    assert!(text.contains("api (DefinitionBody) hotswapped in"), "{text}");
    assert_eq!(count(&out, "UpdateStack"), 0, "{:?}", out.calls);

    let machine = ctx.physical_id(STACK, "Machine").await;
    let described = ctx.sfn().describe_state_machine().state_machine_arn(&machine).send().await.unwrap();
    let definition: serde_json::Value = serde_json::from_str(described.definition()).unwrap();
    assert_eq!(definition["States"]["Call"]["Comment"], "second");
    assert_eq!(definition["States"]["Call"]["Resource"], function_arn.as_str(), "GetAtt from the deployed stack");

    let api = ctx.physical_id(STACK, "Http").await;
    let routes = ctx.apigatewayv2().get_routes().api_id(&api).send().await.unwrap();
    let keys: Vec<&str> = routes.items().iter().filter_map(|r| r.route_key()).collect();
    assert_eq!(keys, ["GET /two"], "the reimported definition");
    assert!(text.contains("CloudFormation is behind for Http, Machine"), "{text}");
}
