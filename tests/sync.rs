//! `accel sync --code` against the local cloud: a stack deployed through
//! CloudFormation, then code pushed straight through Lambda.

mod support;

use std::io::Write;
use std::path::Path;

use aws_sdk_cloudformation::types::Capability;
use support::{LocalCloud, accel_with_input, copy_fixture, repo, stderr, stdout};

/// Deploys templates/blog as `stack` with placeholder code from S3, as a
/// first `sam deploy` would have.
async fn deploy_blog(aws: &accel::aws::Aws, stack: &str, dir: &Path) {
    let s3 = aws.s3();
    let _ = s3.create_bucket().bucket("accel-sync-tests").send().await;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("app.py", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(b"def lambda_handler(e, c): return 'placeholder'\n").unwrap();
    let body = zip.finish().unwrap().into_inner();
    s3.put_object().bucket("accel-sync-tests").key("placeholder.zip").body(body.into()).send().await.unwrap();
    let template = std::fs::read_to_string(dir.join("template.yaml"))
        .unwrap()
        .replace("CodeUri: hello_world/", "CodeUri: s3://accel-sync-tests/placeholder.zip")
        .replace("CodeUri: greeting/", "CodeUri: s3://accel-sync-tests/placeholder.zip");
    aws.cloudformation()
        .create_stack()
        .stack_name(stack)
        .template_body(template)
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityAutoExpand)
        .send()
        .await
        .expect("create_stack");
}

async fn code_sha(aws: &accel::aws::Aws, stack: &str, logical: &str) -> String {
    let ids = accel::sync::flows::deployed_resources(&aws.cloudformation(), stack).await.unwrap();
    let function = aws.lambda().get_function().function_name(&ids[logical].physical_id).send().await.unwrap();
    function.configuration().unwrap().code_sha256().unwrap().to_string()
}

fn sync(cloud: &LocalCloud, dir: &Path, app_dir: &Path, args: &[&str], input: Option<&str>) -> std::process::Output {
    let env = cloud.env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("__SAM_CLI_APP_DIR", app_dir.to_str().unwrap()));
    let mut all = vec!["sync", "--code"];
    all.extend(args);
    accel_with_input(dir, &all, &env, input)
}

/// The resources a sync reports as updated with `kind` (`code`, `layer` …).
fn synced_lines(out: &std::process::Output, kind: &str) -> Vec<String> {
    stderr(out)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|words| words.len() > 2 && words[1] == kind && words[2] == "synced")
        .map(|words| words[0].to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn code_sync_updates_only_what_changed() {
    let cloud = LocalCloud::shared();
    let aws = cloud.aws().await;
    let dir = copy_fixture(&repo().join("templates/blog"));
    let app_dir = tempfile::tempdir().unwrap();
    deploy_blog(&aws, "blog-code", dir.path()).await;
    let hello_before = code_sha(&aws, "blog-code", "HelloWorldFunction").await;

    // First run asks (as sam does) and remembers the answer in sam's file.
    let out = sync(cloud, dir.path(), app_dir.path(), &["--stack-name", "blog-code"], Some("y\n"));
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("Confirm that you are synchronizing a development stack."));
    let mut updated = synced_lines(&out, "code");
    updated.sort();
    assert_eq!(updated, ["GreetingFunction", "HelloWorldFunction"]);
    let hello_synced = code_sha(&aws, "blog-code", "HelloWorldFunction").await;
    let greeting_synced = code_sha(&aws, "blog-code", "GreetingFunction").await;
    assert_ne!(hello_synced, hello_before);

    // Nothing changed: nothing sent, no question asked (stdin is empty).
    let out = sync(cloud, dir.path(), app_dir.path(), &["--stack-name", "blog-code"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(synced_lines(&out, "code").is_empty(), "{}", stderr(&out));
    assert!(stderr(&out).contains("0 updated, 2 unchanged"), "{}", stderr(&out));

    // One handler edited: only that function's code changes.
    std::fs::write(dir.path().join("hello_world/app.py"), "def lambda_handler(e, c):\n    return 'edited'\n").unwrap();
    let out = sync(cloud, dir.path(), app_dir.path(), &["--stack-name", "blog-code"], None);
    assert_eq!(synced_lines(&out, "code"), ["HelloWorldFunction"], "{}", stderr(&out));
    assert_ne!(code_sha(&aws, "blog-code", "HelloWorldFunction").await, hello_synced);
    assert_eq!(code_sha(&aws, "blog-code", "GreetingFunction").await, greeting_synced);

    // --resource-id limits the work.
    std::fs::write(dir.path().join("hello_world/app.py"), "def lambda_handler(e, c):\n    return 'again'\n").unwrap();
    std::fs::write(dir.path().join("greeting/app.py"), "def lambda_handler(e, c):\n    return 'hi'\n").unwrap();
    let out = sync(
        cloud,
        dir.path(),
        app_dir.path(),
        &["--stack-name", "blog-code", "--resource-id", "GreetingFunction"],
        None,
    );
    assert_eq!(synced_lines(&out, "code"), ["GreetingFunction"], "{}", stderr(&out));
    assert_ne!(code_sha(&aws, "blog-code", "GreetingFunction").await, greeting_synced);
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_and_errors() {
    let cloud = LocalCloud::shared();
    let dir = copy_fixture(&repo().join("templates/blog"));
    let app_dir = tempfile::tempdir().unwrap();

    let out = sync(cloud, dir.path(), app_dir.path(), &["--stack-name", "whatever"], Some("n\n"));
    assert_eq!(out.status.code(), Some(0), "declining ends the run, as in sam");
    assert!(!dir.path().join(".aws-sam").exists(), "nothing built");

    let out = sync(cloud, dir.path(), app_dir.path(), &["--stack-name", "whatever"], None);
    assert_eq!(out.status.code(), Some(1), "end of input aborts");
    assert!(stdout(&out).contains("Aborted!"));

    let out = sync(cloud, dir.path(), app_dir.path(), &["--stack-name", "no-such-stack"], Some("y\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Error: Invalid --stack-name parameter. Stack with id 'no-such-stack' does not exist"),
        "{}",
        stderr(&out)
    );
}
