//! `accel sync --watch` as a child process against the local cloud, driven
//! by real file edits in a temporary project.

use std::time::Duration;

use crate::support::{Running, TestContext, copy_dir};

const STACK: &str = "watched";

/// Whether `line` reports `resource` synced (`NAME KIND synced in N ms`),
/// with `kind` when given.
fn synced(line: &str, resource: &str, kind: Option<&str>) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.len() > 3
        && words[0] == resource
        && kind.is_none_or(|k| words[1] == k)
        && words[2] == "synced"
        && words[3] == "in"
}

fn count(text: &str, resource: &str) -> usize {
    text.lines().filter(|l| synced(l, resource, None)).count()
}

/// `accel sync --watch` of `stack`, its deploy confirmed.
fn start(ctx: &TestContext, stack: &str) -> Running {
    ctx.accel(&["sync", "--stack-name", stack, "--watch"]).stdin("y\n").spawn()
}

/// Polls an async lookup from the synchronous wait loop.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_syncs_every_kind_of_save() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    let watch = start(&ctx, STACK);
    watch.wait_for_stderr("the first sync", |t| t.contains("Sync watch started."));
    assert!(watch.stderr().contains("Infra sync completed"), "the first pass deploys: {}", watch.stderr());

    // A handler edit updates exactly that function.
    let world = ctx.code_sha(STACK, "WorldFunction").await;
    let hello = ctx.code_sha(STACK, "HelloFunction").await;
    let before = watch.stderr().len();
    ctx.write("hello/app.py", "def handler(e, c):\n    return 1\n");
    let text =
        watch.wait_for_stderr("the handler edit", |t| t.lines().any(|l| synced(l, "HelloFunction", Some("code"))));
    assert_ne!(ctx.code_sha(STACK, "HelloFunction").await, hello);
    assert_eq!(ctx.code_sha(STACK, "WorldFunction").await, world);
    // What one edit prints, once its sync is done.
    ctx.snapshot_settings().bind(|| insta::assert_snapshot!("watch_one_edit", &text[before..]));

    // An atomic save (write a temporary file, rename it over) is seen.
    let hello = ctx.code_sha(STACK, "HelloFunction").await;
    let before = count(&watch.stderr(), "HelloFunction");
    ctx.write("hello/app.py.tmp-save", "def handler(e, c):\n    return 2\n");
    std::fs::rename(ctx.join("hello/app.py.tmp-save"), ctx.join("hello/app.py")).unwrap();
    watch.wait_for_stderr("the atomic save", |t| count(t, "HelloFunction") > before);
    assert_ne!(ctx.code_sha(STACK, "HelloFunction").await, hello);

    // Ten rapid saves: one or two syncs, and the last content is deployed.
    let before = count(&watch.stderr(), "WorldFunction");
    for i in 0..10 {
        ctx.write("world/app.py", &format!("def handler(e, c):\n    return {i}\n"));
        std::thread::sleep(Duration::from_millis(10));
    }
    watch.wait_for_stderr("the burst", |t| count(t, "WorldFunction") > before);
    std::thread::sleep(Duration::from_millis(800));
    let syncs = count(&watch.stderr(), "WorldFunction") - before;
    assert!((1..=2).contains(&syncs), "{syncs} syncs for one burst:\n{}", watch.stderr());
    let check = ctx.accel(&["sync", "--stack-name", STACK, "--code", "--resource-id", "WorldFunction"]).run();
    assert!(check.stderr.contains("0 updated"), "the final save is deployed: {check}");

    // A broken template is reported and the loop goes on; the fix (a memory
    // size next to a new output, which only CloudFormation deploys) goes
    // through CloudFormation, in one deploy.
    let template = ctx.read("template.yaml");
    ctx.write("template.yaml", &format!("{template}\n  Broken: [\n"));
    watch.wait_for_stderr("the broken template", |t| t.contains("Code sync is paused until the template is fixed."));
    let fixed = template.replace("MemorySize: 128", "MemorySize: 1024");
    ctx.write("template.yaml", &format!("{fixed}\nOutputs:\n  Memory:\n    Value: '1024'\n"));
    watch.wait_for_stderr("the infra sync", |t| t.matches("Infra sync completed").count() == 2);
    assert!(watch.stderr().contains("Outputs: changed: CloudFormation"), "{}", watch.stderr());
    assert_eq!(ctx.function(STACK, "WorldFunction").await.memory_size(), Some(1024));

    // A template change to a CodeUri only: code sync, no CloudFormation call.
    let calls_before = ctx.calls().len();
    copy_dir(&ctx.join("hello"), &ctx.join("hello2"));
    ctx.write("hello2/app.py", "def handler(e, c):\n    return 'moved'\n");
    let hello = ctx.code_sha(STACK, "HelloFunction").await;
    ctx.replace("template.yaml", "CodeUri: hello/", "CodeUri: hello2/");
    watch.wait_for_stderr("the CodeUri change", |t| t.contains("code locations only"));
    watch.wait_for_stderr("its code sync", |_| block_on(ctx.code_sha(STACK, "HelloFunction")) != hello);
    let calls = ctx.calls();
    let new_calls = &calls[calls_before..];
    assert!(!new_calls.iter().any(|c| c.contains("UpdateStack")), "{new_calls:?}");
}

