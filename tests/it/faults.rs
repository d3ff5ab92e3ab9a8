//! Faults on the wire: outages, hangs and lost answers, through the fault
//! proxy ([`crate::proxy`]) between `accel` and the local cloud. Real traffic
//! on loopback, no mocked SDK: what is asserted is what a user would see.

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::StackStatus;
use base64::Engine;
use sha2::Digest;

use crate::proxy::{FaultProxy, Mode};
use crate::support::{RunOutput, Running, TestCommand, TestContext, files_of, now_ms};

/// Short call limits, so that a hang ends in seconds: 2 s to connect or to
/// wait for an answer, 3 s per call, two attempts.
fn impatient<'a>(command: TestCommand<'a>, proxy: &FaultProxy) -> TestCommand<'a> {
    command
        .env("AWS_ENDPOINT_URL", &proxy.endpoint())
        .env("ACCEL_CONNECT_TIMEOUT", "2")
        .env("ACCEL_READ_TIMEOUT", "2")
        .env("ACCEL_OPERATION_TIMEOUT", "3")
        .env("AWS_MAX_ATTEMPTS", "2")
}

/// The lines starting `Error:`, on either stream.
fn error_lines(out: &RunOutput) -> Vec<String> {
    out.text().lines().filter(|l| l.starts_with("Error:")).map(str::to_string).collect()
}

/// Runs `command` and checks how it fails: exit code 1 within `bound`, one
/// `Error:` line, starting with `prefix` (the service and the operation),
/// and no Rust `Debug` dump anywhere.
fn assert_one_readable_error(command: TestCommand<'_>, prefix: &str, bound: Duration) -> RunOutput {
    let started = Instant::now();
    let out = command.run();
    let took = started.elapsed();
    assert_eq!(out.code, Some(1), "{out}");
    assert!(took < bound, "took {took:?} (limit {bound:?}): {out}");
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "exactly one Error: line: {out}");
    assert!(errors[0].starts_with(prefix), "the error names the call ({prefix}): {out}");
    for dump in ["DispatchFailure {", "ConnectorError {", "TimeoutError {", "Some(", "kind: "] {
        assert!(!out.text().contains(dump), "no Debug dump ({dump}): {out}");
    }
    out
}

/// `accel logs` and `accel sync --code` (confirmed) against `proxy` in
/// `mode`: each fails on its first call with one readable line, in time.
fn unreachable_endpoint(mode: Mode, how: &str) {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    let proxy = FaultProxy::start();
    proxy.set(mode);
    let bound = Duration::from_secs(30);
    let expected = format!("Error: CloudFormation ListStackResources: {how}");
    let logs = impatient(ctx.accel(&["logs", "--stack-name", "x"]), &proxy);
    assert_one_readable_error(logs, &expected, bound);
    let sync = impatient(ctx.accel(&["sync", "--code", "--stack-name", "x"]), &proxy).stdin("y\n");
    let out = assert_one_readable_error(sync, &expected, bound);
    assert!(out.stdout.contains("Confirm that you are synchronizing a development stack."), "{out}");
}

/// An endpoint that accepts connections and never answers: the call limits
/// end the wait (3 s per call here, retries included).
#[test]
fn a_hanging_endpoint_ends_in_one_readable_error() {
    unreachable_endpoint(Mode::Blackhole, "no answer in time (the call timed out)");
}

#[test]
fn a_refused_endpoint_ends_in_one_readable_error() {
    unreachable_endpoint(Mode::Refuse, "dispatch failure: io error: ");
}

