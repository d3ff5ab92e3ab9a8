//! Templates saved with Windows line endings (CRLF): they build to the very
//! bytes the LF template gives (sam re-emits the parsed template with LF,
//! so its output is the same too), and errors name the right line.

use crate::support::TestContext;

/// `text` with every LF made CRLF.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

#[test]
fn a_crlf_template_builds_byte_identically_and_errors_name_its_lines() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/syncapp");
    ctx.accel(&["build"]).assert_success();
    let lf_built = std::fs::read(ctx.join(".aws-sam/build/template.yaml")).unwrap();
    let lf = ctx.read("template.yaml");
    ctx.write("template.yaml", &crlf(&lf));
    assert!(ctx.read("template.yaml").contains("through the service APIs.\r\n"));
    std::fs::remove_dir_all(ctx.join(".aws-sam")).unwrap();
    ctx.accel(&["build"]).assert_success();
    let crlf_built = std::fs::read(ctx.join(".aws-sam/build/template.yaml")).unwrap();
    assert!(!crlf_built.contains(&b'\r'), "no CR in the built template");
    assert_eq!(String::from_utf8(crlf_built).unwrap(), String::from_utf8(lf_built).unwrap());

    // A YAML error, and a resource error found by searching the text.
    let lines = lf.lines().count();
    ctx.write("template.yaml", &crlf(&format!("{lf}  Broken: [\n")));
    let out = ctx.accel(&["build"]).assert_code(1);
    assert!(out.stderr.contains(&format!("template.yaml:{}:", lines + 2)), "{out}");
    let missing = lf.replace("CodeUri: world/", "CodeUri: nowhere/");
    let line = 1 + missing.lines().position(|l| l.contains("nowhere/")).unwrap();
    ctx.write("template.yaml", &crlf(&missing));
    let out = ctx.accel(&["sync", "--stack-name", "never-deployed", "--code"]).run();
    assert!(out.stderr.contains(&format!("template.yaml:{line}: resource WorldFunction")), "{out}");
}