/// An infra sync that fails for a reason a save can fix (here a broken
/// build) is not a pause: the next save runs it again, with every edit made
/// meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_infra_sync_runs_again_on_the_next_save() {
    const BROKEN: &str = "broken-start";
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    ctx.write("hello/requirements.txt", "-r missing.txt\n");
    let watch = start(&ctx, BROKEN);
    watch.wait_for_stderr("the failed first sync", |t| {
        t.contains("Failed to sync infra: it runs again on the next save.")
    });
    ctx.write("hello/app.py", "def handler(e, c):\n    return \"fixed\"\n");
    ctx.write("hello/requirements.txt", "# no dependencies\n");
    watch.wait_for_stderr("the infra sync after the fix", |t| t.contains("Infra sync completed"));
    assert!(!ctx.code_sha(BROKEN, "HelloFunction").await.is_empty(), "the stack was deployed");
    watch.stop();
    let check = ctx.accel(&["sync", "--stack-name", BROKEN, "--code", "--resource-id", "HelloFunction"]).run();
    assert!(check.stderr.contains("0 updated"), "the edit made while broken is deployed: {check}");
}

/// A file that cannot be read for a moment while it is saved (Windows: an
/// editor or a scanner holds it; anywhere: missing between delete and
/// create) does not lose the edit: the sync is tried again until the file
/// reads. Here the file is a dangling link whose target appears outside the
/// project, so no file event announces that it became readable.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn an_edit_unreadable_for_a_moment_is_deployed_once_readable() {
    const HELD: &str = "held-save";
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    let watch = start(&ctx, HELD);
    watch.wait_for_stderr("the first sync", |t| t.contains("Sync watch started."));
    let hello = ctx.code_sha(HELD, "HelloFunction").await;
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("app.py");
    std::fs::remove_file(ctx.join("hello/app.py")).unwrap();
    std::os::unix::fs::symlink(&target, ctx.join("hello/app.py")).unwrap();
    watch.wait_for_stderr("a planned retry", |t| t.contains("Retrying the code sync in"));
    assert_eq!(ctx.code_sha(HELD, "HelloFunction").await, hello, "nothing half-read was deployed");
    std::fs::write(&target, "def handler(e, c):\n    return 'readable'\n").unwrap();
    watch.wait_for_stderr("the retried sync", |t| t.lines().any(|l| synced(l, "HelloFunction", Some("code"))));
    assert_ne!(ctx.code_sha(HELD, "HelloFunction").await, hello);
    watch.stop();
    let check = ctx.accel(&["sync", "--stack-name", HELD, "--code", "--resource-id", "HelloFunction"]).run();
    assert!(check.stderr.contains("0 updated"), "the readable content is what was deployed: {check}");
}

/// A template rewritten with Windows line endings only (an editor's or
/// git's `autocrlf`) is the same template: nothing is deployed.
#[tokio::test(flavor = "multi_thread")]
async fn a_crlf_only_rewrite_of_the_template_deploys_nothing() {
    const CRLF: &str = "crlf-rewrite";
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    let watch = start(&ctx, CRLF);
    watch.wait_for_stderr("the first sync", |t| t.contains("Sync watch started."));
    let calls_before = ctx.calls().len();
    let template = ctx.read("template.yaml");
    ctx.write("template.yaml", &template.replace('\n', "\r\n"));
    watch.wait_for_stderr("the CRLF rewrite", |t| t.contains("The template is as last synced: nothing to deploy."));
    std::thread::sleep(Duration::from_millis(500));
    let calls = ctx.calls();
    let new_calls = &calls[calls_before..];
    let writes = ["cloudformation:Update", "cloudformation:Create", "cloudformation:Execute", "lambda:PUT", "s3:PUT"];
    assert!(!new_calls.iter().any(|c| writes.iter().any(|w| c.starts_with(w))), "{new_calls:?}");
    assert_eq!(watch.stderr().matches("Infra sync completed").count(), 1, "{}", watch.stderr());
}
