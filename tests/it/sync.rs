//! `accel sync --code` against the local cloud: a stack deployed through
//! CloudFormation, then code pushed straight through Lambda.

use aws_sdk_cloudformation::types::Capability;

use crate::support::{RunOutput, TestContext, zip_of};

/// Deploys the context's copy of templates/blog as `stack` with placeholder
/// code from S3, as a first `sam deploy` would have.
pub(crate) async fn deploy_blog(ctx: &TestContext, stack: &str) {
    let s3 = ctx.s3();
    let _ = s3.create_bucket().bucket("accel-sync-tests").send().await;
    let body = zip_of(&[("app.py", "def lambda_handler(e, c): return 'placeholder'\n")]);
    s3.put_object().bucket("accel-sync-tests").key("placeholder.zip").body(body.into()).send().await.unwrap();
    let template = ctx
        .read("template.yaml")
        .replace("CodeUri: hello_world/", "CodeUri: s3://accel-sync-tests/placeholder.zip")
        .replace("CodeUri: greeting/", "CodeUri: s3://accel-sync-tests/placeholder.zip");
    ctx.cfn()
        .create_stack()
        .stack_name(stack)
        .template_body(template)
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityAutoExpand)
        .send()
        .await
        .expect("create_stack");
}

pub(crate) fn sync_code(ctx: &TestContext, args: &[&str], input: Option<&str>) -> RunOutput {
    let mut all = vec!["sync", "--code"];
    all.extend(args);
    let command = ctx.accel(&all);
    match input {
        Some(input) => command.stdin(input).run(),
        None => command.run(),
    }
}

/// `accel sync --stack-name stack args…`, answering the prompt; it must succeed.
fn sync_ok(ctx: &TestContext, stack: &str, args: &[&str]) -> RunOutput {
    let mut all = vec!["sync", "--stack-name", stack];
    all.extend(args);
    let out = ctx.accel(&all).stdin("y\n").run();
    assert_eq!(out.code, Some(0), "{out}");
    out
}

/// The resources a sync reports as updated with `kind` (`code`, `layer` …).
fn synced_lines(out: &RunOutput, kind: &str) -> Vec<String> {
    out.stderr
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|words| words.len() > 2 && words[1] == kind && words[2] == "synced")
        .map(|words| words[0].to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn code_sync_updates_only_what_changed() {
    let ctx = TestContext::from_fixture("templates/blog").with_cloud();
    deploy_blog(&ctx, "blog-code").await;
    let hello_before = ctx.code_sha("blog-code", "HelloWorldFunction").await;

    // First run asks (as sam does) and remembers the answer in sam's file.
    let out = sync_code(&ctx, &["--stack-name", "blog-code"], Some("y\n"));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("Confirm that you are synchronizing a development stack."), "{out}");
    let mut updated = synced_lines(&out, "code");
    updated.sort();
    assert_eq!(updated, ["GreetingFunction", "HelloWorldFunction"]);
    let hello_synced = ctx.code_sha("blog-code", "HelloWorldFunction").await;
    let greeting_synced = ctx.code_sha("blog-code", "GreetingFunction").await;
    assert_ne!(hello_synced, hello_before);

    // Nothing changed: nothing sent, no question asked (stdin is empty).
    let out = sync_code(&ctx, &["--stack-name", "blog-code"], None);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(synced_lines(&out, "code").is_empty(), "{out}");
    assert!(out.stderr.contains("0 updated, 2 unchanged"), "{out}");

    // One handler edited: only that function's code changes.
    ctx.write("hello_world/app.py", "def lambda_handler(e, c):\n    return 'edited'\n");
    let out = sync_code(&ctx, &["--stack-name", "blog-code"], None);
    assert_eq!(synced_lines(&out, "code"), ["HelloWorldFunction"], "{out}");
    assert_ne!(ctx.code_sha("blog-code", "HelloWorldFunction").await, hello_synced);
    assert_eq!(ctx.code_sha("blog-code", "GreetingFunction").await, greeting_synced);

    // --resource-id limits the work.
    ctx.write("hello_world/app.py", "def lambda_handler(e, c):\n    return 'again'\n");
    ctx.write("greeting/app.py", "def lambda_handler(e, c):\n    return 'hi'\n");
    let out = sync_code(&ctx, &["--stack-name", "blog-code", "--resource-id", "GreetingFunction"], None);
    assert_eq!(synced_lines(&out, "code"), ["GreetingFunction"], "{out}");
    assert_ne!(ctx.code_sha("blog-code", "GreetingFunction").await, greeting_synced);
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_and_errors() {
    let ctx = TestContext::from_fixture("templates/blog").with_cloud();

    let out = sync_code(&ctx, &["--stack-name", "whatever"], Some("n\n"));
    assert_eq!(out.code, Some(0), "declining ends the run, as in sam: {out}");
    assert!(!ctx.join(".aws-sam").exists(), "nothing built");

    let out = sync_code(&ctx, &["--stack-name", "whatever"], None);
    assert_eq!(out.code, Some(1), "end of input aborts: {out}");
    assert!(out.stdout.contains("Aborted!"), "{out}");

    let out = sync_code(&ctx, &["--stack-name", "no-such-stack"], Some("y\n"));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("Error: Invalid --stack-name parameter. Stack with id 'no-such-stack' does not exist"),
        "{out}"
    );
}

