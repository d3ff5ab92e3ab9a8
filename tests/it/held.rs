//! Build folders replaced while another process holds them (on Windows a
//! scanner, an editor or a shell's working folder), and what an earlier run
//! could not delete: swept by a later one.

use crate::support::{TestContext, listing};

#[test]
fn a_rebuild_replaces_a_held_folder_and_sweeps_what_an_earlier_run_left() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp");
    ctx.accel(&["build"]).assert_success();
    let artifact = ctx.join(".aws-sam/build/HelloFunction");
    // A file open and the working folder inside the artifact.
    let mut holder = std::process::Command::new("tail")
        .args(["-f", "app.py"])
        .current_dir(&artifact)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // An old folder a held file kept from being deleted, as a run on Windows leaves it.
    let leftover = ctx.join(".aws-sam/build/.accel-old-1000-1-1");
    std::fs::create_dir_all(leftover.join("sub")).unwrap();
    std::fs::write(leftover.join("sub/app.py"), "old").unwrap();
    ctx.write("hello/app.py", "def handler(e, c):\n    return 'rebuilt'\n");
    let out = ctx.accel(&["build"]).run();
    let held_throughout = holder.try_wait().unwrap().is_none();
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(held_throughout);
    assert!(ctx.read(".aws-sam/build/HelloFunction/app.py").contains("rebuilt"));
    let names = listing(&ctx.join(".aws-sam/build"));
    assert!(!names.iter().any(|n| n.contains(".accel-")), "nothing left aside: {names:?}");
}
