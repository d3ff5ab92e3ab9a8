//! `accel sync` against the local cloud: the first sync deploys through
//! CloudFormation, later ones skip the deploy when only code changed, and
//! `--code` pushes each kind of resource through its own service API. Calls
//! are counted from the local cloud's log (each run's own calls) wherever the
//! claim is that nothing was done.

use crate::support::{RunOutput, TestContext};

fn sync(ctx: &TestContext, args: &[&str], input: Option<&str>) -> RunOutput {
    let mut all = vec!["sync"];
    all.extend(args);
    let command = ctx.accel(&all);
    match input {
        Some(input) => command.stdin(input).run(),
        None => command.run(),
    }
}

fn ok(out: &RunOutput) -> String {
    assert_eq!(out.code, Some(0), "{out}");
    out.text()
}

/// Resources reported as updated with `kind`.
fn updated(out: &RunOutput, kind: &str) -> Vec<String> {
    let mut found: Vec<String> = out
        .stderr
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() > 2 && w[1] == kind && w[2] == "synced")
        .map(|w| w[0].to_string())
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_deploys_then_pushes_only_what_changed() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    const STACK: &str = "syncapp";

    // First sync: the managed bucket, then CreateStack with every resource.
    let first = sync(&ctx, &["--stack-name", STACK], Some("y\n"));
    let text = ok(&first);
    assert!(text.contains("Stack creation succeeded."), "{text}");
    assert!(text.contains("CREATE_COMPLETE"), "stack events shown: {text}");
    // One listing of the bucket instead of a HeadObject per artifact.
    let calls = &first.calls;
    assert!(!calls.iter().any(|c| c.starts_with("s3:HEAD")), "{calls:?}");
    assert!(calls.iter().filter(|c| c.starts_with("s3:GET")).count() <= 2, "{calls:?}");
    let libs_v1 = ctx.layers(STACK, "HelloFunction").await;
    assert_eq!(libs_v1.len(), 2, "Libs from Globals plus the dependency layer: {libs_v1:?}");
    assert_eq!(ctx.layers(STACK, "WorldFunction").await.len(), 2);
    let api = ctx.physical_id(STACK, "Api").await;
    let http_api = ctx.physical_id(STACK, "HttpApi").await;
    let machine = ctx.physical_id(STACK, "Machine").await;
    let sync_toml = ctx.read(".aws-sam/sync.toml");
    assert!(sync_toml.contains("latest_infra_sync_time") && sync_toml.contains("dependency_layer = true"));

    // Nothing changed: no deploy, no upload, only reads.
    let unchanged = sync(&ctx, &["--stack-name", STACK], None);
    let text = ok(&unchanged);
    assert!(text.contains("skipping infra sync"), "{text}");
    let calls = &unchanged.calls;
    assert!(
        calls.iter().all(|c| c.ends_with(":DescribeStacks")
            || c.ends_with(":ListStackResources")
            || c.ends_with(":GetTemplate")),
        "{calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| c.ends_with(":GetTemplate")).count(),
        2,
        "root and dependency stacks: {calls:?}"
    );

    // CloudFormation has nothing to change either: still a success.
    let forced = sync(&ctx, &["--stack-name", STACK, "--no-skip-deploy-sync"], None);
    let text = ok(&forced);
    assert!(text.contains("No changes to deploy"), "{text}");
    assert!(!forced.calls.iter().any(|c| c.starts_with("s3:PUT")), "every object already in the bucket");

    // One handler edited: that function's code only.
    let hello = ctx.code_sha(STACK, "HelloFunction").await;
    let world = ctx.code_sha(STACK, "WorldFunction").await;
    ctx.write("hello/app.py", "def handler(event, context):\n    return 'edited'\n");
    let out = sync(&ctx, &["--stack-name", STACK, "--code"], None);
    ok(&out);
    assert_eq!(updated(&out, "code"), ["HelloFunction"]);
    assert_ne!(ctx.code_sha(STACK, "HelloFunction").await, hello);
    assert_eq!(ctx.code_sha(STACK, "WorldFunction").await, world);
    let code_updates = out.calls.iter().filter(|c| c.ends_with("/code")).count();
    assert_eq!(code_updates, 1);

    // `--code` again with nothing changed: no call beyond reading the stack.
    let out = sync(&ctx, &["--stack-name", STACK, "--code"], None);
    ok(&out);
    let calls = &out.calls;
    assert!(calls.iter().all(|c| c.ends_with(":ListStackResources")), "{calls:?}");

    // A layer edited, limited with --resource: one new version, both users
    // re-pointed (they get it through Globals), the old version deleted. The
    // edited handler is not synced.
    ctx.write("libs/python/shared.py", "def greet(name):\n    return name + '?'\n");
    ctx.write("world/app.py", "def handler(event, context):\n    return 'not yet'\n");
    let out = sync(&ctx, &["--stack-name", STACK, "--code", "--resource", "AWS::Serverless::LayerVersion"], None);
    ok(&out);
    assert_eq!(updated(&out, "layer"), ["Libs"]);
    let libs_arn = libs_v1.iter().find(|l| l.contains("Libs")).unwrap().rsplit_once(':').unwrap().0.to_string();
    for function in ["HelloFunction", "WorldFunction"] {
        let layers = ctx.layers(STACK, function).await;
        assert!(layers.contains(&format!("{libs_arn}:2")), "{function}: {layers:?}");
        assert_eq!(layers.len(), 2);
    }
    let versions = ctx.lambda().list_layer_versions().layer_name(libs_arn.rsplit(':').next().unwrap()).send().await;
    let versions: Vec<i64> = versions.unwrap().layer_versions().iter().map(|v| v.version()).collect();
    assert_eq!(versions, [2], "the old version is deleted");
    assert_eq!(ctx.code_sha(STACK, "WorldFunction").await, world, "--resource limits the work");

    // Definitions, limited with --resource-id: the REST API, HTTP API and
    // state machine take the new files.
    ctx.replace(
        "api.yaml",
        "uri: https://example.com/hello",
        "uri: !Sub 'https://${AWS::Region}.example.com/${HelloFunction}'",
    );
    ctx.replace("api.yaml", "/hello", "/rest2");
    ctx.replace("httpapi.yaml", "/hello", "/http2");
    ctx.write(
        "machine.asl.json",
        r#"{"StartAt": "Renamed", "States": {"Renamed": {"Type": "Task", "Resource": "${HelloArn}", "End": true}}}"#,
    );
    let args = [
        "--stack-name",
        "syncapp",
        "--code",
        "--resource-id",
        "Api",
        "--resource-id",
        "HttpApi",
        "--resource-id",
        "Machine",
    ];
    let out = sync(&ctx, &args, None);
    ok(&out);
    assert_eq!(updated(&out, "api"), ["Api", "HttpApi"]);
    assert_eq!(updated(&out, "definition"), ["Machine"]);
    let resources = ctx.apigateway().get_resources().rest_api_id(&api).send().await.unwrap();
    let paths: Vec<&str> = resources.items().iter().filter_map(|r| r.path()).collect();
    assert!(paths.contains(&"/rest2"), "{paths:?}");
    // Fn::Sub in the definition file, resolved from the deployed stack (sam sends it verbatim).
    let rest2 = resources.items().iter().find(|r| r.path() == Some("/rest2")).and_then(|r| r.id()).unwrap();
    let integration = ctx
        .apigateway()
        .get_integration()
        .rest_api_id(&api)
        .resource_id(rest2)
        .http_method("GET")
        .send()
        .await
        .unwrap();
    let hello_name = ctx.physical_id(STACK, "HelloFunction").await;
    assert_eq!(integration.uri(), Some(format!("https://us-east-1.example.com/{hello_name}").as_str()));
    let stage = ctx.apigateway().get_stage().rest_api_id(&api).stage_name("dev").send().await.unwrap();
    let deployments = ctx.apigateway().get_deployments().rest_api_id(&api).send().await.unwrap();
    assert!(deployments.items().iter().any(|dep| dep.id() == stage.deployment_id()), "the stage moved");
    let routes = ctx.apigatewayv2().get_routes().api_id(&http_api).send().await.unwrap();
    let routes: Vec<&str> = routes.items().iter().filter_map(|r| r.route_key()).collect();
    assert!(routes.contains(&"GET /http2"), "{routes:?}");
    let described = ctx.sfn().describe_state_machine().state_machine_arn(&machine).send().await.unwrap();
    let definition = described.definition();
    assert!(definition.contains("Renamed"), "{definition}");
    let hello_arn = ctx.function(STACK, "HelloFunction").await.function_arn().unwrap().to_string();
    assert!(definition.contains(&hello_arn), "DefinitionSubstitutions filled in: {definition}");
    assert_eq!(ctx.code_sha(STACK, "WorldFunction").await, world, "--resource-id limits the work");

    // Inline code edited in the template: still no deploy, the function's
    // code goes straight through Lambda (sam cannot code-sync inline code).
    let inline = ctx.code_sha(STACK, "InlineFunction").await;
    ctx.replace("template.yaml", "return \"inline\"", "return 2");
    let out = sync(&ctx, &["--stack-name", STACK], None);
    let text = ok(&out);
    assert!(text.contains("skipping infra sync"), "{text}");
    // WorldFunction's edit, held back by --resource/--resource-id above, goes too.
    assert_eq!(updated(&out, "code"), ["InlineFunction", "WorldFunction"]);
    assert_ne!(ctx.code_sha(STACK, "InlineFunction").await, inline);

    // A configuration change goes through CloudFormation.
    ctx.replace("template.yaml", "MemorySize: 128", "MemorySize: 512");
    let text = ok(&sync(&ctx, &["--stack-name", STACK], None));
    assert!(text.contains("Stack update succeeded."), "{text}");
    assert_eq!(ctx.function(STACK, "WorldFunction").await.memory_size(), Some(512));

    // A function deleted behind accel's back: a clear error, exit 1.
    let hello_name = ctx.physical_id(STACK, "HelloFunction").await;
    ctx.lambda().delete_function().function_name(&hello_name).send().await.unwrap();
    ctx.write("hello/app.py", "def handler(event, context):\n    return 'gone'\n");
    let out = sync(&ctx, &["--stack-name", STACK, "--code", "--resource-id", "HelloFunction"], None);
    assert_eq!(out.code, Some(1), "{out}");
    let error = &out.stderr;
    assert!(error.contains("HelloFunction") && error.contains("ResourceNotFoundException"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn template_error_deploys_nothing() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    ctx.replace("template.yaml", "!Ref Libs", "!Ref Missing");

    let out = sync(&ctx, &["--stack-name", "broken-app"], Some("y\n"));
    assert_eq!(out.code, Some(1), "{out}");
    let error = &out.stderr;
    assert!(error.contains("Error:") && error.contains("template.yaml") && error.contains("Missing"), "{error}");
    assert!(ctx.calls().is_empty(), "no call at all: {:?}", ctx.calls());
    assert!(ctx.cfn().describe_stacks().stack_name("broken-app").send().await.is_err());
}

/// Adds `ExtraFunction` (CodeUri `extra/`) to syncapp's template.
fn add_extra_function(ctx: &TestContext) {
    ctx.write("extra/app.py", "def handler(e, c):\n    return 'extra'\n");
    ctx.replace(
        "template.yaml",
        "  InlineFunction:\n",
        "  ExtraFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: extra/\n\n  InlineFunction:\n",
    );
}

/// A function added to a stack that has the auto dependency layer reads a
/// new output of the existing nested stack: CloudFormation must update the
/// nested stack before it creates the function (the local cloud used to
/// create it first and fail).
#[tokio::test(flavor = "multi_thread")]
async fn a_function_added_next_to_the_dependency_layer_deploys() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    const STACK: &str = "syncapp-gains";
    ok(&sync(&ctx, &["--stack-name", STACK], Some("y\n")));
    add_extra_function(&ctx);
    ok(&sync(&ctx, &["--stack-name", STACK], None));
    let layers = ctx.layers(STACK, "ExtraFunction").await;
    assert_eq!(layers.len(), ctx.layers(STACK, "HelloFunction").await.len(), "{layers:?}");
    assert!(layers.iter().any(|l| l.contains("DepLayer")), "its dependency layer: {layers:?}");
}

