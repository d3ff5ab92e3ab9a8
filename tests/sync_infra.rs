//! `accel sync` against the local cloud: the first sync deploys through
//! CloudFormation, later ones skip the deploy when only code changed, and
//! `--code` pushes each kind of resource through its own service API. Calls
//! are counted from the local cloud's log wherever the claim is that
//! nothing was done.

mod support;

use std::path::Path;
use std::process::Output;

use support::{LocalCloud, accel_with_input, copy_fixture, repo, stderr, stdout};

fn sync(cloud: &LocalCloud, dir: &Path, key: &str, args: &[&str], input: Option<&str>) -> Output {
    let env = cloud.env_as(key);
    let app_dir = dir.join(".sam-app-dir");
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("__SAM_CLI_APP_DIR", app_dir.to_str().unwrap()));
    let mut all = vec!["sync"];
    all.extend(args);
    accel_with_input(dir, &all, &env, input)
}

fn ok(out: &Output) -> String {
    let text = format!("{}\n{}", stdout(out), stderr(out));
    assert!(out.status.success(), "{text}");
    text
}

/// Resources reported as updated with `kind`.
fn updated(out: &Output, kind: &str) -> Vec<String> {
    let mut found: Vec<String> = stderr(out)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() > 2 && w[1] == kind && w[2] == "synced")
        .map(|w| w[0].to_string())
        .collect();
    found.sort();
    found
}

struct Stack<'a> {
    aws: &'a accel::aws::Aws,
    name: &'a str,
}

