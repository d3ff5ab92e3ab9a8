//! `build --cached` is never stale: every artifact is keyed on every file its
//! build read — esbuild imports outside the function's folder, pip `-r`
//! includes, npm `file:` packages — and the watcher follows those files.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::{Running, TestContext, files_of};

const APP: &str = "tests/fixtures/apps/monorepo";

fn build(ctx: &TestContext, args: &[&str]) -> String {
    let mut all = vec!["build"];
    all.extend(args);
    ctx.accel(&all).assert_success().stderr
}

/// What the unit of `label` did: `(deps, code, artifact)` from its line.
fn work(stderr: &str, label: &str) -> (String, String, String) {
    let line = stderr
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label))
        .unwrap_or_else(|| panic!("no {label} line in:\n{stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |w: &str| words.iter().position(|x| *x == w).map(|i| words[i + 1].to_string()).unwrap();
    (after("deps"), after("code"), after("artifact"))
}

#[test]
fn shared_code_includes_and_local_packages_are_keyed() {
    let ctx = TestContext::from_fixture(APP);
    build(&ctx, &["--cached"]);
    let bundle = || ctx.read(".aws-sam/build/TsFunction/app.js");
    assert!(bundle().contains("shared-1"), "{}", bundle());
    assert!(ctx.join(".aws-sam/build/PyFunction/six-1.16.0.dist-info").is_dir());
    // The local package is a real folder inside the artifact, not a link out of it.
    let local = ctx.join(".aws-sam/build/NodeFunction/node_modules/shared");
    assert!(!std::fs::symlink_metadata(&local).unwrap().file_type().is_symlink(), "file: package installed as a copy");
    assert_eq!(ctx.read(".aws-sam/build/NodeFunction/node_modules/shared/index.js"), "module.exports = \"lib-1\";\n");

    // 1. An import from outside CodeUri changes: the bundle is rebuilt.
    ctx.write("shared/util.js", "export const value = \"shared-2\";\n");
    let out = build(&ctx, &["--cached"]);
    assert_eq!(work(&out, "TsFunction").1, "built", "{out}");
    assert!(bundle().contains("shared-2") && !bundle().contains("shared-1"), "{}", bundle());
    assert_eq!(work(&out, "PlainFunction"), ("-".into(), "reused".into(), "unchanged".into()), "{out}");

    // 2. A `-r` include changes: the dependencies are reinstalled.
    ctx.write("base.txt", "six==1.15.0\n");
    let out = build(&ctx, &["--cached"]);
    assert_eq!(work(&out, "PyFunction").0, "built", "{out}");
    assert!(ctx.join(".aws-sam/build/PyFunction/six-1.15.0.dist-info").is_dir());
    assert!(!ctx.join(".aws-sam/build/PyFunction/six-1.16.0.dist-info").exists());

    // 3. A local package changes: reinstalled, still a copy.
    ctx.write("libpkg/index.js", "module.exports = \"lib-2\";\n");
    let out = build(&ctx, &["--cached"]);
    assert_eq!(work(&out, "NodeFunction").0, "built", "{out}");
    assert_eq!(ctx.read(".aws-sam/build/NodeFunction/node_modules/shared/index.js"), "module.exports = \"lib-2\";\n");

    // Nothing changed: nothing rebuilt.
    let out = build(&ctx, &["--cached"]);
    for label in ["TsFunction", "PyFunction", "NodeFunction", "PlainFunction"] {
        assert_eq!(work(&out, label).2, "unchanged", "{label}: {out}");
    }
}

#[test]
fn a_local_package_that_is_missing_names_the_dependency() {
    let ctx = TestContext::from_fixture(APP);
    ctx.replace("node/package.json", "file:../libpkg", "file:../nowhere");
    let out = ctx.accel(&["build", "--cached"]).assert_code(1);
    assert!(out.stderr.contains("nowhere") && out.stderr.contains("NodeFunction"), "{out}");
    assert!(!out.stderr.contains("accel-v"), "no internal cache folder in the message: {out}");
}

/// A small deterministic generator: the differential test replays the same
/// edits on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_of(dir)
}