/// The same in watch: the template save deploys the new function.
#[tokio::test(flavor = "multi_thread")]
async fn watch_deploys_a_function_added_next_to_the_dependency_layer() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    const STACK: &str = "syncapp-gains-watched";
    let watch = ctx.accel(&["sync", "--stack-name", STACK, "--watch"]).stdin("y\n").spawn();
    watch.wait_for_stderr("the watch", |t| t.contains("Sync watch started."));
    add_extra_function(&ctx);
    watch.wait_for_stderr("the second infra sync", |t| t.matches("Infra sync completed").count() >= 2);
    watch.stop();
    let layers = ctx.layers(STACK, "ExtraFunction").await;
    assert!(layers.iter().any(|l| l.contains("DepLayer")), "its dependency layer: {layers:?}");
}

/// The stack's status in the local cloud.
async fn stack_status(ctx: &TestContext, stack: &str) -> String {
    let described = ctx.cfn().describe_stacks().stack_name(stack).send().await.expect("describe_stacks");
    described.stacks()[0].stack_status().unwrap().as_str().to_string()
}

/// A resource CloudFormation refuses (Lambda's memory must lie in 128–10240
/// MB) fails the creation: each resource's events are shown, the failed one
/// with its reason, the stack rolls back and the sync exits 1 naming it.
/// A stack left in ROLLBACK_COMPLETE can only be deleted: the next sync
/// deletes it and creates it again (sam's sync fails until someone does).
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_creation_rolls_back_and_the_next_sync_creates_the_stack_again() {
    let ctx = TestContext::from_fixture("templates/blog").with_cloud();
    const STACK: &str = "blog-rollback";
    ctx.replace(
        "template.yaml",
        "      CodeUri: hello_world/\n",
        "      CodeUri: hello_world/\n      MemorySize: 64\n",
    );
    let out = sync(&ctx, &["--stack-name", STACK], Some("y\n"));
    assert_eq!(out.code, Some(1), "{out}");
    let role = out.stdout.find("CREATE_COMPLETE                 AWS::IAM::Role").expect("the role's own event");
    let failed = out.stdout.find("CREATE_FAILED                   AWS::Lambda::Function").expect("the failure event");
    assert!(role < failed, "resources are reported in the order they are made: {out}");
    assert!(
        out.stderr.contains("Error: Failed to create the stack: blog-rollback, it ended in ROLLBACK_COMPLETE"),
        "{out}"
    );
    assert!(
        out.stderr.contains("HelloWorldFunction (AWS::Lambda::Function): Resource handler returned message: \"1 validation error detected: Value '64' at 'memorySize'"),
        "{out}"
    );
    assert_eq!(stack_status(&ctx, STACK).await, "ROLLBACK_COMPLETE");

    ctx.replace("template.yaml", "      MemorySize: 64\n", "      MemorySize: 256\n");
    let out = ok(&sync(&ctx, &["--stack-name", STACK], None));
    assert!(out.contains("is in ROLLBACK_COMPLETE (its creation failed): deleting it to create it again."), "{out}");
    assert_eq!(stack_status(&ctx, STACK).await, "CREATE_COMPLETE");
    assert_eq!(ctx.function(STACK, "HelloWorldFunction").await.memory_size(), Some(256));
}

