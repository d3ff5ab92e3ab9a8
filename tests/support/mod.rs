//! Test support: the local cloud (one server per test binary, provisioned on
//! first use) and helpers to run the `accel` binary.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `target/` folder the tests were built in.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target/tmp has a parent").to_path_buf()
}

/// A running local cloud. It stops when this test process exits: the server
/// watches its stdin, whose write end only this process holds.
pub struct LocalCloud {
    endpoint: String,
    _process: Mutex<(Child, ChildStdin)>,
}

/// Dummy credentials: the local cloud accepts any.
pub const ACCESS_KEY: &str = "testing";
/// The region every test uses.
pub const REGION: &str = "us-east-1";

impl LocalCloud {
    /// The shared server of this test binary, started on first use.
    pub fn shared() -> &'static LocalCloud {
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
                Some(Ok(line)) if line.starts_with("READY ") => {
                    break line["READY ".len()..].to_string();
                }
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
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The environment a child process needs to reach this cloud.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", ACCESS_KEY.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// The environment for a child process whose calls are logged under
    /// `access_key` (see [`LocalCloud::calls`]).
    pub fn env_as(&self, access_key: &str) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        for (name, value) in env.iter_mut() {
            if *name == "AWS_ACCESS_KEY_ID" {
                *value = access_key.to_string();
            }
        }
        env
    }

    /// The calls (`service:Action`) signed with `access_key`, in order.
    pub fn calls(&self, access_key: &str) -> Vec<String> {
        use std::io::{Read, Write};
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).expect("local cloud reachable");
        write!(stream, "GET /_accel/calls/{access_key} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("call log: {e}: {response}"))
    }

    /// accel's own client setup, pointed at this cloud.
    pub async fn aws(&self) -> accel::aws::Aws {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
                ACCESS_KEY, ACCESS_KEY, None, None, "tests",
            ))
            .load()
            .await;
        accel::aws::Aws::from_config(config).expect("region is set")
    }
}

/// Runs `accel` with `args` in `cwd`, with no AWS configuration from the
/// machine leaking in.
pub fn accel(cwd: &Path, args: &[&str]) -> Output {
    accel_with_env(cwd, args, &[])
}

/// Like [`accel`], with extra environment variables.
pub fn accel_with_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    accel_with_input(cwd, args, env, None)
}

/// Like [`accel_with_env`], with `input` on stdin (else stdin is empty).
pub fn accel_with_input(cwd: &Path, args: &[&str], env: &[(&str, &str)], input: Option<&str>) -> Output {
    use std::io::Write;
    let mut command = Command::new(env!("CARGO_BIN_EXE_accel"));
    command.args(args).current_dir(cwd).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for var in ["SAM_TEMPLATE_FILE", "SAM_DEBUG", "SAM_BUILD_MODE", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("run accel");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.unwrap_or_default().as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().expect("run accel")
}

/// stderr of a run, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// stdout of a run, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Copies a folder of `tests/fixtures` (or any folder) into a fresh temp dir.
pub fn copy_fixture(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(from, dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
