//! Test support: the local cloud (one server per test binary, provisioned on
//! first use), a [`TestContext`] per test (a scratch project, a private HOME,
//! its own access key) and [`TestCommand`] to run the `accel` binary in it.
//! Tests reach the local cloud through the AWS SDK crates directly: nothing
//! here uses accel's library.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `target/` folder the tests were built in.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target/tmp has a parent").to_path_buf()
}

/// Dummy credentials for the test's own SDK clients: the local cloud accepts any.
const SDK_ACCESS_KEY: &str = "testing";
/// The region every test uses.
pub(crate) const REGION: &str = "us-east-1";

/// A running local cloud. It stops when this test process exits: the server
/// watches its stdin, whose write end only this process holds.
pub(crate) struct LocalCloud {
    endpoint: String,
    _process: Mutex<(Child, ChildStdin)>,
}

impl LocalCloud {
    /// The shared server of this test binary, started on first use.
    pub(crate) fn shared() -> &'static LocalCloud {
        static CLOUD: OnceLock<LocalCloud> = OnceLock::new();
        CLOUD.get_or_init(LocalCloud::start)
    }

    fn start() -> LocalCloud {
        let provision = Command::new("bash")
            .arg(repo().join("scripts/local-cloud"))
            .arg("--python")
            .env("CARGO_TARGET_DIR", target_dir())
            .stderr(Stdio::inherit())
            .output()
            .expect("cannot run scripts/local-cloud (bash missing?)");
        assert!(provision.status.success(), "provisioning the local cloud failed: {provision:?}");
        let python = String::from_utf8(provision.stdout).unwrap().trim().to_string();
        let log = target_dir().join(format!("local-cloud/server-{}.log", std::process::id()));
        let mut child = Command::new(&python)
            .arg(repo().join("tests/cloud/server.py"))
            .arg("--exit-on-stdin-eof")
            // Live tail sessions end after 3 s instead of AWS's 3 hours, so
            // that the tests see accel open them again.
            .env("ACCEL_CLOUD_LIVE_TAIL_SECONDS", "3")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("server log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the local cloud with {python}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = Instant::now();
        let endpoint = loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("READY ") => break line["READY ".len()..].to_string(),
                Some(Ok(_)) => continue,
                _ => panic!(
                    "the local cloud exited before it was ready after {:?}; see {}",
                    started.elapsed(),
                    log.display()
                ),
            }
        };
        LocalCloud { endpoint, _process: Mutex::new((child, stdin)) }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The environment a child process needs to reach this cloud, its calls
    /// logged under `access_key` (see [`LocalCloud::calls`]).
    fn env(&self, access_key: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", access_key.into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// The calls (`service:Action`) signed with `access_key`, in order.
    pub(crate) fn calls(&self, access_key: &str) -> Vec<String> {
        self.log("calls", access_key)
    }

    /// The calls made with `access_key` that the cloud refused past a rate quota.
    pub(crate) fn throttled(&self, access_key: &str) -> Vec<String> {
        self.log("throttled", access_key)
    }

    /// The faults the cloud injected into calls made with `access_key` (`kind service:Action`).
    pub(crate) fn faults(&self, access_key: &str) -> Vec<String> {
        self.log("faults", access_key)
    }

    fn log(&self, which: &str, access_key: &str) -> Vec<String> {
        let response = self.harness("GET", &format!("/_accel/{which}/{access_key}"), "");
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("call log: {e}: {response}"))
    }

    /// Sends `settings` (JSON) to a harness endpoint (`/_accel/faults/KEY`, `/_accel/quotas/KEY`).
    fn configure(&self, path: &str, settings: &serde_json::Value) {
        let response = self.harness("POST", path, &settings.to_string());
        assert!(response.starts_with("HTTP/1.0 204") || response.starts_with("HTTP/1.1 204"), "{path}: {response}");
    }

    /// One request to the cloud's harness endpoints; the raw answer.
    fn harness(&self, method: &str, path: &str, body: &str) -> String {
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).expect("local cloud reachable");
        write!(stream, "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Length: {}\r\n\r\n{body}", body.len())
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    /// SDK configuration pointed at this cloud, with dummy credentials.
    fn sdk_config(&self) -> aws_config::SdkConfig {
        use aws_sdk_cloudformation::config::{Credentials, SharedCredentialsProvider};
        let credentials = Credentials::new(SDK_ACCESS_KEY, "testing", None, None, "tests");
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build()
    }
}