/// A refused update rolls back to the previous template: the function keeps
/// its configuration, the sync exits 1 naming the resource, and the next
/// sync updates the stack.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_update_rolls_back_to_the_previous_template() {
    let ctx = TestContext::from_fixture("templates/blog").with_cloud();
    const STACK: &str = "blog-update-rollback";
    ok(&sync(&ctx, &["--stack-name", STACK], Some("y\n")));
    let before = ctx.function(STACK, "HelloWorldFunction").await.memory_size();

    ctx.replace(
        "template.yaml",
        "      CodeUri: hello_world/\n",
        "      CodeUri: hello_world/\n      MemorySize: 20000\n",
    );
    let out = sync(&ctx, &["--stack-name", STACK], None);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("it ended in UPDATE_ROLLBACK_COMPLETE"), "{out}");
    assert!(out.stderr.contains("HelloWorldFunction (AWS::Lambda::Function)"), "{out}");
    assert!(out.stderr.contains("Member must have value less than or equal to 10240"), "{out}");
    assert_eq!(stack_status(&ctx, STACK).await, "UPDATE_ROLLBACK_COMPLETE");
    assert_eq!(ctx.function(STACK, "HelloWorldFunction").await.memory_size(), before);

    ctx.replace("template.yaml", "      MemorySize: 20000\n", "      MemorySize: 512\n");
    ok(&sync(&ctx, &["--stack-name", STACK], None));
    assert_eq!(ctx.function(STACK, "HelloWorldFunction").await.memory_size(), Some(512));
}

/// CloudFormation throttling its read calls (it publishes no rate quotas, so
/// the test sets one call per second each): the deploy's waits, events and
/// resource listings are answered 400 Throttling now and then, and the sync
/// still ends in CREATE_COMPLETE.
#[tokio::test(flavor = "multi_thread")]
async fn sync_rides_out_cloudformation_throttling() {
    const STACK: &str = "blog-cfn-throttled";
    let ctx = TestContext::from_fixture("templates/blog").with_cloud();
    let reads = ["DescribeStacks", "DescribeStackEvents", "ListStackResources", "DescribeChangeSet"];
    let quotas: serde_json::Map<String, serde_json::Value> =
        reads.iter().map(|action| (format!("cloudformation:{action}"), serde_json::json!(1))).collect();
    ctx.set_quotas(&serde_json::Value::Object(quotas));
    ok(&sync(&ctx, &["--stack-name", STACK], Some("y\n")));
    assert_eq!(stack_status(&ctx, STACK).await, "CREATE_COMPLETE");
    let throttled = ctx.throttled();
    assert!(!throttled.is_empty(), "CloudFormation refused some calls: {:?}", ctx.calls());
    assert!(throttled.iter().all(|c| c.starts_with("cloudformation:")), "{throttled:?}");
}
