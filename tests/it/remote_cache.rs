//! `--remote-cache s3://…` (issue 16): two clones of one project in
//! different folders share build entries through the local cloud's S3. The
//! second clone, with an empty `.aws-sam`, downloads every dependency and
//! code entry (no install, no build) and writes the same `.aws-sam/build`
//! byte for byte; a damaged entry is reported and built locally; a
//! read-only cache uploads nothing.

use crate::support::{RunOutput, TestContext, files_of};

const APP: &str = "tests/fixtures/apps/monorepo";
const BUCKET: &str = "accel-remote-cache";

fn build(ctx: &TestContext, extra: &[&str]) -> RunOutput {
    let mut args = vec!["build", "--cached", "--remote-cache", "s3://accel-remote-cache/team/app"];
    args.extend(extra);
    let out = ctx.accel(&args).run();
    assert_eq!(out.code, Some(0), "{out}");
    out
}

/// Each unit's `(deps, code)` steps, from its line of the build output.
fn steps(out: &RunOutput) -> Vec<(String, String)> {
    out.stderr
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let after =
                |w: &str| words.iter().position(|x| *x == w).and_then(|i| words.get(i + 1)).map(|s| s.to_string());
            Some((after("deps")?, after("code")?))
        })
        .collect()
}

fn puts(out: &RunOutput) -> usize {
    out.calls.iter().filter(|c| c.starts_with("s3:PUT")).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_clone_downloads_every_entry_and_builds_the_same_tree() {
    let first = TestContext::from_fixture(APP).with_cloud();
    first.s3().create_bucket().bucket(BUCKET).send().await.unwrap();
    let built = build(&first, &[]);
    let first_steps = steps(&built);
    assert!(!first_steps.is_empty() && first_steps.iter().all(|(_, code)| code == "built"), "{built}");
    assert!(puts(&built) >= first_steps.len(), "every entry stored: {:?}", built.calls);

    // Another folder, an empty .aws-sam: everything comes from the cache.
    let second = TestContext::from_fixture(APP).with_cloud();
    assert_ne!(first.root(), second.root());
    let fetched = build(&second, &[]);
    let second_steps = steps(&fetched);
    assert_eq!(second_steps.len(), first_steps.len(), "{fetched}");
    for (deps, code) in &second_steps {
        assert!(deps == "downloaded" || deps == "-", "no install ran: {fetched}");
        assert_eq!(code, "downloaded", "no build ran: {fetched}");
    }
    assert_eq!(puts(&fetched), 0, "nothing new to store: {:?}", fetched.calls);
    assert_eq!(files_of(&first.join(".aws-sam/build")), files_of(&second.join(".aws-sam/build")));

    // A damaged entry is reported, not used: the unit is built locally.
    let s3 = second.s3();
    let listed = s3.list_objects_v2().bucket(BUCKET).prefix("team/app/accel-v3/code/").send().await.unwrap();
    let entries: Vec<String> =
        listed.contents().iter().filter_map(|o| o.key()).filter(|k| k.ends_with(".tar.gz")).map(String::from).collect();
    for key in &entries {
        s3.put_object().bucket(BUCKET).key(key).body(b"not an archive".to_vec().into()).send().await.unwrap();
    }
    let third = TestContext::from_fixture(APP).with_cloud();
    let rebuilt = build(&third, &["--remote-cache-mode", "read"]);
    assert!(rebuilt.stderr.contains("remote cache, code not used"), "{rebuilt}");
    assert!(steps(&rebuilt).iter().all(|(_, code)| code == "built"), "{rebuilt}");
    assert_eq!(files_of(&first.join(".aws-sam/build")), files_of(&third.join(".aws-sam/build")));
    // Read-only: what it built is not stored.
    assert_eq!(puts(&rebuilt), 0, "{:?}", rebuilt.calls);
}

/// `accel sync` builds through the remote cache too: a clone that never
/// built fetches what another clone's sync stored, and a dry run only reads.
#[tokio::test(flavor = "multi_thread")]
async fn sync_builds_share_the_remote_cache() {
    let first = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    first.s3().create_bucket().bucket(BUCKET).send().await.unwrap();
    let url = "s3://accel-remote-cache/sync";
    let synced = first.accel(&["sync", "--stack-name", "remote-cache-sync", "--remote-cache", url]).stdin("y\n").run();
    assert_eq!(synced.code, Some(0), "{synced}");
    assert!(puts(&synced) > 0, "{:?}", synced.calls);

    let second = TestContext::from_fixture("tests/fixtures/apps/syncapp").with_cloud();
    let planned =
        second.accel(&["sync", "--stack-name", "remote-cache-sync", "--dry-run", "--remote-cache", url]).run();
    assert_eq!(planned.code, Some(0), "{planned}");
    let fetched = planned.calls.iter().filter(|c| c.starts_with("s3:GET") && c.ends_with(".tar.gz")).count();
    assert!(fetched > 0, "entries downloaded: {:?}", planned.calls);
    assert_eq!(puts(&planned), 0, "a dry run stores nothing: {:?}", planned.calls);
    // The artifacts are the same; the templates there name the project's own folder.
    let tree = |ctx: &TestContext| {
        let mut files = files_of(&ctx.join(".aws-sam/auto-dependency-layer"));
        files.retain(|name, _| !name.ends_with(".yaml"));
        files
    };
    let (a, b) = (tree(&first), tree(&second));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert!(a == b, "the same artifacts, byte for byte");
}