/// Variables removed from every `accel` run unless the context sets them:
/// no AWS or SAM configuration from the machine leaks in.
fn leaks(name: &str) -> bool {
    name.starts_with("AWS_") || name.starts_with("SAM_") || name == "__SAM_CLI_APP_DIR"
}

/// One test's world: a scratch project in a temp dir, a private HOME and
/// `__SAM_CLI_APP_DIR` beside it, and, with [`TestContext::with_cloud`], the
/// shared local cloud reached with an access key of its own.
pub(crate) struct TestContext {
    root: tempfile::TempDir,
    project: PathBuf,
    key: String,
    cloud: Option<&'static LocalCloud>,
    sdk: OnceLock<aws_config::SdkConfig>,
    spawned: AtomicUsize,
}

impl TestContext {
    /// An empty project.
    pub(crate) fn new() -> TestContext {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let root = tempfile::tempdir().unwrap();
        let project = root.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(root.path().join("home")).unwrap();
        // The test's name (libtest names the thread after it) makes the call log readable.
        let thread = std::thread::current();
        let name: String = thread
            .name()
            .unwrap_or("test")
            .rsplit("::")
            .next()
            .unwrap_or("test")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let key = format!("t{}-{}-{name}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        TestContext { root, project, key, cloud: None, sdk: OnceLock::new(), spawned: AtomicUsize::new(0) }
    }

    /// A copy of `fixture`, a folder relative to the repository root.
    pub(crate) fn from_fixture(fixture: &str) -> TestContext {
        let ctx = TestContext::new();
        copy_dir(&repo().join(fixture), &ctx.project);
        ctx
    }

    /// Every `accel` run and SDK client of this context goes to the shared
    /// local cloud (started on first use).
    pub(crate) fn with_cloud(mut self) -> TestContext {
        self.cloud = Some(LocalCloud::shared());
        self
    }

    /// The project folder, where `accel` runs.
    pub(crate) fn path(&self) -> &Path {
        &self.project
    }

    /// A path inside the project.
    pub(crate) fn join(&self, relative: &str) -> PathBuf {
        self.project.join(relative)
    }

    /// The temp dir holding the project, HOME and the logs of spawned runs.
    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    /// Writes a project file, creating its folders.
    pub(crate) fn write(&self, relative: &str, text: &str) {
        let path = self.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Reads a project file.
    pub(crate) fn read(&self, relative: &str) -> String {
        let path = self.join(relative);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Replaces `from` (which must occur) by `to` in a project file.
    pub(crate) fn replace(&self, relative: &str, from: &str, to: &str) {
        let text = self.read(relative);
        assert!(text.contains(from), "{relative} does not contain {from:?}");
        self.write(relative, &text.replace(from, to));
    }

    /// The local cloud, which this context must have.
    pub(crate) fn cloud(&self) -> &'static LocalCloud {
        self.cloud.expect("a TestContext made with .with_cloud()")
    }

    /// The calls of this context's `accel` runs refused past a rate quota (`service:Action`).
    pub(crate) fn throttled(&self) -> Vec<String> {
        self.cloud().throttled(&self.key)
    }

    /// From now on, `fraction` of this context's calls (its `accel` runs',
    /// not the test's own SDK clients') meet a fault of one of `kinds`
    /// (`500`, `503`, `reset`): see "Faults" in tests/cloud/server.py. The
    /// draws are seeded, so a test meets the same faults every run (the
    /// order of concurrent calls aside).
    pub(crate) fn set_faults(&self, fraction: f64, kinds: &[&str]) {
        let settings = serde_json::json!({"fraction": fraction, "kinds": kinds, "seed": 1});
        self.cloud().configure(&format!("/_accel/faults/{}", self.key), &settings);
    }

    /// Faults (`kinds`) for the first `count` calls of `actions` made with
    /// this context's key, and no other.
    pub(crate) fn fault_first_calls(&self, actions: &[&str], count: usize, kinds: &[&str]) {
        let settings =
            serde_json::json!({"fraction": 1.0, "kinds": kinds, "actions": actions, "count": count, "seed": 1});
        self.cloud().configure(&format!("/_accel/faults/{}", self.key), &settings);
    }

    /// The faults this context's calls met so far (`kind service:Action`).
    pub(crate) fn faults(&self) -> Vec<String> {
        self.cloud().faults(&self.key)
    }

    /// Rate quotas of this context's own (`service:Action` → calls per
    /// second), over the cloud's: for services that publish none
    /// (CloudFormation).
    pub(crate) fn set_quotas(&self, quotas: &serde_json::Value) {
        self.cloud().configure(&format!("/_accel/quotas/{}", self.key), quotas);
    }

    /// Every call this context's `accel` runs made so far, in order.
    pub(crate) fn calls(&self) -> Vec<String> {
        self.cloud().calls(&self.key)
    }

    /// `accel ARGS` in the project, with a clean environment.
    pub(crate) fn accel(&self, args: &[&str]) -> TestCommand<'_> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_accel"));
        command.args(args).current_dir(&self.project);
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(leaks) {
                command.env_remove(name);
            }
        }
        let home = self.root().join("home");
        // The build tools keep the machine's caches and settings (pip's and
        // Go's caches, Go modules, npm's cache and config, pyenv) with a
        // private HOME: only AWS and SAM state is the context's own.
        if let Some(real_home) = std::env::var_os("HOME").map(PathBuf::from) {
            let keep = [
                ("XDG_CACHE_HOME", ".cache"),
                ("GOPATH", "go"),
                ("npm_config_cache", ".npm"),
                ("NPM_CONFIG_USERCONFIG", ".npmrc"),
                ("PYENV_ROOT", ".pyenv"),
            ];
            for (name, default) in keep {
                if std::env::var_os(name).is_none() {
                    command.env(name, real_home.join(default));
                }
            }
        }
        command.env("HOME", &home).env("__SAM_CLI_APP_DIR", home.join(".aws-sam"));
        if let Some(cloud) = self.cloud {
            command.envs(cloud.env(&self.key));
        }
        let line = std::iter::once("accel").chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
        TestCommand { command, line, stdin: None, ctx: self }
    }

