//! `Fn::ForEach` (AWS::LanguageExtensions, issue 13 item 15): every
//! generated function is built, the built template keeps the loops exactly
//! as sam 1.170 writes them (scripts/parity checks the bytes of the whole
//! tree), bad loops are one error naming the loop, and `sync --code` finds
//! the generated functions in the deployed stack.

use aws_sdk_cloudformation::types::Capability;

use crate::support::{RunOutput, TestContext, zip_of};

const APP: &str = "tests/fixtures/apps/foreach-app";

/// What `sam build --language-extensions` writes for the app (sam 1.170.0).
const SAM_TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform:
- AWS::LanguageExtensions
- AWS::Serverless-2016-10-31
Description: Fn::ForEach shapes accel builds as sam does
Parameters:
  HandlerNames:
    Type: CommaDelimitedList
    Default: Orders,Users
  Stage:
    Type: String
    Default: dev
Globals:
  Function:
    Runtime: python3.11
    Timeout: 5
Resources:
  Fn::ForEach::Workers:
  - Worker
  - - Resize
    - Thumbnail
  - ${Worker}Worker:
      Type: AWS::Serverless::Function
      Properties:
        CodeUri: ResizeWorker
        Handler: app.handler
        FunctionName:
          Fn::Sub: ${Stage}-${Worker}
        Environment:
          Variables:
            WORKER: ${Worker}
  Fn::ForEach::Handlers:
  - Name
  - Ref: HandlerNames
  - ${Name}Handler:
      Type: AWS::Serverless::Function
      Properties:
        CodeUri:
          Fn::FindInMap:
          - SAMCodeUriHandlers
          - Ref: Name
          - CodeUri
        Handler: main.handler
        FunctionName:
          Fn::Sub: ${Stage}-${Name}-handler
  Fn::ForEach::Envs:
  - Env
  - - Dev
    - Prod
  - Fn::ForEach::Services:
    - Service
    - - Billing
      - Search
    - ${Env}${Service}Function:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri:
            Fn::FindInMap:
            - SAMCodeUriEnvsServices
            - Ref: Service
            - CodeUri
          Handler: main.handler
          Environment:
            Variables:
              ENV_NAME:
                Fn::Sub: ${Env}
  Fn::ForEach::Topics:
  - Topic
  - - order.created
    - order.paid
  - Topic&{Topic}:
      Type: AWS::SNS::Topic
      Properties:
        TopicName: ${Topic}
  Fn::ForEach::Layers:
  - Layer
  - - utils
    - models
  - ${Layer}Layer:
      Type: AWS::Serverless::LayerVersion
      Properties:
        ContentUri:
          Fn::FindInMap:
          - SAMContentUriLayers
          - Ref: Layer
          - ContentUri
      Metadata:
        BuildMethod: python3.11
  Fn::ForEach::Apis:
  - Api
  - - public
    - admin
  - ${Api}Api:
      Type: AWS::Serverless::Api
      Properties:
        StageName: prod
        DefinitionUri: ../../apis/${Api}.yaml
  Plain:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: Plain
      Handler: app.handler
Outputs:
  Fn::ForEach::WorkerArns:
  - Worker
  - - Resize
    - Thumbnail
  - ${Worker}Arn:
      Value:
        Fn::GetAtt:
        - ${Worker}Worker
        - Arn
Mappings:
  SAMCodeUriEnvsServices:
    Billing:
      CodeUri: DevBillingFunction
    Search:
      CodeUri: DevSearchFunction
  SAMCodeUriHandlers:
    Orders:
      CodeUri: OrdersHandler
    Users:
      CodeUri: UsersHandler
  SAMContentUriLayers:
    models:
      ContentUri: modelsLayer
    utils:
      ContentUri: utilsLayer
"#;

/// The folders of `.aws-sam/build`, sorted.
fn built(ctx: &TestContext) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ctx.join(".aws-sam/build"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "template.yaml")
        .collect();
    names.sort();
    names
}