/// `accel logs --tail` outlives an outage: it says so, keeps polling, and
/// prints what arrives once the endpoint is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_tail_rides_out_an_outage() {
    let ctx = TestContext::new().with_cloud();
    let group = "/faults/tail";
    let logs = ctx.logs();
    logs.create_log_group().log_group_name(group).send().await.expect("create_log_group");
    logs.create_log_stream().log_group_name(group).log_stream_name("s").send().await.expect("create_log_stream");
    let proxy = FaultProxy::start();
    proxy.set(Mode::Refuse);
    let tail = impatient(ctx.accel(&["logs", "--cw-log-group", group, "--tail"]), &proxy).spawn();
    tail.wait_for_stderr("the outage", |t| t.contains("Lost the connection"));
    // Still running a while later (a tail that gave up would print an error and stop).
    std::thread::sleep(Duration::from_secs(2));
    assert!(!tail.stderr().contains("Error:"), "{}", tail.stderr());

    proxy.set(Mode::Pass);
    let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
        .timestamp(now_ms())
        .message("after the outage")
        .build()
        .unwrap();
    logs.put_log_events().log_group_name(group).log_stream_name("s").log_events(event).send().await.expect("put");
    tail.wait_for_stdout("the event put after the outage", |t| t.contains("after the outage"));
    tail.wait_for_stderr("the reconnection", |t| t.contains("Connection restored after"));
    let out = tail.stop();
    assert_eq!(out.stdout.matches("after the outage").count(), 1, "{out}");
    assert_eq!(out.stderr.matches("Lost the connection").count(), 1, "one notice per outage: {out}");
    assert!(!out.text().contains("DispatchFailure {"), "{out}");
}

/// The stack's own events (not its resources'), newest first: (status, ClientRequestToken).
async fn stack_events(ctx: &TestContext, stack: &str) -> Vec<(String, Option<String>)> {
    let out = ctx.cfn().describe_stack_events().stack_name(stack).send().await.expect("describe_stack_events");
    out.stack_events()
        .iter()
        .filter(|e| e.logical_resource_id() == Some(stack))
        .map(|e| {
            let status = e.resource_status().map(|s| s.as_str().to_string()).unwrap_or_default();
            (status, e.client_request_token().map(str::to_string))
        })
        .collect()
}

async fn stack_status(ctx: &TestContext, stack: &str) -> StackStatus {
    let out = ctx.cfn().describe_stacks().stack_name(stack).send().await.expect("describe_stacks");
    out.stacks()[0].stack_status().cloned().expect("a status")
}

/// CreateStack (then UpdateStack) reaches CloudFormation, which acts, but
/// the answer is lost: the SDK sends the call again with the same
/// ClientRequestToken, which CloudFormation takes for the same request, and
/// the sync ends well.
///
/// The local cloud does what AWS does here only thanks to its
/// ClientRequestToken patch (tests/cloud/server.py). Plain moto would answer
/// the retried CreateStack with AlreadyExistsException and its stack events
/// carry no token, so accel could not tell its own retry from a stranger's
/// stack: the sync would exit 1 ("Failed to create the stack"). Likewise a
/// retried UpdateStack would be taken for a second update with nothing to
/// change ("No updates are to be performed.").
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_stack_answer_is_the_same_request() {
    const STACK: &str = "faults-lost-answer";
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    ctx.s3().create_bucket().bucket("faults-lost-answer").send().await.expect("create_bucket");
    let proxy = FaultProxy::start();
    let sync = ["sync", "--stack-name", STACK, "--s3-bucket", "faults-lost-answer"];
    let calls = |out: &RunOutput, action: &str| out.calls.iter().filter(|c| *c == action).count();

    proxy.set(Mode::DropNextAnswer("Action=CreateStack".into()));
    let out = ctx.accel(&sync).env("AWS_ENDPOINT_URL", &proxy.endpoint()).stdin("y\n").assert_success();
    assert_eq!(proxy.dropped(), 1, "the CreateStack answer was dropped: {out}");
    assert_eq!(calls(&out, "cloudformation:CreateStack"), 2, "sent again after the lost answer: {out}");
    assert!(out.stderr.contains("Stack creation succeeded."), "{out}");
    assert_eq!(stack_status(&ctx, STACK).await, StackStatus::CreateComplete);
    let events = stack_events(&ctx, STACK).await;
    let token = events[0].1.clone().expect("the events carry the request's token");
    assert!(token.starts_with("accel-"), "{token}");
    assert!(events.iter().all(|(_, t)| t.as_deref() == Some(&token)), "one operation, one token: {events:?}");
    assert_eq!(events.len(), 2, "created once: {events:?}");

    ctx.replace("template.yaml", "MemorySize: 128", "MemorySize: 256");
    proxy.set(Mode::DropNextAnswer("Action=UpdateStack".into()));
    let out = ctx.accel(&sync).env("AWS_ENDPOINT_URL", &proxy.endpoint()).assert_success();
    assert_eq!(proxy.dropped(), 2, "the UpdateStack answer was dropped: {out}");
    assert_eq!(calls(&out, "cloudformation:UpdateStack"), 2, "sent again after the lost answer: {out}");
    assert_eq!(stack_status(&ctx, STACK).await, StackStatus::UpdateComplete);
    assert_eq!(ctx.function(STACK, "WorldFunction").await.memory_size(), Some(256));
    let events = stack_events(&ctx, STACK).await;
    assert_eq!(events.len(), 4, "updated once: {events:?}");
    let update = events[0].1.clone().expect("the update's events carry its token");
    assert!(update != token && events[1].1.as_deref() == Some(&update), "{events:?}");
}

