//! `accel sync --watch` as a child process against the local cloud, driven
//! by real file edits in a temporary project.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{LocalCloud, copy_fixture, repo};

struct Watching {
    child: Child,
    log: PathBuf,
}

impl Watching {
    fn start(cloud: &LocalCloud, dir: &Path, key: &str, extra: &[&str]) -> Watching {
        let log = dir.join(".watch.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_accel"));
        command
            .args(["sync", "--stack-name", "watched", "--watch"])
            .args(extra)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("__SAM_CLI_APP_DIR", dir.join(".sam-app-dir"))
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(dir.join(".watch.out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap());
        for (name, value) in cloud.env_as(key) {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("accel runs");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"y\n").unwrap();
        Watching { child, log }
    }

    fn text(&self) -> String {
        let mut text = String::new();
        std::fs::File::open(&self.log).unwrap().read_to_string(&mut text).unwrap();
        text
    }

    /// Waits until `done` holds for the log, failing after 60 s.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text = self.text();
            if done(&text) {
                return text;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "timed out waiting for {what}:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn count(&self, line_start: &str) -> usize {
        self.text().lines().filter(|l| l.starts_with(line_start) && l.contains(" synced in ")).count()
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn code_sha(aws: &accel::aws::Aws, id: &str) -> String {
    let deployed = accel::sync::flows::deployed_resources(&aws.cloudformation(), "watched").await.unwrap();
    let name = &deployed[id].physical_id;
    let out = aws.lambda().get_function().function_name(name).send().await.unwrap();
    out.configuration().unwrap().code_sha256().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_syncs_every_kind_of_save() {
    let cloud = LocalCloud::shared();
    let aws = cloud.aws().await;
    let dir = copy_fixture(&repo().join("tests/fixtures/apps/syncapp"));
    let d = dir.path();
    let watch = Watching::start(cloud, d, "watch", &[]);
    watch.wait_for("the first sync", |t| t.contains("Sync watch started."));
    assert!(watch.text().contains("Infra sync completed"), "the first pass deploys: {}", watch.text());

    // A handler edit updates exactly that function.
    let world = code_sha(&aws, "WorldFunction").await;
    let hello = code_sha(&aws, "HelloFunction").await;
    std::fs::write(d.join("hello/app.py"), "def handler(e, c):\n    return 1\n").unwrap();
    watch.wait_for("the handler edit", |t| t.contains("HelloFunction                    code       synced in"));
    assert_ne!(code_sha(&aws, "HelloFunction").await, hello);
    assert_eq!(code_sha(&aws, "WorldFunction").await, world);

    // An atomic save (write a temporary file, rename it over) is seen.
    let hello = code_sha(&aws, "HelloFunction").await;
    let before = watch.count("HelloFunction");
    std::fs::write(d.join("hello/app.py.tmp-save"), "def handler(e, c):\n    return 2\n").unwrap();
    std::fs::rename(d.join("hello/app.py.tmp-save"), d.join("hello/app.py")).unwrap();
    watch.wait_for("the atomic save", |t| {
        t.lines().filter(|l| l.starts_with("HelloFunction") && l.contains(" synced in ")).count() > before
    });
    assert_ne!(code_sha(&aws, "HelloFunction").await, hello);

    // Ten rapid saves: one or two syncs, and the last content is deployed.
    let before = watch.count("WorldFunction");
    for i in 0..10 {
        std::fs::write(d.join("world/app.py"), format!("def handler(e, c):\n    return {i}\n")).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    watch.wait_for("the burst", |t| {
        t.lines().filter(|l| l.starts_with("WorldFunction") && l.contains(" synced in ")).count() > before
    });
    std::thread::sleep(Duration::from_millis(800));
    let syncs = watch.count("WorldFunction") - before;
    assert!((1..=2).contains(&syncs), "{syncs} syncs for one burst:\n{}", watch.text());
    let app_dir = d.join(".sam-app-dir");
    let mut env: Vec<(&str, String)> = cloud.env_as("watch-check");
    env.push(("__SAM_CLI_APP_DIR", app_dir.to_string_lossy().into_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = ["sync", "--stack-name", "watched", "--code", "--resource-id", "WorldFunction"];
    let check = support::accel_with_input(d, &args, &env, None);
    assert!(support::stderr(&check).contains("0 updated"), "the final save is deployed: {}", support::stderr(&check));

    // A broken template is reported and the loop goes on; the fix (a memory
    // size) goes through CloudFormation.
    let template = std::fs::read_to_string(d.join("template.yaml")).unwrap();
    std::fs::write(d.join("template.yaml"), format!("{template}\n  Broken: [\n")).unwrap();
    watch.wait_for("the broken template", |t| t.contains("Code sync is paused until the template is fixed."));
    std::fs::write(d.join("template.yaml"), template.replace("MemorySize: 128", "MemorySize: 1024")).unwrap();
    watch.wait_for("the infra sync", |t| t.matches("Infra sync completed").count() == 2);
    let deployed = accel::sync::flows::deployed_resources(&aws.cloudformation(), "watched").await.unwrap();
    let config =
        aws.lambda().get_function().function_name(&deployed["WorldFunction"].physical_id).send().await.unwrap();
    assert_eq!(config.configuration().unwrap().memory_size(), Some(1024));

    // A template change to a CodeUri only: code sync, no CloudFormation call.
    let calls_before = cloud.calls("watch").len();
    copy_dir(&d.join("hello"), &d.join("hello2"));
    std::fs::write(d.join("hello2/app.py"), "def handler(e, c):\n    return 'moved'\n").unwrap();
    let hello = code_sha(&aws, "HelloFunction").await;
    let template = std::fs::read_to_string(d.join("template.yaml")).unwrap();
    std::fs::write(d.join("template.yaml"), template.replace("CodeUri: hello/", "CodeUri: hello2/")).unwrap();
    watch.wait_for("the CodeUri change", |t| t.contains("code locations only"));
    watch.wait_for("its code sync", |_| block_on(code_sha(&aws, "HelloFunction")) != hello);
    let calls = cloud.calls("watch");
    let new_calls = &calls[calls_before..];
    assert!(!new_calls.iter().any(|c| c.contains("UpdateStack")), "{new_calls:?}");
}

/// Polls an async lookup from the synchronous wait loop.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