impl Stack<'_> {
    async fn physical(&self, path: &str) -> String {
        let deployed = accel::sync::flows::deployed_resources(&self.aws.cloudformation(), self.name).await.unwrap();
        deployed.get(path).unwrap_or_else(|| panic!("{path} not in {deployed:?}")).physical_id.clone()
    }

    async fn function(&self, id: &str) -> aws_sdk_lambda::types::FunctionConfiguration {
        let name = self.physical(id).await;
        let out = self.aws.lambda().get_function().function_name(name).send().await.unwrap();
        out.configuration().unwrap().clone()
    }

    async fn code_sha(&self, id: &str) -> String {
        self.function(id).await.code_sha256().unwrap().to_string()
    }

    async fn layers(&self, id: &str) -> Vec<String> {
        self.function(id).await.layers().iter().filter_map(|l| l.arn()).map(str::to_string).collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_deploys_then_pushes_only_what_changed() {
    let cloud = LocalCloud::shared();
    let aws = cloud.aws().await;
    let dir = copy_fixture(&repo().join("tests/fixtures/apps/syncapp"));
    let d = dir.path();
    let stack = Stack { aws: &aws, name: "syncapp" };

    // First sync: the managed bucket, then CreateStack with every resource.
    let text = ok(&sync(cloud, d, "first", &["--stack-name", "syncapp"], Some("y\n")));
    assert!(text.contains("Stack creation succeeded."), "{text}");
    assert!(text.contains("CREATE_COMPLETE"), "stack events shown: {text}");
    // One listing of the bucket instead of a HeadObject per artifact.
    let calls = cloud.calls("first");
    assert!(!calls.iter().any(|c| c.starts_with("s3:HEAD")), "{calls:?}");
    assert!(calls.iter().filter(|c| c.starts_with("s3:GET")).count() <= 2, "{calls:?}");
    let libs_v1 = stack.layers("HelloFunction").await;
    assert_eq!(libs_v1.len(), 2, "Libs from Globals plus the dependency layer: {libs_v1:?}");
    assert_eq!(stack.layers("WorldFunction").await.len(), 2);
    let api = stack.physical("Api").await;
    let http_api = stack.physical("HttpApi").await;
    let machine = stack.physical("Machine").await;
    let sync_toml = std::fs::read_to_string(d.join(".aws-sam/sync.toml")).unwrap();
    assert!(sync_toml.contains("latest_infra_sync_time") && sync_toml.contains("dependency_layer = true"));

    // Nothing changed: no deploy, no upload, only reads.
    let text = ok(&sync(cloud, d, "unchanged", &["--stack-name", "syncapp"], None));
    assert!(text.contains("skipping infra sync"), "{text}");
    let calls = cloud.calls("unchanged");
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
    let text = ok(&sync(cloud, d, "forced", &["--stack-name", "syncapp", "--no-skip-deploy-sync"], None));
    assert!(text.contains("No changes to deploy"), "{text}");
    assert!(!cloud.calls("forced").iter().any(|c| c.starts_with("s3:PUT")), "every object already in the bucket");

    // One handler edited: that function's code only.
    let hello = stack.code_sha("HelloFunction").await;
    let world = stack.code_sha("WorldFunction").await;
    std::fs::write(d.join("hello/app.py"), "def handler(event, context):\n    return 'edited'\n").unwrap();
    let out = sync(cloud, d, "one-edit", &["--stack-name", "syncapp", "--code"], None);
    ok(&out);
    assert_eq!(updated(&out, "code"), ["HelloFunction"]);
    assert_ne!(stack.code_sha("HelloFunction").await, hello);
    assert_eq!(stack.code_sha("WorldFunction").await, world);
    let code_updates = cloud.calls("one-edit").iter().filter(|c| c.ends_with("/code")).count();
    assert_eq!(code_updates, 1);

    // `--code` again with nothing changed: no call beyond reading the stack.
    ok(&sync(cloud, d, "code-unchanged", &["--stack-name", "syncapp", "--code"], None));
    let calls = cloud.calls("code-unchanged");
    assert!(calls.iter().all(|c| c.ends_with(":ListStackResources")), "{calls:?}");

    // A layer edited, limited with --resource: one new version, both users
    // re-pointed (they get it through Globals), the old version deleted. The
    // edited handler is not synced.
    std::fs::write(d.join("libs/python/shared.py"), "def greet(name):\n    return name + '?'\n").unwrap();
    std::fs::write(d.join("world/app.py"), "def handler(event, context):\n    return 'not yet'\n").unwrap();
    let out = sync(
        cloud,
        d,
        "layer",
        &["--stack-name", "syncapp", "--code", "--resource", "AWS::Serverless::LayerVersion"],
        None,
    );
    ok(&out);
    assert_eq!(updated(&out, "layer"), ["Libs"]);
    let libs_arn = libs_v1.iter().find(|l| l.contains("Libs")).unwrap().rsplit_once(':').unwrap().0.to_string();
    for function in ["HelloFunction", "WorldFunction"] {
        let layers = stack.layers(function).await;
        assert!(layers.contains(&format!("{libs_arn}:2")), "{function}: {layers:?}");
        assert_eq!(layers.len(), 2);
    }
    let versions = aws.lambda().list_layer_versions().layer_name(libs_arn.rsplit(':').next().unwrap()).send().await;
    let versions: Vec<i64> = versions.unwrap().layer_versions().iter().map(|v| v.version()).collect();
    assert_eq!(versions, [2], "the old version is deleted");
    assert_eq!(stack.code_sha("WorldFunction").await, world, "--resource limits the work");

    // Definitions, limited with --resource-id: the REST API, HTTP API and
    // state machine take the new files.
    std::fs::write(
        d.join("api.yaml"),
        std::fs::read_to_string(d.join("api.yaml"))
            .unwrap()
            .replace(
                "uri: https://example.com/hello",
                "uri: !Sub 'https://${AWS::Region}.example.com/${HelloFunction}'",
            )
            .replace("/hello", "/rest2"),
    )
    .unwrap();
    std::fs::write(
        d.join("httpapi.yaml"),
        std::fs::read_to_string(d.join("httpapi.yaml")).unwrap().replace("/hello", "/http2"),
    )
    .unwrap();
    std::fs::write(
        d.join("machine.asl.json"),
        r#"{"StartAt": "Renamed", "States": {"Renamed": {"Type": "Task", "Resource": "${HelloArn}", "End": true}}}"#,
    )
    .unwrap();
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
    let out = sync(cloud, d, "definitions", &args, None);
    ok(&out);
    assert_eq!(updated(&out, "api"), ["Api", "HttpApi"]);
    assert_eq!(updated(&out, "definition"), ["Machine"]);
    let resources = aws.apigateway().get_resources().rest_api_id(&api).send().await.unwrap();
    let paths: Vec<&str> = resources.items().iter().filter_map(|r| r.path()).collect();
    assert!(paths.contains(&"/rest2"), "{paths:?}");
    // Fn::Sub in the definition file, resolved from the deployed stack (sam sends it verbatim).
    let rest2 = resources.items().iter().find(|r| r.path() == Some("/rest2")).and_then(|r| r.id()).unwrap();
    let integration = aws
        .apigateway()
        .get_integration()
        .rest_api_id(&api)
        .resource_id(rest2)
        .http_method("GET")
        .send()
        .await
        .unwrap();
    let hello_name = stack.physical("HelloFunction").await;
    assert_eq!(integration.uri(), Some(format!("https://us-east-1.example.com/{hello_name}").as_str()));
    let stage = aws.apigateway().get_stage().rest_api_id(&api).stage_name("dev").send().await.unwrap();
    let deployments = aws.apigateway().get_deployments().rest_api_id(&api).send().await.unwrap();
    assert!(deployments.items().iter().any(|dep| dep.id() == stage.deployment_id()), "the stage moved");
    let routes = aws.apigatewayv2().get_routes().api_id(&http_api).send().await.unwrap();
    let routes: Vec<&str> = routes.items().iter().filter_map(|r| r.route_key()).collect();
    assert!(routes.contains(&"GET /http2"), "{routes:?}");
    let described = aws.sfn().describe_state_machine().state_machine_arn(&machine).send().await.unwrap();
    let definition = described.definition();
    assert!(definition.contains("Renamed"), "{definition}");
    let hello_arn = stack.function("HelloFunction").await.function_arn().unwrap().to_string();
    assert!(definition.contains(&hello_arn), "DefinitionSubstitutions filled in: {definition}");
    assert_eq!(stack.code_sha("WorldFunction").await, world, "--resource-id limits the work");

    // Inline code edited in the template: still no deploy, the function's
    // code goes straight through Lambda (sam cannot code-sync inline code).
    let inline = stack.code_sha("InlineFunction").await;
    let template = std::fs::read_to_string(d.join("template.yaml")).unwrap().replace("return \"inline\"", "return 2");
    std::fs::write(d.join("template.yaml"), template).unwrap();
    let out = sync(cloud, d, "inline", &["--stack-name", "syncapp"], None);
    let text = ok(&out);
    assert!(text.contains("skipping infra sync"), "{text}");
    // WorldFunction's edit, held back by --resource/--resource-id above, goes too.
    assert_eq!(updated(&out, "code"), ["InlineFunction", "WorldFunction"]);
    assert_ne!(stack.code_sha("InlineFunction").await, inline);

    // A configuration change goes through CloudFormation.
    let template =
        std::fs::read_to_string(d.join("template.yaml")).unwrap().replace("MemorySize: 128", "MemorySize: 512");
    std::fs::write(d.join("template.yaml"), template).unwrap();
    let text = ok(&sync(cloud, d, "memory", &["--stack-name", "syncapp"], None));
    assert!(text.contains("Stack update succeeded."), "{text}");
    assert_eq!(stack.function("WorldFunction").await.memory_size(), Some(512));

    // A function deleted behind accel's back: a clear error, exit 1.
    let hello_name = stack.physical("HelloFunction").await;
    aws.lambda().delete_function().function_name(&hello_name).send().await.unwrap();
    std::fs::write(d.join("hello/app.py"), "def handler(event, context):\n    return 'gone'\n").unwrap();
    let out = sync(cloud, d, "deleted", &["--stack-name", "syncapp", "--code", "--resource-id", "HelloFunction"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let error = stderr(&out);
    assert!(error.contains("HelloFunction") && error.contains("ResourceNotFoundException"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn template_error_deploys_nothing() {
    let cloud = LocalCloud::shared();
    let aws = cloud.aws().await;
    let dir = copy_fixture(&repo().join("tests/fixtures/apps/syncapp"));
    let template = std::fs::read_to_string(dir.path().join("template.yaml")).unwrap();
    std::fs::write(dir.path().join("template.yaml"), template.replace("!Ref Libs", "!Ref Missing")).unwrap();

    let out = sync(cloud, dir.path(), "broken", &["--stack-name", "broken-app"], Some("y\n"));
    assert_eq!(out.status.code(), Some(1));
    let error = stderr(&out);
    assert!(error.contains("Error:") && error.contains("template.yaml") && error.contains("Missing"), "{error}");
    assert!(cloud.calls("broken").is_empty(), "no call at all: {:?}", cloud.calls("broken"));
    assert!(aws.cloudformation().describe_stacks().stack_name("broken-app").send().await.is_err());
}