/// The invariant of `--cached`: after any sequence of edits to files a
/// build read, a cached build writes a `.aws-sam/build` byte-identical to a
/// clean build of the same tree.
#[test]
fn cached_builds_equal_clean_builds_after_random_edits() {
    let ctx = TestContext::from_fixture(APP);
    build(&ctx, &["--cached"]);
    let mut rng = Lcg(0x5eed_1234);
    let edits = std::env::var("ACCEL_DIFFERENTIAL_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let mut log = Vec::new();
    for step in 0..edits {
        let edit = match rng.below(7) {
            0 => {
                ctx.write("shared/util.js", &format!("export const value = \"shared-{step}\";\n"));
                "shared/util.js changed"
            }
            1 => {
                ctx.write("base.txt", if rng.below(2) == 0 { "six==1.15.0\n" } else { "six==1.16.0\n" });
                "base.txt changed"
            }
            2 => {
                ctx.write("libpkg/index.js", &format!("module.exports = \"lib-{step}\";\n"));
                "libpkg/index.js changed"
            }
            3 => {
                ctx.write("plain/extra.py", &format!("VALUE = {step}\n"));
                "plain/extra.py added"
            }
            4 => {
                let _ = std::fs::remove_file(ctx.join("plain/extra.py"));
                "plain/extra.py deleted"
            }
            5 => {
                ctx.write("py/app.py", &format!("def handler(event, context):\n    return {step}\n"));
                "py/app.py changed"
            }
            _ => {
                // Touch without change: new mtime, same bytes.
                let text = ctx.read("shared/util.js");
                std::thread::sleep(std::time::Duration::from_millis(5));
                ctx.write("shared/util.js", &text);
                "shared/util.js touched"
            }
        };
        log.push(edit);
        build(&ctx, &["--cached"]);
        build(&ctx, &["--build-dir", ".aws-sam/clean", "--cache-dir", ".aws-sam/clean-cache"]);
        let (cached, clean) = (tree(&ctx.join(".aws-sam/build")), tree(&ctx.join(".aws-sam/clean")));
        let differ: Vec<&String> =
            cached.keys().chain(clean.keys()).filter(|k| cached.get(*k) != clean.get(*k)).collect();
        assert!(differ.is_empty(), "after {log:?} the cached build differs from a clean one in {differ:?}");
    }
}

/// The watcher follows the same inputs: a save in shared code syncs the
/// function whose bundle read it, a save in a `-r` include reinstalls the
/// dependencies of the function that includes it — and nothing else.
#[tokio::test(flavor = "multi_thread")]
async fn watch_follows_files_read_outside_the_function() {
    const STACK: &str = "readers";
    let ctx = TestContext::from_fixture(APP).with_cloud();
    let watch: Running = ctx.accel(&["sync", "--stack-name", STACK, "--watch"]).stdin("y\n").spawn();
    watch.wait_for_stderr("the first sync", |t| t.contains("Sync watch started."));
    let synced = |t: &str, name: &str| {
        t.lines().filter(|l| l.split_whitespace().next() == Some(name) && l.contains(" synced in ")).count()
    };

    let (ts, plain) = (ctx.code_sha(STACK, "TsFunction").await, ctx.code_sha(STACK, "PlainFunction").await);
    let before = synced(&watch.stderr(), "TsFunction");
    ctx.write("shared/util.js", "export const value = \"watched\";\n");
    let text = watch.wait_for_stderr("the shared edit", |t| synced(t, "TsFunction") > before);
    assert!(text.contains("shared/util.js: code of TsFunction"), "{text}");
    assert_ne!(ctx.code_sha(STACK, "TsFunction").await, ts);
    assert_eq!(ctx.code_sha(STACK, "PlainFunction").await, plain, "only the reader is synced");

    let layers = ctx.layers(STACK, "PyFunction").await;
    let before = watch.stderr().len();
    ctx.write("base.txt", "six==1.15.0\n");
    let text = watch.wait_for_stderr("the include edit", |t| {
        t[before..].contains("synced in") && t[before..].contains("PyFunction")
    });
    assert!(text[before..].contains("base.txt: dependencies of PyFunction"), "{}", &text[before..]);
    assert_ne!(ctx.layers(STACK, "PyFunction").await, layers, "a new dependency layer version");
    watch.stop();
}
