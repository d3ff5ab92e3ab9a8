//! The cost of a change follows what changed, not the size of the project:
//! counted in files hashed and files written (`--debug`'s `Build:` and
//! `This sync:` lines), never timed.

use std::time::{Duration, SystemTime};

use crate::support::TestContext;

/// A project of `n` Python functions of two files each, every file an hour
/// old (so the build's hash memo may remember it).
fn project(n: usize) -> TestContext {
    let ctx = TestContext::new();
    let mut template = String::from("Transform: AWS::Serverless-2016-10-31\nResources:\n");
    for i in 0..n {
        ctx.write(&format!("fn{i}/app.py"), &format!("def handler(event, context):\n    return {i}\n"));
        ctx.write(&format!("fn{i}/util.py"), &format!("VALUE = {i}\n"));
        template.push_str(&format!(
            "  Fn{i}:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: fn{i}/\n      Handler: app.handler\n      Runtime: python3.12\n"
        ));
    }
    ctx.write("template.yaml", &template);
    let old = SystemTime::now() - Duration::from_secs(3600);
    for entry in std::fs::read_dir(ctx.path()).unwrap() {
        let dir = entry.unwrap().path();
        let files = if dir.is_dir() {
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect()
        } else {
            vec![dir]
        };
        for file in files {
            std::fs::File::options().write(true).open(&file).unwrap().set_modified(old).unwrap();
        }
    }
    ctx
}

/// `(hashed, written)` from the last debug line that starts with `label`.
fn tally(stderr: &str, label: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .filter_map(|l| l.split(" | ").nth(1))
        .rfind(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} line in:\n{stderr}"));
    let numbers: Vec<usize> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (numbers[0], numbers[1])
}

/// What `build --cached` does with nothing changed, then after one edit.
fn build_costs(n: usize) -> [(usize, usize); 2] {
    let ctx = project(n);
    let build = || tally(&ctx.accel(&["build", "--cached", "--debug"]).assert_success().stderr, "Build:");
    let first = build();
    assert_eq!(first.0, 2 * n, "a first build reads every file once");
    let unchanged = build();
    ctx.write("fn1/app.py", "def handler(event, context):\n    return 'edited'\n");
    [unchanged, build()]
}

#[test]
fn a_cached_build_costs_what_changed() {
    let small = build_costs(3);
    let large = build_costs(30);
    // Nothing changed: nothing read, nothing written (not even the template,
    // build.toml or the state files).
    assert_eq!(large[0], (0, 0));
    // One file edited: that file is read, and only its unit's files written
    // (code entry and artifact: 2 + 2; build state and build.toml: 1 + 1).
    assert_eq!(large[1], (1, 6));
    assert_eq!(small, large, "the cost does not grow with the project");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_save_costs_what_changed() {
    let ctx = project(16).with_cloud();
    ctx.accel(&["sync", "--stack-name", "work", "--no-dependency-layer"]).stdin("y\n").assert_success();
    let watch = ctx.accel(&["sync", "--stack-name", "work", "--watch", "--code", "--debug"]).spawn();
    watch.wait_for_stderr("the watch", |t| t.contains("Sync watch started."));
    for (round, function) in [(1, "fn3"), (2, "fn11")] {
        ctx.write(&format!("{function}/app.py"), &format!("def handler(event, context):\n    return {round}\n"));
        let text = watch.wait_for_stderr("the save's sync", |t| t.matches("This sync:").count() == round);
        // The saved file is read; its code entry and artifact (2 + 2), the
        // build state, sync.toml and the zip memo are written. The other 15
        // functions are not even walked.
        assert_eq!(tally(&text, "This sync:"), (1, 7), "{text}");
        assert_eq!(text.matches("code reused").count(), 0, "{text}");
    }
    watch.stop();
}