fn snapshot_of(out: &RunOutput) -> String {
    // Uploads finish in any order, and an object's size and key depend on
    // the dependency versions installed: one sorted line per kind of object.
    let kind = |line: &str| line.split(" (").next().is_some_and(|key| key.ends_with(".template"));
    let mut uploads: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("Uploaded "))
        .map(|l| if kind(l) { "Uploaded [template]" } else { "Uploaded [artifact]" })
        .collect();
    uploads.sort();
    let mut stderr: Vec<&str> = out.stderr.lines().filter(|l| !l.starts_with("Uploaded ")).collect();
    let at = stderr.iter().position(|l| l.is_empty()).unwrap_or(stderr.len());
    stderr.splice(at..at, uploads);
    format!("--- stdout\n{}\n--- stderr\n{}\n", out.stdout, stderr.join("\n"))
}

/// What a first sync, a no-change sync and a code sync print. The artifacts
/// go to a bucket of the test's own: the shared managed bucket's contents
/// (and whether this run created it) depend on the other tests.
#[tokio::test(flavor = "multi_thread")]
async fn sync_output_snapshots() {
    let ctx = TestContext::from_fixture("templates/blog").with_cloud();
    ctx.s3().create_bucket().bucket("accel-snapshots").send().await.expect("create bucket");
    let sync = ["sync", "--stack-name", "snap-blog", "--s3-bucket", "accel-snapshots"];
    let first = ctx.accel(&sync).stdin("y\n").assert_success();
    let unchanged = ctx.accel(&sync).assert_success();
    ctx.write("hello_world/app.py", "def lambda_handler(e, c):\n    return 'edited'\n");
    let code = ctx.accel(&["sync", "--code", "--stack-name", "snap-blog"]).assert_success();
    ctx.snapshot_settings().bind(|| {
        insta::assert_snapshot!("sync_first", snapshot_of(&first));
        insta::assert_snapshot!("sync_unchanged", snapshot_of(&unchanged));
        insta::assert_snapshot!("sync_code_one_edit", snapshot_of(&code));
    });
}