    /// insta settings whose filters hide what varies between runs: this
    /// context's temp dir, the local cloud's port, durations, timestamps,
    /// stack ids, uuids, hashes and generated physical names.
    pub(crate) fn snapshot_settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        let root: String = self
            .root()
            .display()
            .to_string()
            .chars()
            .map(|c| if c.is_ascii_punctuation() && c != '/' { format!("\\{c}") } else { c.to_string() })
            .collect();
        settings.add_filter(&root, "[TMP]");
        settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
        settings.add_filter(r"arn:aws:cloudformation:[a-z0-9-]+:\d{12}:stack/[^/\s]+/[0-9a-f-]{36}", "[STACK_ID]");
        settings.add_filter(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "[UUID]");
        settings.add_filter(r"\b[0-9a-f]{32}\b", "[HASH]");
        settings.add_filter(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?", "[TIME]");
        // Right-aligned durations (`   12 ms`) collapse to one space.
        settings.add_filter(r" +\d+ ms\b", " [N] ms");
        settings.add_filter(r"\b\d+ ms\b", "[N] ms");
        settings.add_filter(r"https://[a-z0-9]{10}\.execute-api\.", "https://[API_ID].execute-api.");
        settings.add_filter(r"-[A-Z0-9]{12}\b", "-[SUFFIX]");
        settings
    }

