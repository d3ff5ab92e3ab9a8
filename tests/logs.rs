//! `accel logs` against the local cloud: a deployed two-function stack whose
//! log groups the test fills with PutLogEvents (the local cloud cannot run
//! functions), and X-Ray segments written with PutTraceSegments.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{LocalCloud, accel_with_input, copy_fixture, repo, stderr, stdout};

const STACK: &str = "logs-app";

fn run(cloud: &LocalCloud, dir: &Path, args: &[&str], input: Option<&str>) -> Output {
    let env = cloud.env();
    let app_dir = dir.join(".sam-app-dir");
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("__SAM_CLI_APP_DIR", app_dir.to_str().unwrap()));
    accel_with_input(dir, args, &env, input)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn put(aws: &accel::aws::Aws, group: &str, stream: &str, events: &[(i64, &str)]) {
    let logs = aws.logs();
    let _ = logs.create_log_group().log_group_name(group).send().await;
    let _ = logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await;
    let events = events.iter().map(|(ts, m)| {
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(*ts).message(*m).build().unwrap()
    });
    let call = logs.put_log_events().log_group_name(group).log_stream_name(stream);
    call.set_log_events(Some(events.collect())).send().await.expect("put_log_events");
}

async fn function_group(aws: &accel::aws::Aws, id: &str) -> String {
    let deployed = accel::sync::flows::deployed_resources(&aws.cloudformation(), STACK).await.unwrap();
    format!("/aws/lambda/{}", deployed[id].physical_id)
}

/// (resource, message) of each text line.
fn lines(out: &Output) -> Vec<(String, String)> {
    stdout(out)
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
    let cloud = LocalCloud::shared();
    let aws = cloud.aws().await;
    let dir = copy_fixture(&repo().join("tests/fixtures/apps/syncapp"));
    let d = dir.path();
    let out = run(cloud, d, &["sync", "--stack-name", STACK], Some("y\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let hello = function_group(&aws, "HelloFunction").await;
    let world = function_group(&aws, "WorldFunction").await;

    let t = now_ms() - 60_000;
    put(&aws, &hello, "s1", &[(t, "hello one"), (t + 2000, "hello ERROR two"), (t + 4000, "hello three")]).await;
    put(&aws, &world, "s2", &[(t + 1000, "world one"), (t + 3000, "world ERROR two")]).await;

    // Both groups, one stream in time order, each line named by its resource.
    let out = run(cloud, d, &["logs", "--stack-name", STACK], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = lines(&out);
    let expected = [
        ("HelloFunction", "hello one"),
        ("WorldFunction", "world one"),
        ("HelloFunction", "hello ERROR two"),
        ("WorldFunction", "world ERROR two"),
        ("HelloFunction", "hello three"),
    ];
    let got_pairs: Vec<(&str, &str)> = got.iter().map(|(r, m)| (r.as_str(), m.as_str())).collect();
    assert_eq!(got_pairs, expected, "{}", stdout(&out));

    // The filter pattern, and a --name.
    let out = run(cloud, d, &["logs", "--stack-name", STACK, "--filter", "ERROR"], None);
    let messages: Vec<String> = lines(&out).into_iter().map(|(_, m)| m).collect();
    assert_eq!(messages, ["hello ERROR two", "world ERROR two"]);
    let out = run(cloud, d, &["logs", "--stack-name", STACK, "-n", "WorldFunction"], None);
    assert!(lines(&out).iter().all(|(r, _)| r == "WorldFunction") && lines(&out).len() == 2, "{}", stdout(&out));

    // A time window in ISO-8601.
    let iso = |ms: i64| accel::time::iso(ms);
    let out = run(cloud, d, &["logs", "--stack-name", STACK, "-s", &iso(t + 500), "-e", &iso(t + 3500)], None);
    let messages: Vec<String> = lines(&out).into_iter().map(|(_, m)| m).collect();
    assert_eq!(messages, ["world one", "hello ERROR two", "world ERROR two"]);

    // JSON: one object per line.
    let out = run(cloud, d, &["logs", "--stack-name", STACK, "--output", "json"], None);
    let objects: Vec<Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(objects.len(), 5);
    for o in &objects {
        for key in ["logStreamName", "timestamp", "message", "ingestionTime", "eventId"] {
            assert!(o.get(key).is_some(), "{key} in {o}");
        }
    }

    // --cw-log-group on its own.
    put(&aws, "/custom/group", "c", &[(t, "custom line")]).await;
    let out = run(cloud, d, &["logs", "--cw-log-group", "/custom/group"], None);
    assert_eq!(lines(&out), [("/custom/group".to_string(), "custom line".to_string())]);

    // Traces.
    let segment = serde_json::json!({
        "trace_id": format!("1-{:08x}-0123456789abcdef01234567", t / 1000),
        "id": "0123456789abcdef", "name": "HelloFunction",
        "start_time": (t as f64) / 1000.0, "end_time": (t as f64) / 1000.0 + 0.25,
        "http": {"response": {"status": 200}}
    });
    aws.xray().put_trace_segments().trace_segment_documents(segment.to_string()).send().await.expect("put trace");
    let out = run(cloud, d, &["logs", "--stack-name", STACK, "--include-traces"], None);
    assert!(stdout(&out).contains("XRay Event [revision"), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(" - 0.250s - HelloFunction [HTTP: 200]"), "{}", stdout(&out));

    // Errors: an unknown --name, a missing stack.
    let out = run(cloud, d, &["logs", "--stack-name", STACK, "-n", "Nope"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Resource name (Nope) does not exist. Available resource names:"),
        "{}",
        stderr(&out)
    );
    let out = run(cloud, d, &["logs", "--stack-name", "no-such-stack"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Stack with id 'no-such-stack' does not exist"), "{}", stderr(&out));

    // Tail: events written after it starts, in both groups, each once, a late
    // one (older timestamp than what was already shown) included.
    let log = d.join(".tail.out");
    let mut command = Command::new(env!("CARGO_BIN_EXE_accel"));
    command.args(["logs", "--stack-name", STACK, "--tail", "-s", "5m ago"]).current_dir(d).env_clear();
    command.env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", d);
    for (k, v) in cloud.env() {
        command.env(k, v);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let read = || {
        let mut text = String::new();
        std::fs::File::open(&log).unwrap().read_to_string(&mut text).unwrap();
        text
    };
    let wait = |what: &str| {
        let started = Instant::now();
        while !read().contains(what) {
            assert!(started.elapsed() < Duration::from_secs(20), "tail never showed {what:?}:\n{}", read());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait("hello three");
    let now = now_ms();
    put(&aws, &hello, "s1", &[(now, "tail hello")]).await;
    put(&aws, &world, "s2", &[(now + 1, "tail world")]).await;
    wait("tail hello");
    wait("tail world");
    put(&aws, &world, "s3", &[(now - 2000, "late world")]).await;
    wait("late world");
    std::thread::sleep(Duration::from_millis(2500));
    let _ = child.kill();
    let _ = child.wait();
    let text = read();
    for message in ["hello one", "world one", "tail hello", "tail world", "late world"] {
        assert_eq!(text.matches(message).count(), 1, "{message} once:\n{text}");
    }
}
