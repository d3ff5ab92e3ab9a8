//! `accel logs` against the local cloud: a deployed two-function stack whose
//! log groups the test fills with PutLogEvents (the local cloud cannot run
//! functions), and X-Ray segments written with PutTraceSegments.

use std::time::Duration;

use serde_json::Value;

use crate::support::{RunOutput, TestContext, iso, now_ms};

const STACK: &str = "logs-app";

async fn put(ctx: &TestContext, group: &str, stream: &str, events: &[(i64, &str)]) {
    let logs = ctx.logs();
    let _ = logs.create_log_group().log_group_name(group).send().await;
    let _ = logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await;
    let events = events.iter().map(|(ts, m)| {
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(*ts).message(*m).build().unwrap()
    });
    let call = logs.put_log_events().log_group_name(group).log_stream_name(stream);
    call.set_log_events(Some(events.collect())).send().await.expect("put_log_events");
}

async fn function_group(ctx: &TestContext, id: &str) -> String {
    format!("/aws/lambda/{}", ctx.physical_id(STACK, id).await)
}

/// (resource, message) of each text line.
fn lines(out: &RunOutput) -> Vec<(String, String)> {
    out.stdout
        .lines()
        .filter_map(|l| {
            let mut words = l.splitn(4, ' ');
            let resource = words.next()?.to_string();
            let (_, _, message) = (words.next()?, words.next()?, words.next()?);
            Some((resource, message.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_fetch_filter_window_json_traces_and_tail() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    ctx.accel(&["sync", "--stack-name", STACK]).stdin("y\n").assert_success();
    let hello = function_group(&ctx, "HelloFunction").await;
    let world = function_group(&ctx, "WorldFunction").await;

    let t = now_ms() - 60_000;
    put(&ctx, &hello, "s1", &[(t, "hello one"), (t + 2000, "hello ERROR two"), (t + 4000, "hello three")]).await;
    put(&ctx, &world, "s2", &[(t + 1000, "world one"), (t + 3000, "world ERROR two")]).await;

    // Both groups, one stream in time order, each line named by its resource.
    let out = ctx.accel(&["logs", "--stack-name", STACK]).assert_success();
    let got = lines(&out);
    let expected = [
        ("HelloFunction", "hello one"),
        ("WorldFunction", "world one"),
        ("HelloFunction", "hello ERROR two"),
        ("WorldFunction", "world ERROR two"),
        ("HelloFunction", "hello three"),
    ];
    let got_pairs: Vec<(&str, &str)> = got.iter().map(|(r, m)| (r.as_str(), m.as_str())).collect();
    assert_eq!(got_pairs, expected, "{out}");
    ctx.snapshot_settings().bind(|| insta::assert_snapshot!("logs", out.stdout));

    // The filter pattern, and a --name.
    let out = ctx.accel(&["logs", "--stack-name", STACK, "--filter", "ERROR"]).assert_success();
    let messages: Vec<String> = lines(&out).into_iter().map(|(_, m)| m).collect();
    assert_eq!(messages, ["hello ERROR two", "world ERROR two"]);
    let out = ctx.accel(&["logs", "--stack-name", STACK, "-n", "WorldFunction"]).assert_success();
    assert!(lines(&out).iter().all(|(r, _)| r == "WorldFunction") && lines(&out).len() == 2, "{out}");

    // A time window in ISO-8601.
    let out = ctx.accel(&["logs", "--stack-name", STACK, "-s", &iso(t + 500), "-e", &iso(t + 3500)]).assert_success();
    let messages: Vec<String> = lines(&out).into_iter().map(|(_, m)| m).collect();
    assert_eq!(messages, ["world one", "hello ERROR two", "world ERROR two"]);

    // JSON: one object per line.
    let out = ctx.accel(&["logs", "--stack-name", STACK, "--output", "json"]).assert_success();
    let objects: Vec<Value> =
        out.stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(objects.len(), 5);
    for o in &objects {
        for key in ["logStreamName", "timestamp", "message", "ingestionTime", "eventId"] {
            assert!(o.get(key).is_some(), "{key} in {o}");
        }
    }

    // --cw-log-group on its own.
    put(&ctx, "/custom/group", "c", &[(t, "custom line")]).await;
    let out = ctx.accel(&["logs", "--cw-log-group", "/custom/group"]).assert_success();
    assert_eq!(lines(&out), [("/custom/group".to_string(), "custom line".to_string())]);

    // Traces.
    let segment = serde_json::json!({
        "trace_id": format!("1-{:08x}-0123456789abcdef01234567", t / 1000),
        "id": "0123456789abcdef", "name": "HelloFunction",
        "start_time": (t as f64) / 1000.0, "end_time": (t as f64) / 1000.0 + 0.25,
        "http": {"response": {"status": 200}}
    });
    ctx.xray().put_trace_segments().trace_segment_documents(segment.to_string()).send().await.expect("put trace");
    let out = ctx.accel(&["logs", "--stack-name", STACK, "--include-traces"]).assert_success();
    assert!(out.stdout.contains("XRay Event [revision"), "{out}");
    assert!(out.stdout.contains(" - 0.250s - HelloFunction [HTTP: 200]"), "{out}");

    // Errors: an unknown --name, a missing stack.
    let out = ctx.accel(&["logs", "--stack-name", STACK, "-n", "Nope"]).assert_code(1);
    assert!(out.stderr.contains("Resource name (Nope) does not exist. Available resource names:"), "{out}");
    let out = ctx.accel(&["logs", "--stack-name", "no-such-stack"]).assert_code(1);
    assert!(out.stderr.contains("Stack with id 'no-such-stack' does not exist"), "{out}");

    // Tail: events written after it starts, in both groups, each once, a late
    // one (older timestamp than what was already shown) included.
    let tail = ctx.accel(&["logs", "--stack-name", STACK, "--tail", "-s", "5m ago"]).spawn();
    let wait = |what: &str| tail.wait_for_stdout(what, |text| text.contains(what));
    wait("hello three");
    let now = now_ms();
    put(&ctx, &hello, "s1", &[(now, "tail hello")]).await;
    put(&ctx, &world, "s2", &[(now + 1, "tail world")]).await;
    wait("tail hello");
    wait("tail world");
    put(&ctx, &world, "s3", &[(now - 2000, "late world")]).await;
    wait("late world");
    std::thread::sleep(Duration::from_millis(2500));
    let text = tail.stop().stdout;
    for message in ["hello one", "world one", "tail hello", "tail world", "late world"] {
        assert_eq!(text.matches(message).count(), 1, "{message} once:\n{text}");
    }
}

/// `--tail` streams through StartLiveTail (one FilterLogEvents per group for
/// the window so far, no polling), over two sessions for eleven groups (AWS
/// takes ten per session), and opens them again when they end (the local
/// cloud ends them after 3 s; AWS after 3 hours): events written before and
/// after that are each printed once.
#[tokio::test(flavor = "multi_thread")]
async fn tail_streams_live_over_sessions_that_end() {
    let ctx = TestContext::new().with_cloud();
    let groups: Vec<String> = (0..11).map(|i| format!("/accel-live/group-{i}")).collect();
    for group in &groups {
        put(&ctx, group, "s", &[(now_ms() - 60_000, &format!("before {group}"))]).await;
    }
    let mut args = vec!["logs", "--tail", "-s", "5m ago"];
    for group in &groups {
        args.extend(["--cw-log-group", group.as_str()]);
    }
    let tail = ctx.accel(&args).spawn();
    tail.wait_for_stdout("the window so far", |text| text.contains("before /accel-live/group-10"));
    let sessions = |ctx: &TestContext| ctx.calls().iter().filter(|c| c.ends_with(":StartLiveTail")).count();
    // Both sessions open before the window is fetched (which, throttled at 5
    // FilterLogEvents per second, can outlast them: they are opened again).
    let calls = ctx.calls();
    let opened_first = calls.iter().take_while(|c| !c.ends_with(":FilterLogEvents"));
    assert_eq!(
        opened_first.filter(|c| c.ends_with(":StartLiveTail")).count(),
        2,
        "eleven groups, two sessions: {calls:?}"
    );
    put(&ctx, &groups[10], "s", &[(now_ms(), "live in group 10")]).await;
    tail.wait_for_stdout("an event of the second session", |text| text.contains("live in group 10"));
    // Past the end of the first sessions: new ones carry the next event.
    std::thread::sleep(Duration::from_millis(3500));
    put(&ctx, &groups[0], "s", &[(now_ms(), "live after the sessions ended")]).await;
    tail.wait_for_stdout("an event after the sessions ended", |text| text.contains("live after the sessions ended"));
    let text = tail.stop().stdout;
    assert!(sessions(&ctx) >= 4, "the sessions were opened again: {:?}", ctx.calls());
    // FilterLogEvents only for the window, and once for each group of a
    // session opened again (the gap), none of them throttled.
    let (calls, opened) = (ctx.calls(), sessions(&ctx));
    let polls = count_of(&calls, "FilterLogEvents");
    assert!(
        polls <= groups.len() + 10 * (opened - 2),
        "streamed, not polled ({polls} FilterLogEvents, {opened} sessions)"
    );
    assert_eq!(ctx.throttled(), Vec::<String>::new());
    for message in ["before /accel-live/group-0", "live in group 10", "live after the sessions ended"] {
        assert_eq!(text.matches(message).count(), 1, "{message} once:\n{text}");
    }
}

/// With Transaction Search on (segments go to CloudWatch Logs), X-Ray's
/// BatchGetTraces leaves traces unprocessed: `--include-traces` retrieves
/// them with StartTraceRetrieval and ListRetrievedTraces.
#[tokio::test(flavor = "multi_thread")]
async fn traces_come_through_transaction_search() {
    let ctx = TestContext::new().with_cloud();
    let t = now_ms() - 30_000;
    put(&ctx, "/accel-traces/group", "s", &[(t, "a line")]).await;
    let destination = aws_sdk_xray::types::TraceSegmentDestination::CloudWatchLogs;
    ctx.xray().update_trace_segment_destination().destination(destination).send().await.expect("destination");
    let segment = serde_json::json!({
        "trace_id": format!("1-{:08x}-fedcba9876543210fedcba98", t / 1000),
        "id": "fedcba9876543210", "name": "SearchedFunction",
        "start_time": (t as f64) / 1000.0, "end_time": (t as f64) / 1000.0 + 0.5,
        "http": {"response": {"status": 201}}
    });
    ctx.xray().put_trace_segments().trace_segment_documents(segment.to_string()).send().await.expect("put trace");
    let out = ctx.accel(&["logs", "--cw-log-group", "/accel-traces/group", "--include-traces", "-s", "5m ago"]).run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains(" - 0.500s - SearchedFunction [HTTP: 201]"), "{out}");
    for call in ["xray:POST /StartTraceRetrieval", "xray:POST /ListRetrievedTraces"] {
        assert!(out.calls.iter().any(|c| c == call), "{call}: {:?}", out.calls);
    }
}

/// `--tail` over fifty groups (five live tail sessions of ten) under
/// CloudWatch Logs' quotas (FilterLogEvents: 5 per second, which the window
/// so far and each reopening's catch-up stay under): an event written into
/// each group after the tail started is printed, once. Prints how long the
/// tail took to start and to show all fifty.
#[tokio::test(flavor = "multi_thread")]
// The time is reported (issue 14 asks for it), not asserted.
#[allow(clippy::print_stderr)]
async fn tail_over_fifty_groups_shows_an_event_of_each() {
    let ctx = TestContext::new().with_cloud();
    let groups: Vec<String> = (0..50).map(|i| format!("/accel-fifty/group-{i}")).collect();
    let logs = ctx.logs();
    for group in &groups {
        logs.create_log_group().log_group_name(group).send().await.expect("create_log_group");
        logs.create_log_stream().log_group_name(group).log_stream_name("s").send().await.expect("create_log_stream");
    }
    let mut args = vec!["logs", "--tail"];
    for group in &groups {
        args.extend(["--cw-log-group", group.as_str()]);
    }
    let started = std::time::Instant::now();
    let tail = ctx.accel(&args).spawn();
    let sessions = |ctx: &TestContext| ctx.calls().iter().filter(|c| c.ends_with(":StartLiveTail")).count();
    while sessions(&ctx) < 5 {
        assert!(started.elapsed() < Duration::from_secs(60), "five sessions: {:?}\n{}", ctx.calls(), tail.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = started.elapsed();
    for (i, group) in groups.iter().enumerate() {
        put(&ctx, group, "s", &[(now_ms(), &format!("fifty-{i} live"))]).await;
    }
    let written = started.elapsed();
    let text = tail
        .wait_for_stdout("an event of each group", |text| (0..50).all(|i| text.contains(&format!("fifty-{i} live\n"))));
    let shown = started.elapsed();
    let out = tail.stop();
    for i in 0..50 {
        assert_eq!(text.matches(&format!("fifty-{i} live\n")).count(), 1, "fifty-{i} once:\n{out}");
    }
    assert!(!out.stderr.contains("Error:"), "{out}");
    eprintln!(
        "fifty groups: sessions open after {live:?}, events written by {written:?}, all shown after {shown:?} \
         ({} StartLiveTail, {} FilterLogEvents, {} calls refused past a quota)",
        sessions(&ctx),
        ctx.calls().iter().filter(|c| c.ends_with(":FilterLogEvents")).count(),
        ctx.throttled().len()
    );
}

/// Live tail is the tail's way while it is available: a call that failed
/// for a reason that passes (503, a dropped connection) is tried again, not
/// taken for an endpoint without live tail.
#[tokio::test(flavor = "multi_thread")]
async fn tail_keeps_live_tail_through_transient_faults() {
    let ctx = TestContext::new().with_cloud();
    put(&ctx, "/accel-live-faults/group", "s", &[(now_ms() - 60_000, "before")]).await;
    ctx.fault_first_calls(&["GetCallerIdentity", "StartLiveTail"], 2, &["503", "reset"]);
    let tail = ctx.accel(&["logs", "--tail", "-s", "5m ago", "--cw-log-group", "/accel-live-faults/group"]).spawn();
    tail.wait_for_stdout("the window so far", |text| text.contains("before"));
    put(&ctx, "/accel-live-faults/group", "s", &[(now_ms(), "streamed")]).await;
    tail.wait_for_stdout("the streamed event", |text| text.contains("streamed"));
    tail.stop();
    let faults = ctx.faults();
    assert_eq!(faults.len(), 2, "{faults:?}");
    let calls = ctx.calls();
    let started = calls.iter().filter(|c| c.ends_with(":StartLiveTail")).count();
    let polls = calls.iter().filter(|c| c.ends_with(":FilterLogEvents")).count();
    let refused = faults.iter().filter(|f| f.ends_with(":StartLiveTail")).count();
    assert!(started > refused, "a session opened after the faults: {calls:?}");
    assert_eq!(polls, 1, "the window once, then streamed, not polled: {calls:?}");
}

/// Creates `count` log groups `{prefix}-{i}`, each with a stream `s`: 8 at
/// a time, 40 per second (CreateLogStream's quota is 50).
async fn make_groups(ctx: &TestContext, prefix: &str, count: usize) -> Vec<String> {
    let groups: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in groups.chunks(count.div_ceil(8)) {
        let (logs, chunk) = (ctx.logs(), chunk.to_vec());
        tasks.spawn(async move {
            // 8 workers at 4 groups a second stay under CreateLogStream's 50
            // per second; a tick missed on a busy machine is not made up in a burst.
            let mut pace = tokio::time::interval(Duration::from_millis(250));
            pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for group in chunk {
                pace.tick().await;
                logs.create_log_group().log_group_name(&group).send().await.expect("create_log_group");
                let stream = logs.create_log_stream().log_group_name(&group).log_stream_name("s");
                stream.send().await.expect("create_log_stream");
            }
        });
    }
    tasks.join_all().await;
    groups
}

/// Writes `{label}-{i} live` into the i-th group, now, a few groups at a time.
async fn put_each(ctx: &TestContext, groups: &[String], label: &str) {
    let mut tasks = tokio::task::JoinSet::new();
    for (worker, chunk) in groups.chunks(groups.len().div_ceil(8)).enumerate() {
        let (logs, chunk, label) = (ctx.logs(), chunk.to_vec(), label.to_string());
        let first = worker * groups.len().div_ceil(8);
        tasks.spawn(async move {
            for (i, group) in chunk.iter().enumerate() {
                let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now_ms())
                    .message(format!("{label}-{} live", first + i))
                    .build()
                    .unwrap();
                let call = logs.put_log_events().log_group_name(group).log_stream_name("s").log_events(event);
                call.send().await.expect("put_log_events");
            }
        });
    }
    tasks.join_all().await;
}

/// Waits until stdout holds `{label}-{i} live` for each of `count` groups, for at most `bound`.
fn wait_for_each(tail: &crate::support::Running, label: &str, count: usize, bound: Duration) -> String {
    let started = std::time::Instant::now();
    loop {
        let text = tail.stdout();
        let missing: Vec<usize> = (0..count).filter(|i| !text.contains(&format!("{label}-{i} live\n"))).collect();
        if missing.is_empty() {
            return text;
        }
        assert!(
            started.elapsed() < bound,
            "{label}: no event of {} groups after {bound:?} (first: {:?})\n--- stderr\n{}",
            missing.len(),
            &missing[..missing.len().min(10)],
            tail.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The calls of `action` in `calls`.
fn count_of(calls: &[String], action: &str) -> usize {
    calls.iter().filter(|c| c.ends_with(&format!(":{action}"))).count()
}

/// `--tail` over 500 groups (issue 16): fifteen live tail sessions (AWS's
/// default limit of concurrent sessions per account) stream the first 150
/// groups, and the other 350 are polled under CloudWatch Logs'
/// FilterLogEvents quota (5 per second) without ever meeting it. An event
/// written into each group is printed once, the last groups' included,
/// within a round of polls (a FilterLogEvents for each group, at 4 per
/// second). Prints the times, and the rate of FilterLogEvents calls.
#[tokio::test(flavor = "multi_thread")]
// The times are reported (issue 16 asks for them), and bounded.
#[allow(clippy::print_stderr)]
async fn tail_over_500_groups_opens_fifteen_sessions_and_polls_the_rest_under_the_quota() {
    let ctx = TestContext::new().with_cloud();
    // Sessions last as on AWS (hours), not the harness' 3 s.
    ctx.set_quotas(&serde_json::json!({"logs:LiveTailSeconds": 3600}));
    let groups = make_groups(&ctx, "/accel-500/group", 500).await;
    let mut args = vec!["logs", "--tail"];
    for group in &groups {
        args.extend(["--cw-log-group", group.as_str()]);
    }
    let started = std::time::Instant::now();
    let tail = ctx.accel(&args).spawn();
    while count_of(&ctx.calls(), "StartLiveTail") < 15 || count_of(&ctx.calls(), "FilterLogEvents") == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "fifteen sessions: {:?}\n{}", ctx.calls(), tail.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = started.elapsed();
    put_each(&ctx, &groups, "g500").await;
    let written = started.elapsed();
    let text = wait_for_each(&tail, "g500", groups.len(), Duration::from_secs(240));
    let shown = started.elapsed();
    let calls = ctx.calls();
    let out = tail.stop();
    for i in 0..groups.len() {
        assert_eq!(text.matches(&format!("g500-{i} live\n")).count(), 1, "g500-{i} once:\n{out}");
    }
    assert!(!out.stderr.contains("Error:"), "{out}");
    assert_eq!(count_of(&calls, "StartLiveTail"), 15, "fifteen sessions at most, each opened once");
    assert_eq!(ctx.throttled(), Vec::<String>::new(), "no call refused past a quota");
    let polls = count_of(&calls, "FilterLogEvents");
    let seconds = shown.as_secs_f64();
    assert!(polls as f64 <= 4.0 * seconds + 4.0, "{polls} FilterLogEvents in {seconds:.1} s: over the budget");
    // A round: each group's window, at 4 calls per second, and some slack.
    let bound = Duration::from_secs_f64(500.0 / 4.0 + 30.0);
    assert!(shown < bound, "all shown after {shown:?} (bound {bound:?})");
    eprintln!(
        "500 groups: 15 sessions open after {live:?}, an event written into each by {written:?}, all shown after \
         {shown:?}; {polls} FilterLogEvents ({:.2} per second), none throttled",
        polls as f64 / seconds
    );
}

/// A live tail session refused for a quota (here the account may hold two
/// at once) leaves the sessions that opened streaming and its groups, and
/// those of the sessions not tried after it, polled: in sixty groups, two
/// sessions stream twenty and forty are polled at 4 FilterLogEvents per
/// second, none throttled. Events written after the window so far was
/// read show up within a round of polls (ten seconds for forty groups).
#[tokio::test(flavor = "multi_thread")]
// The times are reported, and bounded.
#[allow(clippy::print_stderr)]
async fn tail_polls_the_groups_of_a_session_refused_for_its_quota() {
    let ctx = TestContext::new().with_cloud();
    ctx.set_quotas(&serde_json::json!({"logs:LiveTailSessions": 2, "logs:LiveTailSeconds": 3600}));
    let groups = make_groups(&ctx, "/accel-quota/group", 60).await;
    let mut args = vec!["logs", "--tail"];
    for group in &groups {
        args.extend(["--cw-log-group", group.as_str()]);
    }
    let started = std::time::Instant::now();
    let tail = ctx.accel(&args).spawn();
    put_each(&ctx, &groups, "first").await;
    // The window so far: one FilterLogEvents per group.
    wait_for_each(&tail, "first", groups.len(), Duration::from_secs(60));
    let window = started.elapsed();
    put_each(&ctx, &groups, "second").await;
    let written = std::time::Instant::now();
    let text = wait_for_each(&tail, "second", groups.len(), Duration::from_secs(60));
    let round = written.elapsed();
    let seconds = started.elapsed().as_secs_f64();
    let calls = ctx.calls();
    let out = tail.stop();
    for label in ["first", "second"] {
        for i in 0..groups.len() {
            assert_eq!(text.matches(&format!("{label}-{i} live\n")).count(), 1, "{label}-{i} once:\n{out}");
        }
    }
    assert!(!out.stderr.contains("Error:"), "{out}");
    assert_eq!(count_of(&calls, "StartLiveTail"), 3, "two opened, the third refused, no fourth tried: {calls:?}");
    assert_eq!(ctx.throttled(), ["logs:StartLiveTail"], "the third session, and no FilterLogEvents");
    let polls = count_of(&calls, "FilterLogEvents");
    assert!(polls as f64 <= 4.0 * seconds + 4.0, "{polls} FilterLogEvents in {seconds:.1} s: over the budget");
    assert!(round < Duration::from_secs(20), "forty polled groups took {round:?}");
    eprintln!(
        "sixty groups, two sessions: the window shown after {window:?}, a later event of each group after \
         {round:?}; {polls} FilterLogEvents in {seconds:.1} s"
    );
}

/// Throttled FilterLogEvents slow the whole budget down: with live tail
/// refused (no session allowed) and the account's FilterLogEvents quota at 2
/// per second (half the budget), the tail goes on, shows an event of each
/// group, and few of its calls are refused (at a steady 4 per second, half
/// would be).
#[tokio::test(flavor = "multi_thread")]
async fn tail_slows_its_polls_down_when_throttled() {
    let ctx = TestContext::new().with_cloud();
    ctx.set_quotas(&serde_json::json!({"logs:LiveTailSessions": 0, "logs:FilterLogEvents": 2}));
    let groups = make_groups(&ctx, "/accel-slow/group", 20).await;
    let mut args = vec!["logs", "--tail"];
    for group in &groups {
        args.extend(["--cw-log-group", group.as_str()]);
    }
    let tail = ctx.accel(&args).spawn();
    put_each(&ctx, &groups, "slow").await;
    let text = wait_for_each(&tail, "slow", groups.len(), Duration::from_secs(60));
    let (calls, throttled) = (ctx.calls(), ctx.throttled());
    let out = tail.stop();
    for i in 0..groups.len() {
        assert_eq!(text.matches(&format!("slow-{i} live\n")).count(), 1, "slow-{i} once:\n{out}");
    }
    assert!(!out.stderr.contains("Error:"), "{out}");
    assert_eq!(count_of(&calls, "StartLiveTail"), 1, "refused for its quota, and not tried again: {calls:?}");
    let (polls, refused) = (count_of(&calls, "FilterLogEvents"), count_of(&throttled, "FilterLogEvents"));
    assert!(refused >= 1, "the quota was met ({polls} calls)");
    assert!(refused * 5 <= polls, "{refused} of {polls} FilterLogEvents throttled: the budget did not slow down");
}

/// A fetch over many groups reads them at FilterLogEvents' pace instead of
/// failing on its quota (it did, over 500 groups): every event printed, no
/// call refused.
#[tokio::test(flavor = "multi_thread")]
async fn fetch_over_many_groups_stays_under_the_quota() {
    let ctx = TestContext::new().with_cloud();
    let groups: Vec<String> = (0..30).map(|i| format!("/accel-many/group-{i}")).collect();
    for (i, group) in groups.iter().enumerate() {
        put(&ctx, group, "s", &[(now_ms() - 60_000, &format!("many-{i} event"))]).await;
        // The setup stays under CreateLogStream's quota too: it is asserted below.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let mut args = vec!["logs", "-s", "5m ago"];
    for group in &groups {
        args.extend(["--cw-log-group", group.as_str()]);
    }
    let out = ctx.accel(&args).assert_success();
    for i in 0..30 {
        assert_eq!(out.stdout.matches(&format!("many-{i} event\n")).count(), 1, "many-{i} once:\n{out}");
    }
    assert_eq!(ctx.throttled(), Vec::<String>::new(), "no call past a quota");
}