/// A code sync that a later edit undid: CloudFormation's template equals the
/// source again, but Lambda runs the synced code. The next plain `sync`
/// skips the deploy and must still send the source's code.
#[tokio::test(flavor = "multi_thread")]
async fn a_plain_sync_after_an_undone_code_sync_sends_the_code() {
    let ctx = TestContext::from_fixture("templates/blog").with_cloud();
    let sync = |args: &[&str]| sync_ok(&ctx, "blog-undone", args);
    sync(&[]);
    let deployed = ctx.code_sha("blog-undone", "HelloWorldFunction").await;
    let original = ctx.read("hello_world/app.py");
    ctx.write("hello_world/app.py", "def lambda_handler(e, c):\n    return 'synced, then undone'\n");
    sync(&["--code"]);
    assert_ne!(ctx.code_sha("blog-undone", "HelloWorldFunction").await, deployed);

    ctx.write("hello_world/app.py", &original);
    let out = sync(&[]);
    assert!(out.stdout.contains("skipping infra sync") || out.stderr.contains("skipping infra sync"), "{out}");
    assert_eq!(
        ctx.code_sha("blog-undone", "HelloWorldFunction").await,
        deployed,
        "the source's code runs again:\n{out}"
    );
}

/// Dependency layers live in each nested stack that has dependencies, not
/// only in the root: `sync --code` of a nested function sends its code
/// without the dependencies (they are in its layer), as the deploy did.
#[tokio::test(flavor = "multi_thread")]
async fn code_sync_of_a_nested_function_keeps_its_dependencies_in_the_layer() {
    let ctx = TestContext::new().with_cloud();
    ctx.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Child:\n    Type: AWS::Serverless::Application\n    Properties:\n      Location: child/template.yaml\n",
    );
    ctx.write(
        "child/template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: fn/\n      Handler: app.handler\n      Runtime: python3.12\n",
    );
    ctx.write("child/fn/app.py", "import six\n\ndef handler(event, context):\n    return 1\n");
    ctx.write("child/fn/requirements.txt", "six==1.16.0\n");
    let sync = |args: &[&str]| sync_ok(&ctx, "nested-adl", args);
    sync(&[]);
    let deployed = ctx.function("nested-adl", "Child/Fn").await;
    assert_eq!(deployed.layers().len(), 1, "the dependency layer: {deployed:?}");
    ctx.write("child/fn/app.py", "import six\n\ndef handler(event, context):\n    return 2\n");
    let out = sync(&["--code"]);
    let synced = ctx.function("nested-adl", "Child/Fn").await;
    assert_ne!(synced.code_sha256(), deployed.code_sha256(), "{out}");
    // six.py alone is ~34 KB; the handler is a few hundred bytes.
    assert!(
        synced.code_size() < 4_000,
        "{} bytes sent: the dependencies went with the code\n{out}",
        synced.code_size()
    );
    assert_eq!(synced.layers().len(), 1, "{out}");
}

/// Each line of a `--output json` run's stdout, as JSON: every one must be
/// an object naming its event.
fn events_of(out: &RunOutput) -> Vec<serde_json::Value> {
    out.stdout
        .lines()
        .map(|line| {
            let event: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{out}"));
            assert!(event["event"].is_string(), "no event kind: {line}");
            event
        })
        .collect()
}