    /// SDK configuration signed with this context's own access key (its
    /// quotas and faults apply), rather than the test clients' shared one.
    pub(crate) fn own_sdk(&self) -> aws_config::SdkConfig {
        use aws_sdk_cloudformation::config::{Credentials, SharedCredentialsProvider};
        let credentials = Credentials::new(&self.key, "testing", None, None, "tests");
        self.sdk().to_builder().credentials_provider(SharedCredentialsProvider::new(credentials)).build()
    }

    fn sdk(&self) -> &aws_config::SdkConfig {
        self.sdk.get_or_init(|| self.cloud().sdk_config())
    }

    /// CloudFormation client on the local cloud.
    pub(crate) fn cfn(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(self.sdk())
    }

    /// Lambda client on the local cloud.
    pub(crate) fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(self.sdk())
    }

    /// S3 client on the local cloud (path-style, as a loopback endpoint needs).
    pub(crate) fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(self.sdk()).force_path_style(true).build())
    }

    /// CloudWatch Logs client on the local cloud.
    pub(crate) fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(self.sdk())
    }

    /// X-Ray client on the local cloud.
    pub(crate) fn xray(&self) -> aws_sdk_xray::Client {
        aws_sdk_xray::Client::new(self.sdk())
    }

    /// API Gateway (REST) client on the local cloud.
    pub(crate) fn apigateway(&self) -> aws_sdk_apigateway::Client {
        aws_sdk_apigateway::Client::new(self.sdk())
    }

    /// API Gateway v2 (HTTP) client on the local cloud.
    pub(crate) fn apigatewayv2(&self) -> aws_sdk_apigatewayv2::Client {
        aws_sdk_apigatewayv2::Client::new(self.sdk())
    }

    /// Step Functions client on the local cloud.
    pub(crate) fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(self.sdk())
    }

    /// The resources of a deployed stack and of its nested stacks, by full
    /// path (`Child/Logical`): (resource type, physical id).
    pub(crate) async fn stack_resources(&self, stack: &str) -> BTreeMap<String, (String, String)> {
        let cfn = self.cfn();
        let mut found = BTreeMap::new();
        let mut pending = vec![(String::new(), stack.to_string())];
        while let Some((prefix, stack)) = pending.pop() {
            let mut pages = cfn.list_stack_resources().stack_name(&stack).into_paginator().items().send();
            while let Some(resource) = pages.next().await {
                let resource = resource.unwrap_or_else(|e| panic!("ListStackResources {stack}: {e:?}"));
                let (Some(logical), Some(physical)) = (resource.logical_resource_id(), resource.physical_resource_id())
                else {
                    continue;
                };
                let path = if prefix.is_empty() { logical.to_string() } else { format!("{prefix}/{logical}") };
                let kind = resource.resource_type().unwrap_or_default().to_string();
                if kind == "AWS::CloudFormation::Stack" {
                    pending.push((path.clone(), physical.to_string()));
                }
                found.insert(path, (kind, physical.to_string()));
            }
        }
        found
    }

    /// Physical ids of a stack's resources of one type (nested stacks included).
    pub(crate) async fn physical_ids_of_type(&self, stack: &str, resource_type: &str) -> Vec<String> {
        let resources = self.stack_resources(stack).await;
        resources.into_values().filter(|(kind, _)| kind == resource_type).map(|(_, physical)| physical).collect()
    }

    /// The physical id of the resource at `path` (`Logical` or `Child/Logical`).
    pub(crate) async fn physical_id(&self, stack: &str, path: &str) -> String {
        let resources = self.stack_resources(stack).await;
        match resources.get(path) {
            Some((_, physical)) => physical.clone(),
            None => panic!("{path} not in stack {stack}: {resources:?}"),
        }
    }

    /// A deployed function's configuration.
    pub(crate) async fn function(&self, stack: &str, path: &str) -> aws_sdk_lambda::types::FunctionConfiguration {
        let name = self.physical_id(stack, path).await;
        let out = self.lambda().get_function().function_name(&name).send().await;
        out.unwrap_or_else(|e| panic!("GetFunction {name}: {e:?}")).configuration().unwrap().clone()
    }

    /// A deployed function's CodeSha256.
    pub(crate) async fn code_sha(&self, stack: &str, path: &str) -> String {
        self.function(stack, path).await.code_sha256().unwrap().to_string()
    }

    /// A deployed function's layer ARNs.
    pub(crate) async fn layers(&self, stack: &str, path: &str) -> Vec<String> {
        self.function(stack, path).await.layers().iter().filter_map(|l| l.arn()).map(str::to_string).collect()
    }
}