/// The one `Error:` line of a failed run (exit 1, no panic).
fn error_line(out: &RunOutput) -> String {
    assert_eq!(out.code, Some(1), "{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "{out}");
    errors[0].to_string()
}

#[test]
fn builds_every_generated_function_and_writes_the_loops_back_as_sam() {
    let ctx = TestContext::from_fixture(APP);
    ctx.accel(&["build", "--language-extensions"]).assert_success();
    assert_eq!(
        built(&ctx),
        [
            "DevBillingFunction",
            "DevSearchFunction",
            "OrdersHandler",
            "Plain",
            "ProdBillingFunction",
            "ProdSearchFunction",
            "ResizeWorker",
            "ThumbnailWorker",
            "UsersHandler",
            "modelsLayer",
            "utilsLayer"
        ]
    );
    assert!(ctx.read(".aws-sam/build/modelsLayer/python/models.py").contains("MODELS"));
    // Dynamic CodeUri: each function has its own folder's code.
    assert!(ctx.read(".aws-sam/build/UsersHandler/main.py").contains("handlers/Users"));
    assert!(ctx.read(".aws-sam/build/ProdSearchFunction/main.py").contains("services/Search"));
    // Static CodeUri: the shared folder, in each generated function.
    assert!(ctx.read(".aws-sam/build/ThumbnailWorker/app.py").contains("shared"));
    assert_eq!(ctx.read(".aws-sam/build/template.yaml"), SAM_TEMPLATE);
    let toml = ctx.read(".aws-sam/build.toml");
    assert!(toml.contains(r#"functions = ["DevBillingFunction", "ProdBillingFunction"]"#), "{toml}");

    // A cached rebuild writes the same template.
    ctx.accel(&["build", "--language-extensions", "--cached"]).assert_success();
    assert_eq!(ctx.read(".aws-sam/build/template.yaml"), SAM_TEMPLATE);
}

#[test]
fn the_environment_and_samconfig_turn_expansion_on_and_the_flag_off() {
    let ctx = TestContext::from_fixture(APP);
    ctx.accel(&["build"]).env("SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS", "true").assert_success();
    assert_eq!(ctx.read(".aws-sam/build/template.yaml"), SAM_TEMPLATE);

    // Off (sam fails with a stack trace): one line naming the loop and the switch.
    let out = ctx.accel(&["build", "--no-language-extensions"]).env("SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS", "1").run();
    let line = error_line(&out);
    assert!(line.contains("template.yaml:22: Fn::ForEach::Workers"), "{line}");
    assert!(line.contains("--language-extensions"), "{line}");
    error_line(&ctx.accel(&["build"]).run());

    ctx.write("samconfig.toml", "version = 0.1\n[default.build.parameters]\nlanguage_extensions = true\n");
    ctx.accel(&["build"]).assert_success();
    assert_eq!(ctx.read(".aws-sam/build/template.yaml"), SAM_TEMPLATE);
}

#[test]
fn parameter_overrides_choose_the_items_of_a_parameter_collection() {
    let ctx = TestContext::from_fixture(APP);
    ctx.accel(&["build", "--language-extensions", "--parameter-overrides", "HandlerNames=Users"]).assert_success();
    let names = built(&ctx);
    assert!(names.contains(&"UsersHandler".to_string()) && !names.contains(&"OrdersHandler".to_string()), "{names:?}");
    let template = ctx.read(".aws-sam/build/template.yaml");
    assert!(
        template.contains("  SAMCodeUriHandlers:\n    Users:\n      CodeUri: UsersHandler\n  SAMContentUri"),
        "{template}"
    );
}

#[test]
fn bad_loops_are_one_error_naming_the_loop() {
    let ctx = TestContext::from_fixture(APP);
    let cases = [
        // The collection needs the cloud.
        ("!Ref HandlerNames", "!GetAtt Plain.Arn", "template.yaml:36: Fn::ForEach::Handlers: the collection"),
        // A parameter without a value.
        (
            "Default: Orders,Users",
            "Description: none",
            "Fn::ForEach::Handlers: the collection {\"Ref\":\"HandlerNames\"}",
        ),
        // Not [Identifier, Collection, Body].
        (
            "    - Name\n    - !Ref HandlerNames\n",
            "    - !Ref HandlerNames\n",
            "Fn::ForEach::Handlers layout is incorrect",
        ),
        // An identifier that is also a parameter.
        (
            "    - Worker\n    - [Resize",
            "    - Stage\n    - [Resize",
            "Fn::ForEach::Workers: identifier 'Stage' conflicts with parameter name",
        ),
        // Two items giving one logical id.
        (
            "[Resize, Thumbnail]\n    - ${Worker}Worker",
            "[Resize, Resize]\n    - ${Worker}Worker",
            "Fn::ForEach::Workers' produced logical IDs that conflict with existing entries: ResizeWorker",
        ),
        // Generated ids must still be alphanumeric.
        (
            "Topic&{Topic}",
            "Topic${Topic}",
            "template.yaml:64: resource Topicorder.created: Logical ids must be alphanumeric.",
        ),
        // A generated function's missing reference, at its loop's line.
        (
            "CodeUri: handlers/${Name}/",
            "CodeUri: handlers/${Name}/\n          Role: !GetAtt Missing.Arn",
            "template.yaml:43: resource OrdersHandler: refers to unknown resource or parameter 'Missing'",
        ),
    ];
    for (from, to, expected) in cases {
        let original = ctx.read("template.yaml");
        ctx.replace("template.yaml", from, to);
        let line = error_line(&ctx.accel(&["build", "--language-extensions"]).run());
        assert!(line.contains(expected), "{from:?} → {to:?}: {line}");
        ctx.write("template.yaml", &original);
    }
    // Loops without the transform that declares them.
    ctx.replace("template.yaml", "  - AWS::LanguageExtensions\n", "");
    let line = error_line(&ctx.accel(&["build", "--language-extensions"]).run());
    assert!(line.contains("Fn::ForEach::Workers: Fn::ForEach needs `Transform: AWS::LanguageExtensions`"), "{line}");
}

/// The functions a sync reports as `NAME code synced …`.
fn code_synced(out: &RunOutput) -> Vec<String> {
    out.stderr
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|words| words.len() > 2 && words[1] == "code" && words[2] == "synced")
        .map(|words| words[0].to_string())
        .collect()
}

/// The app's generated functions, expanded by hand, deployed with
/// placeholder code as a first `sam deploy --language-extensions` would.
const DEPLOYED: &str = "Transform: AWS::Serverless-2016-10-31
Resources:
  OrdersHandler:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://accel-foreach-tests/placeholder.zip
      Handler: main.handler
      Runtime: python3.11
  UsersHandler:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://accel-foreach-tests/placeholder.zip
      Handler: main.handler
      Runtime: python3.11
";

const LOOP_ONLY: &str = "Transform:
  - AWS::LanguageExtensions
  - AWS::Serverless-2016-10-31
Resources:
  Fn::ForEach::Handlers:
    - Name
    - [Orders, Users]
    - ${Name}Handler:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: handlers/${Name}/
          Handler: main.handler
          Runtime: python3.11
";

#[tokio::test(flavor = "multi_thread")]
async fn sync_code_finds_the_generated_functions_in_the_deployed_stack() {
    let ctx = TestContext::from_fixture(APP).with_cloud();
    ctx.write("template.yaml", LOOP_ONLY);
    let s3 = ctx.s3();
    let _ = s3.create_bucket().bucket("accel-foreach-tests").send().await;
    let body = zip_of(&[("main.py", "def handler(e, c): return 'placeholder'\n")]);
    s3.put_object().bucket("accel-foreach-tests").key("placeholder.zip").body(body.into()).send().await.unwrap();
    ctx.cfn()
        .create_stack()
        .stack_name("foreach-code")
        .template_body(DEPLOYED)
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityAutoExpand)
        .send()
        .await
        .expect("create_stack");
    let before = ctx.code_sha("foreach-code", "UsersHandler").await;

    let out = ctx
        .accel(&["sync", "--code", "--language-extensions", "--stack-name", "foreach-code"])
        .stdin("y\n")
        .assert_success();
    let mut synced = code_synced(&out);
    synced.sort();
    assert_eq!(synced, ["OrdersHandler", "UsersHandler"], "{out}");
    assert_ne!(ctx.code_sha("foreach-code", "UsersHandler").await, before);

    // One generated function by its logical id.
    ctx.write("handlers/Orders/main.py", "def handler(e, c):\n    return 'edited'\n");
    let out = ctx
        .accel(&[
            "sync",
            "--code",
            "--language-extensions",
            "--stack-name",
            "foreach-code",
            "--resource-id",
            "OrdersHandler",
        ])
        .assert_success();
    assert_eq!(code_synced(&out), ["OrdersHandler"], "{out}");

    // A deploy would send the loops' local paths: refused, naming what works.
    let line =
        error_line(&ctx.accel(&["sync", "--language-extensions", "--stack-name", "foreach-code", "--no-watch"]).run());
    assert!(line.contains("sam sync --language-extensions") && line.contains("accel sync --code"), "{line}");
}