// ---------------------------------------------------------------------------
// `accel sync --watch` under faults.

/// The zip functions of tests/fixtures/apps/syncapp and their CodeUri.
const FUNCTIONS: [(&str, &str); 2] = [("HelloFunction", "hello"), ("WorldFunction", "world")];

/// The relative paths of the files under `dir` (symlinks followed), sorted
/// as strings, `/`-separated.
fn sorted_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if std::fs::metadata(&path).unwrap().is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The deterministic zip accel makes of a built folder (src/package
/// `zip_dir`): entries in path order, each folder once before its files,
/// every time 1980-01-01, DEFLATE, read bits added to files and exec bits to
/// folders.
fn lambda_zip(dir: &Path) -> Vec<u8> {
    use std::io::Write;
    #[cfg(unix)]
    let mode = |path: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    };
    // No modes on Windows: accel (as sam) gives every entry 0755.
    #[cfg(not(unix))]
    let mode = |_: &Path| 0o755;
    let base = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut folders = std::collections::BTreeSet::new();
    for rel in sorted_files(dir) {
        let parts: Vec<&str> = rel.split('/').collect();
        for depth in 1..parts.len() {
            let folder = parts[..depth].join("/");
            if folders.insert(folder.clone()) {
                let options = base.unix_permissions(mode(&dir.join(&folder)) | 0o111);
                zip.add_directory(format!("{folder}/"), options).unwrap();
            }
        }
        let path = dir.join(&rel);
        zip.start_file(rel.as_str(), base.unix_permissions(mode(&path) | 0o444)).unwrap();
        zip.write_all(&std::fs::read(&path).unwrap()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Lambda's CodeSha256 of a zip: its SHA-256, base64.
fn code_sha256(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(zip))
}

/// What keeps the deployed functions from matching the project: for each
/// zip function, its built folder must hold exactly the files of its source
/// folder, and Lambda must run the zip of that folder. Empty when all match.
async fn drift(ctx: &TestContext, stack: &str, only: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (function, code_uri) in FUNCTIONS.into_iter().filter(|(f, _)| only.is_empty() || only.contains(f)) {
        let source = ctx.join(code_uri);
        let built = ctx.join(&format!(".aws-sam/auto-dependency-layer/{function}"));
        if !source.is_dir() || !built.is_dir() {
            found.push(format!("{function}: no {}", if source.is_dir() { "build" } else { "source" }));
            continue;
        }
        let (source_files, built_files) = (files_of(&source), files_of(&built));
        if source_files != built_files {
            let names = |m: &std::collections::BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
            found.push(format!(
                "{function}: built files differ from the source (source {:?}, built {:?})",
                names(&source_files),
                names(&built_files)
            ));
            continue;
        }
        let (deployed, local) = (ctx.code_sha(stack, function).await, code_sha256(&lambda_zip(&built)));
        if deployed != local {
            found.push(format!("{function}: Lambda runs {deployed}, the build zips to {local}"));
        }
    }
    found
}

/// Waits until [`drift`] finds nothing for the `only` functions (all when
/// empty), failing after `limit`.
async fn wait_in_sync(ctx: &TestContext, watch: &Running, stack: &str, only: &[&str], limit: Duration) {
    let started = Instant::now();
    loop {
        let found = drift(ctx, stack, only).await;
        if found.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "after {limit:?}, Lambda still differs from the project: {found:#?}\n--- watch stderr\n{}",
            watch.stderr()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until `done` holds for the watch's stderr, failing after `limit`.
async fn wait_stderr(watch: &Running, what: &str, limit: Duration, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = watch.stderr();
        if done(&text) {
            return text;
        }
        assert!(started.elapsed() < limit, "after {limit:?}, no {what}:\n--- watch stderr\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A watch on a copy of syncapp (plus `extra` files), behind `proxy`,
/// deploying `stack` with artifacts in a bucket of its own; returns once the
/// first sync is done and Lambda matches the project.
async fn start_watch(ctx: &TestContext, proxy: &FaultProxy, stack: &str) -> Running {
    ctx.s3().create_bucket().bucket(stack).send().await.expect("create_bucket");
    let watch = ctx
        .accel(&["sync", "--stack-name", stack, "--watch", "--s3-bucket", stack])
        .env("AWS_ENDPOINT_URL", &proxy.endpoint())
        .env("AWS_MAX_ATTEMPTS", "2")
        .stdin("y\n")
        .spawn();
    wait_stderr(&watch, "first sync", Duration::from_secs(90), |t| t.contains("Sync watch started.")).await;
    assert!(watch.stderr().contains("Infra sync completed"), "{}", watch.stderr());
    wait_in_sync(ctx, &watch, stack, &[], Duration::from_secs(10)).await;
    watch
}

/// Ends the watch, then checks that a plain code sync finds nothing left to
/// send: accel agrees with [`drift`].
fn finish(ctx: &TestContext, watch: Running, stack: &str) {
    let out = watch.stop();
    assert!(!out.stderr.contains("panicked"), "{out}");
    let functions = FUNCTIONS.map(|(f, _)| f);
    let args = ["sync", "--code", "--stack-name", stack, "--resource-id", functions[0], "--resource-id", functions[1]];
    let check = ctx.accel(&args).assert_success();
    assert!(check.stderr.contains("0 updated"), "nothing left to send: {check}\n--- watch\n{out}");
}

const FOREVER: Duration = Duration::from_secs(60);

/// A template broken by a save (invalid YAML), a handler edited while it is
/// broken, then the template fixed: the edit reaches Lambda.
#[tokio::test(flavor = "multi_thread")]
async fn watch_broken_template_then_fixed() {
    const STACK: &str = "faults-watch-template";
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    let proxy = FaultProxy::start();
    let watch = start_watch(&ctx, &proxy, STACK).await;
    let template = ctx.read("template.yaml");
    ctx.write("template.yaml", &format!("{template}\n  Broken: [\n"));
    let paused = "Code sync is paused until the template is fixed.";
    let before = wait_stderr(&watch, "the pause", FOREVER, |t| t.contains(paused)).await.len();
    ctx.write("hello/app.py", "def handler(e, c):\n    return 'edited while broken'\n");
    wait_stderr(&watch, "the edit seen", FOREVER, |t| t[before..].contains("code of HelloFunction")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!drift(&ctx, STACK, &[]).await.is_empty(), "nothing synced while the template is broken");
    ctx.write("template.yaml", &template);
    wait_in_sync(&ctx, &watch, STACK, &[], FOREVER).await;
    finish(&ctx, watch, STACK);
}

/// A handler deleted (that state is synced), then restored: Lambda runs the
/// original code again.
#[tokio::test(flavor = "multi_thread")]
async fn watch_handler_deleted_and_restored() {
    const STACK: &str = "faults-watch-deleted";
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    let proxy = FaultProxy::start();
    let watch = start_watch(&ctx, &proxy, STACK).await;
    let original = ctx.read("hello/app.py");
    let original_sha = ctx.code_sha(STACK, "HelloFunction").await;
    std::fs::remove_file(ctx.join("hello/app.py")).unwrap();
    wait_in_sync(&ctx, &watch, STACK, &[], FOREVER).await;
    assert_ne!(ctx.code_sha(STACK, "HelloFunction").await, original_sha, "the deletion is synced");
    ctx.write("hello/app.py", &original);
    wait_in_sync(&ctx, &watch, STACK, &[], FOREVER).await;
    assert_eq!(ctx.code_sha(STACK, "HelloFunction").await, original_sha, "the same code, the same zip");
    finish(&ctx, watch, STACK);
}

/// A CodeUri folder renamed away, its handler edited there, and renamed
/// back: the edit reaches Lambda.
#[tokio::test(flavor = "multi_thread")]
async fn watch_code_folder_renamed_away_and_back() {
    const STACK: &str = "faults-watch-renamed";
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    let proxy = FaultProxy::start();
    let watch = start_watch(&ctx, &proxy, STACK).await;
    let original_sha = ctx.code_sha(STACK, "WorldFunction").await;
    let before = watch.stderr().len();
    std::fs::rename(ctx.join("world"), ctx.join("world-away")).unwrap();
    wait_stderr(&watch, "the rename seen", FOREVER, |t| t[before..].contains("WorldFunction")).await;
    ctx.write("world-away/app.py", "def handler(e, c):\n    return 'edited away'\n");
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::rename(ctx.join("world-away"), ctx.join("world")).unwrap();
    wait_in_sync(&ctx, &watch, STACK, &[], FOREVER).await;
    assert_ne!(ctx.code_sha(STACK, "WorldFunction").await, original_sha, "the edit is deployed");
    finish(&ctx, watch, STACK);
}

/// 50 saves in quick succession over four files, two per function: the
/// last content of each file is what Lambda runs.
#[tokio::test(flavor = "multi_thread")]
async fn watch_rapid_saves_last_one_wins() {
    const STACK: &str = "faults-watch-rapid";
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    ctx.write("hello/util.py", "VALUE = 'hello'\n");
    ctx.write("world/util.py", "VALUE = 'world'\n");
    let proxy = FaultProxy::start();
    let watch = start_watch(&ctx, &proxy, STACK).await;
    let files = ["hello/app.py", "world/util.py", "hello/util.py", "world/app.py"];
    for i in 0..50 {
        let file = files[i % files.len()];
        ctx.write(file, &format!("# save {i} of {file}\ndef handler(e, c):\n    return {i}\n"));
        std::thread::sleep(Duration::from_millis([3, 17, 8, 29, 1][i % 5]));
    }
    wait_in_sync(&ctx, &watch, STACK, &[], FOREVER).await;
    for (k, file) in files.iter().enumerate() {
        let last = (0..50).rev().find(|i| i % files.len() == k).unwrap();
        assert!(ctx.read(file).starts_with(&format!("# save {last} of")), "{file}: {}", ctx.read(file));
    }
    finish(&ctx, watch, STACK);
}

/// The waits the watch announced after `from` ("Retrying the code sync in N s").
fn retry_waits(text: &str) -> Vec<u64> {
    let waits = text.lines().filter_map(|l| l.strip_prefix("Retrying the code sync in ")?.split(' ').next());
    waits.map(|n| n.parse().unwrap()).collect()
}

/// An outage of `seconds` (the endpoint refuses connections) during which a
/// handler is edited: once the endpoint is back, the edit reaches Lambda
/// with no other save, the retries having backed off 1, 2, 4 … 30 s. With
/// `warm`, a code sync before the outage leaves the deployed stack known, so
/// the call that fails is Lambda's; else it is CloudFormation's reading of
/// the stack.
async fn outage(stack: &str, seconds: u64, warm: bool) {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    let proxy = FaultProxy::start();
    let watch = start_watch(&ctx, &proxy, stack).await;
    if warm {
        ctx.write("world/app.py", "def handler(e, c):\n    return 'edited online'\n");
        wait_in_sync(&ctx, &watch, stack, &[], FOREVER).await;
        // Lambda has the code before it has applied it: the sync ends later.
        wait_stderr(&watch, "the end of the sync", FOREVER, |t| {
            t.lines().any(|l| l.starts_with("WorldFunction") && l.contains(" synced in "))
        })
        .await;
    }
    proxy.set(Mode::Refuse);
    let down = Instant::now();
    let before = watch.stderr().len();
    ctx.write("hello/app.py", "def handler(e, c):\n    return 'edited offline'\n");
    wait_stderr(&watch, "a retry planned", FOREVER, |t| !retry_waits(&t[before..]).is_empty()).await;
    let failed_call = if warm { "Error: HelloFunction: Lambda " } else { "Error: CloudFormation ListStackResources: " };
    assert!(watch.stderr()[before..].contains(failed_call), "{}", watch.stderr());
    tokio::time::sleep(Duration::from_secs(seconds).saturating_sub(down.elapsed())).await;
    let found = drift(&ctx, stack, &["HelloFunction"]).await;
    assert!(!found.is_empty(), "the edit cannot have reached Lambda during the outage");
    proxy.set(Mode::Pass);
    // The longest wait between two tries is 30 s.
    wait_in_sync(&ctx, &watch, stack, &[], Duration::from_secs(45)).await;
    let text = watch.stderr()[before..].to_string();
    assert_eq!(text.matches("code of HelloFunction").count(), 1, "one save, seen once: {text}");
    let waits = retry_waits(&text);
    let expected: Vec<u64> = (0..waits.len() as u32).map(|n| 2u64.pow(n.min(5)).min(30)).collect();
    assert_eq!(waits, expected, "{text}");
    // 1 + 2 + 4 s of waits fit in any outage of 10 s; past 1 + 2 + … + 16 s
    // (plus the failed calls), the waits reach their ceiling.
    assert!(waits.len() >= 3, "retried all along the outage: {text}");
    assert_eq!(waits.contains(&30), seconds >= 70, "{text}");
    finish(&ctx, watch, stack);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_outage_of_10_s() {
    outage("faults-watch-outage-10", 10, false).await;
}

/// LONG (about 100 s): an outage longer than the longest wait between two
/// tries (30 s), so the retries reach their ceiling.
#[tokio::test(flavor = "multi_thread")]
async fn watch_outage_of_70_s() {
    outage("faults-watch-outage-70", 70, true).await;
}

/// One function's build breaks (its requirements.txt includes a file that
/// does not exist: pip fails at once, offline) while the other's handler
/// is edited: the other syncs; once fixed, the broken one syncs too.
#[tokio::test(flavor = "multi_thread")]
async fn watch_broken_build_leaves_the_others_syncing() {
    const STACK: &str = "faults-watch-build";
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    ctx.write("hello/requirements.txt", "# no dependencies\n");
    let proxy = FaultProxy::start();
    let watch = start_watch(&ctx, &proxy, STACK).await;
    let before = watch.stderr().len();
    ctx.write("hello/requirements.txt", "-r missing-file.txt\n");
    ctx.write("hello/app.py", "def handler(e, c):\n    return 'edited while broken'\n");
    ctx.write("world/app.py", "def handler(e, c):\n    return 'edited'\n");
    wait_in_sync(&ctx, &watch, STACK, &["WorldFunction"], FOREVER).await;
    let pending = "Still pending: HelloFunction";
    wait_stderr(&watch, "HelloFunction pending", FOREVER, |t| t[before..].contains(pending)).await;
    assert!(!drift(&ctx, STACK, &["HelloFunction"]).await.is_empty(), "a failed build is not deployed");
    ctx.write("hello/requirements.txt", "# no dependencies again\n");
    wait_in_sync(&ctx, &watch, STACK, &[], FOREVER).await;
    finish(&ctx, watch, STACK);
}

// ---------------------------------------------------------------------------
// The local cloud's fault mode: a fraction of this test's calls answered 500,
// 503 or with the connection closed before any answer (tests/cloud/server.py,
// "Faults"). The SDK's standard retries carry accel through.

/// With one call in five failing, an infra sync, a code sync and a log
/// fetch of syncapp (functions, a layer, REST and HTTP APIs, a state
/// machine) each end well and leave what they would have without faults.
#[tokio::test(flavor = "multi_thread")]
async fn sync_code_sync_and_logs_ride_out_one_call_in_five_failing() {
    const STACK: &str = "faults-twenty-percent";
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    ctx.s3().create_bucket().bucket(STACK).send().await.expect("create_bucket");
    ctx.set_faults(0.2, &["500", "503", "reset"]);

    let out = ctx.accel(&["sync", "--stack-name", STACK, "--s3-bucket", STACK]).stdin("y\n").run();
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(stack_status(&ctx, STACK).await, StackStatus::CreateComplete);
    let after_infra = ctx.faults().len();
    assert!(after_infra > 0, "faults were injected: {:?}", out.calls);

    let before = ctx.code_sha(STACK, "HelloFunction").await;
    ctx.write("hello/app.py", "def handler(e, c):\n    return 'after faults'\n");
    let out = ctx.accel(&["sync", "--code", "--stack-name", STACK, "--s3-bucket", STACK]).run();
    assert_eq!(out.code, Some(0), "{out}");
    assert_ne!(ctx.code_sha(STACK, "HelloFunction").await, before, "the new code reached Lambda: {out}");
    let config = ctx.function(STACK, "HelloFunction").await;
    assert_eq!(config.last_update_status().map(|s| s.as_str()), Some("Successful"), "{out}");

    let group = format!("/aws/lambda/{}", ctx.physical_id(STACK, "HelloFunction").await);
    let logs = ctx.logs();
    let _ = logs.create_log_group().log_group_name(&group).send().await;
    logs.create_log_stream().log_group_name(&group).log_stream_name("s").send().await.expect("create_log_stream");
    let events = (0..5).map(|i| {
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
            .timestamp(now_ms() - 5000 + i)
            .message(format!("line {i} under faults"))
            .build()
            .unwrap()
    });
    let put = logs.put_log_events().log_group_name(&group).log_stream_name("s");
    put.set_log_events(Some(events.collect())).send().await.expect("put_log_events");
    let out = ctx.accel(&["logs", "--stack-name", STACK, "-n", "HelloFunction"]).run();
    assert_eq!(out.code, Some(0), "{out}");
    for i in 0..5 {
        assert_eq!(out.stdout.matches(&format!("line {i} under faults")).count(), 1, "{out}");
    }
    let faults = ctx.faults();
    for kind in ["500 ", "503 ", "reset "] {
        assert!(faults.iter().any(|f| f.starts_with(kind)), "a {kind}fault was met: {faults:?}");
    }
}

/// An endpoint that answers every call 503: accel, with its default retries
/// (sam's 10 attempts with backoff), gives up in bounded time with one
/// `Error:` line naming the call, and exit code 1.
#[test]
fn every_call_answered_503_ends_in_one_error_line() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    ctx.set_faults(1.0, &["503"]);
    let sync = ctx.accel(&["sync", "--code", "--stack-name", "faults-unavailable"]).stdin("y\n");
    // Nine waits of at most 1, 2, 4, 8, 16, 20, 20, 20, 20 s (each drawn at
    // random below its ceiling); a call is cut at 90 s in any case.
    let out = assert_one_readable_error(sync, "Error: ", Duration::from_secs(100));
    assert!(out.stderr.contains("ListStackResources"), "the error names the call: {out}");
    let attempts = ctx.faults().len();
    assert!((2..=10).contains(&attempts), "retried, then gave up: {attempts} attempts");
}