/// One `accel` run to be made: see [`TestContext::accel`].
pub(crate) struct TestCommand<'a> {
    command: Command,
    line: String,
    stdin: Option<String>,
    ctx: &'a TestContext,
}

impl TestCommand<'_> {
    /// Text on stdin (else stdin is empty).
    pub(crate) fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.to_string());
        self
    }

    /// One more environment variable.
    pub(crate) fn env(mut self, name: &str, value: &str) -> Self {
        self.command.env(name, value);
        self.line = format!("{name}={value} {}", self.line);
        self
    }

    /// Runs on a pseudo-terminal (through util-linux's `script`), as at a
    /// person's terminal outside CI: stdout and stderr both come back as
    /// stdout, with the terminal's control sequences.
    pub(crate) fn on_terminal(mut self) -> Self {
        let program = self.command.get_program().to_string_lossy().into_owned();
        let args = self.command.get_args().map(|a| a.to_string_lossy().into_owned());
        let line = shell_words::join(std::iter::once(program).chain(args));
        let mut pty = Command::new("script");
        pty.args(["--quiet", "--return", "--command", &line, "/dev/null"]);
        for (name, value) in self.command.get_envs() {
            match value {
                Some(value) => pty.env(name, value),
                None => pty.env_remove(name),
            };
        }
        if let Some(dir) = self.command.get_current_dir() {
            pty.current_dir(dir);
        }
        pty.env_remove("CI").env("TERM", "xterm");
        self.command = pty;
        self
    }

    /// Runs somewhere other than the project folder.
    pub(crate) fn current_dir(mut self, dir: &Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Runs to the end, whatever the exit code.
    pub(crate) fn run(mut self) -> RunOutput {
        let before = self.ctx.cloud.map(|_| self.ctx.calls().len());
        self.command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self.command.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.line));
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(self.stdin.unwrap_or_default().as_bytes()).unwrap();
        drop(stdin);
        let output = child.wait_with_output().expect("run accel");
        let calls = before.map(|n| self.ctx.calls().split_off(n)).unwrap_or_default();
        RunOutput {
            line: self.line,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            calls,
        }
    }

    /// Runs, and panics with everything there is to know unless it succeeded.
    pub(crate) fn assert_success(self) -> RunOutput {
        self.assert_code(0)
    }

    /// Runs, and panics with everything there is to know unless it exited with `code`.
    pub(crate) fn assert_code(self, code: i32) -> RunOutput {
        let out = self.run();
        if out.code != Some(code) {
            panic!("expected exit code {code}\n{out}");
        }
        out
    }

    /// Starts it in the background, stdout and stderr going to files in the
    /// context's temp dir; stdin gets the text of [`TestCommand::stdin`] and
    /// then closes. The process is killed when the handle drops.
    pub(crate) fn spawn(mut self) -> Running {
        let n = self.ctx.spawned.fetch_add(1, Ordering::Relaxed);
        let stdout = self.ctx.root().join(format!("run-{n}.stdout"));
        let stderr = self.ctx.root().join(format!("run-{n}.stderr"));
        self.command
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let mut child = self.command.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.line));
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(self.stdin.unwrap_or_default().as_bytes()).unwrap();
        drop(stdin);
        Running { child, line: self.line, stdout, stderr }
    }
}