/// The events of kind `kind`.
fn of_kind<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// `--output json`: stdout carries one JSON object per event and nothing
/// else (the prompt goes to stderr), from the build to the deploy, the code
/// sync and a failure.
#[tokio::test(flavor = "multi_thread")]
async fn output_json_is_one_event_per_line() {
    let ctx = TestContext::from_fixture("templates/blog").with_cloud();
    ctx.s3().create_bucket().bucket("accel-json").send().await.expect("create bucket");
    let first = ctx
        .accel(&["sync", "--stack-name", "json-blog", "--s3-bucket", "accel-json", "--output", "json"])
        .stdin("y\n")
        .assert_success();
    assert!(first.stderr.contains("accel will use the AWS Lambda"), "the prompt is on stderr: {first}");
    let events = events_of(&first);
    let built: Vec<&str> = of_kind(&events, "build").iter().filter_map(|e| e["resource"].as_str()).collect();
    assert!(built.contains(&"HelloWorldFunction"), "{built:?}");
    let uploads = of_kind(&events, "upload");
    assert!(!uploads.is_empty() && uploads.iter().all(|u| u["api"] == "PutObject" && u["bytes"].as_u64() > Some(0)));
    let stack = of_kind(&events, "stack");
    assert!(stack.iter().any(|e| e["resource"] == "json-blog" && e["status"] == "CREATE_COMPLETE"), "{stack:?}");
    let deploy = of_kind(&events, "deploy");
    assert_eq!(deploy.len(), 1, "{deploy:?}");
    assert_eq!((&deploy[0]["api"], &deploy[0]["result"]), (&"CreateStack".into(), &"created".into()));
    assert!(of_kind(&events, "output").iter().any(|o| o["key"] == "BlogApi"));
    assert_eq!(events.last().map(|e| &e["event"]), Some(&"done".into()), "the last event: {events:?}");

    ctx.write("hello_world/app.py", "def lambda_handler(e, c):\n    return 'json'\n");
    let code = ctx.accel(&["sync", "--code", "--stack-name", "json-blog", "--output", "json"]).assert_success();
    let events = events_of(&code);
    let synced = of_kind(&events, "sync");
    let hello = synced.iter().find(|e| e["resource"] == "HelloWorldFunction").expect("HelloWorldFunction reported");
    assert_eq!((&hello["api"], &hello["result"]), (&"UpdateFunctionCode".into(), &"updated".into()));
    assert!(hello["duration_ms"].is_u64() && hello["action"] == "code");
    assert!(synced.iter().any(|e| e["result"] == "unchanged"), "unchanged resources are reported too: {synced:?}");
    let done = events.last().expect("events");
    assert_eq!((&done["event"], &done["updated"]), (&"done".into(), &1.into()), "{done}");

    let failed =
        ctx.accel(&["sync", "--code", "--stack-name", "no-such-stack", "--output", "json"]).stdin("y\n").assert_code(1);
    let events = events_of(&failed);
    let error = events.last().expect("an error event");
    assert_eq!(error["event"], "error", "{failed}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("no-such-stack")), "{error}");
    assert!(failed.stderr.contains("Error: "), "stderr still ends with the error line: {failed}");
    let unloadable = ctx
        .accel(&["sync", "--code", "--stack-name", "json-blog", "--output", "json", "--template-file", "gone.yaml"])
        .assert_code(1);
    let events = events_of(&unloadable);
    assert_eq!(
        events.iter().map(|e| e["event"].as_str().unwrap_or_default()).collect::<Vec<_>>(),
        ["error"],
        "{unloadable}"
    );
}

/// On a terminal, the deploy shows a live line (what, elapsed time, the
/// latest stack event) and the uploads theirs; elsewhere neither appears,
/// only one line per step.
#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_shows_live_progress_and_a_pipe_one_line_per_step() {
    let ctx = TestContext::from_fixture("templates/blog").with_cloud();
    ctx.s3().create_bucket().bucket("accel-pty").send().await.expect("create bucket");
    let sync = ["sync", "--stack-name", "pty-blog", "--s3-bucket", "accel-pty"];
    let piped = ctx.accel(&sync).stdin("y\n").assert_success();
    assert!(!piped.stderr.contains("Deploying pty-blog") && !piped.stdout.contains("Deploying"), "{piped}");
    assert!(piped.stderr.lines().any(|l| l.starts_with("Uploaded ")), "one line per upload: {piped}");

    ctx.write("template.yaml", &ctx.read("template.yaml").replace("Timeout: 10", "Timeout: 11"));
    let terminal = ctx.accel(&sync).on_terminal().assert_success();
    let live =
        terminal.stdout.lines().find(|l| l.contains("Deploying pty-blog")).unwrap_or_else(|| panic!("{terminal}"));
    assert!(live.contains("s]"), "elapsed time on the live line: {live:?}");
    assert!(terminal.stdout.contains("ResourceStatus"), "the events table still follows: {terminal}");
    assert!(!terminal.stdout.lines().any(|l| l.starts_with("Uploaded ")), "uploads are counted on the live line");
}