/// What an `accel` run did.
pub(crate) struct RunOutput {
    /// The command line, for messages.
    pub(crate) line: String,
    /// The exit code (`None`: killed by a signal).
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// The calls it made to the local cloud (empty without one).
    pub(crate) calls: Vec<String>,
}

impl RunOutput {
    /// stdout, then stderr.
    pub(crate) fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for RunOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\nexit code: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.line, self.code, self.stdout, self.stderr
        )
    }
}

/// An `accel` run in the background: see [`TestCommand::spawn`].
pub(crate) struct Running {
    child: Child,
    line: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    /// What it printed on stdout so far.
    pub(crate) fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap()
    }

    /// What it printed on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }

    /// Waits until `done` holds for stdout, failing after 60 s; returns stdout.
    pub(crate) fn wait_for_stdout(&self, what: &str, done: impl FnMut(&str) -> bool) -> String {
        self.wait_for(what, Running::stdout, done)
    }

    /// Waits until `done` holds for stderr, failing after 60 s; returns stderr.
    pub(crate) fn wait_for_stderr(&self, what: &str, done: impl FnMut(&str) -> bool) -> String {
        self.wait_for(what, Running::stderr, done)
    }

    fn wait_for(&self, what: &str, read: fn(&Running) -> String, mut done: impl FnMut(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text = read(self);
            if done(&text) {
                return text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what} from `{}`:\n--- stdout\n{}\n--- stderr\n{}",
                self.line,
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for it to end.
    pub(crate) fn wait(mut self) -> RunOutput {
        let status = self.child.wait().expect("wait for accel");
        self.output(status)
    }

    /// Kills it, and returns what it printed.
    pub(crate) fn stop(mut self) -> RunOutput {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for accel");
        self.output(status)
    }

    fn output(&self, status: std::process::ExitStatus) -> RunOutput {
        RunOutput {
            line: self.line.clone(),
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr(),
            calls: Vec::new(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies a folder's tree, symlinks as symlinks.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            // Fixtures with symlinks (shape-nested-symlink) keep them.
            symlink(std::fs::read_link(entry.path()).unwrap(), target);
        } else if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A symbolic link at `link` to the file or folder `target` (a relative
/// `target` is from `link`'s folder). Windows tells the two kinds apart, and
/// makes links only with the privilege to (an admin, or developer mode).
pub(crate) fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    let (target, link) = (target.as_ref(), link.as_ref());
    #[cfg(unix)]
    let made = std::os::unix::fs::symlink(target, link);
    #[cfg(windows)]
    let made = match link.parent().unwrap_or(Path::new("")).join(target).is_dir() {
        true => std::os::windows::fs::symlink_dir(target, link),
        false => std::os::windows::fs::symlink_file(target, link),
    };
    made.unwrap_or_else(|e| panic!("link {} -> {}: {e}", link.display(), target.display()));
}

/// A zip holding `files` (name, contents).
pub(crate) fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in files {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The files of a zip: path → bytes.
pub(crate) fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut files = BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        if file.is_file() {
            let mut body = Vec::new();
            file.read_to_end(&mut body).unwrap();
            files.insert(file.name().unwrap().to_string(), body);
        }
    }
    files
}

/// The files under `dir`: relative path (with `/`) → bytes.
pub(crate) fn files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// ISO-8601 in UTC with milliseconds (`2024-01-02T12:53:20.123Z`).
pub(crate) fn iso(ms: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, millis) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

/// A YAML file (a built template), as JSON values.
pub(crate) fn yaml(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names of a folder's entries, sorted.
pub(crate) fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What the unit labelled `label` did in its `kind` step (`deps`, `code`):
/// `built`, `reused` or `-`.
pub(crate) fn step(out: &RunOutput, label: &str, kind: &str) -> String {
    let line = out
        .stderr
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label))
        .unwrap_or_else(|| panic!("no line for {label} in:\n{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == kind).unwrap_or_else(|| panic!("no {kind} step in {line}"));
    words[at + 1].to_string()
}
