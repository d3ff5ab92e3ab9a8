//! The `accel` binary's command line: every flag of the spec, sam's exit
//! codes, samconfig precedence, and one clear line for each bad input.

use std::path::Path;

use crate::support::TestContext;

const GLOBAL: &[&str] = &[
    "--debug",
    "--beta-features",
    "--no-beta-features",
    "--region",
    "--profile",
    "--config-file",
    "--config-env",
    "--save-params",
    "--help",
];

#[test]
fn help_lists_every_flag_of_the_spec() {
    let build = [
        "--template-file",
        "--template",
        "-t",
        "--parameter-overrides",
        "--language-extensions",
        "--no-language-extensions",
        "--parallel",
        "-p",
        "--exclude",
        "-x",
        "--manifest",
        "-m",
        "--cached",
        "--no-cached",
        "-c",
        "--build-in-source",
        "--no-build-in-source",
        "--use-container",
        "--no-use-container",
        "-u",
        "--use-buildkit",
        "--no-use-buildkit",
        "--container-env-var",
        "-e",
        "--container-env-var-file",
        "-ef",
        "--build-image",
        "-bi",
        "--mount-with",
        "-mw",
        "--skip-pull-image",
        "--docker-network",
        "--mount-symlinks",
        "--no-mount-symlinks",
        "--build-dir",
        "-b",
        "--cache-dir",
        "-cd",
        "--base-dir",
        "-s",
        "--hook-name",
        "--skip-prepare-infra",
        "--prepare-infra",
        "--terraform-project-root-path",
        "RESOURCE_LOGICAL_ID",
    ];
    let sync = [
        "--stack-name",
        "--template-file",
        "--template",
        "-t",
        "--code",
        "--watch",
        "--no-watch",
        "--resource-id",
        "--resource",
        "--dependency-layer",
        "--no-dependency-layer",
        "--skip-deploy-sync",
        "--no-skip-deploy-sync",
        "--express",
        "--no-express",
        "--watch-exclude",
        "--base-dir",
        "-s",
        "--use-container",
        "-u",
        "--build-in-source",
        "--no-build-in-source",
        "--build-image",
        "-bi",
        "--container-env-var-file",
        "-ef",
        "--image-repository",
        "--image-repositories",
        "--s3-bucket",
        "--s3-prefix",
        "--kms-key-id",
        "--role-arn",
        "--parameter-overrides",
        "--capabilities",
        "--notification-arns",
        "--tags",
        "--metadata",
        "--language-extensions",
        "--no-language-extensions",
    ];
    let logs = [
        "--name",
        "-n",
        "--stack-name",
        "--filter",
        "--tail",
        "-t",
        "--include-traces",
        "-i",
        "--cw-log-group",
        "--start-time",
        "-s",
        "--end-time",
        "-e",
        "--output",
    ];
    let ctx = TestContext::new();
    for (command, flags) in [("build", &build[..]), ("sync", &sync[..]), ("logs", &logs[..])] {
        let out = ctx.accel(&[command, "--help"]).assert_success();
        let help = out.stdout;
        for flag in flags.iter().chain(GLOBAL) {
            let shown = help.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')).any(|w| w == *flag);
            assert!(shown, "`accel {command} --help` does not list {flag}");
        }
    }
}

#[test]
fn version() {
    let out = TestContext::new().accel(&["--version"]).assert_success();
    assert_eq!(out.stdout.trim(), format!("accel {}", env!("CARGO_PKG_VERSION")));
}

/// Exit code 2, a usage line, and sam's message.
fn assert_usage_error(args: &[&str], message: &str) {
    let out = TestContext::new().accel(args).assert_code(2);
    let err = &out.stderr;
    assert!(err.contains("Usage: accel"), "{args:?}: no usage line in {err}");
    assert!(err.contains(message), "{args:?}: expected {message:?} in {err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_usage_error(&["sync"], "--stack-name");
    assert_usage_error(&["build", "--bogus"], "--bogus");
    assert_usage_error(&["logs"], "Missing option. Please provide '--stack-name' or '--cw-log-group'");
    assert_usage_error(
        &["logs", "-n", "Fn", "--cw-log-group", "g"],
        "Please provide '--stack-name' when using '--name' option",
    );
    assert_usage_error(&["build", "-bi", "img"], "need the --use-container flag in order to use --build-image flag");
    assert_usage_error(&["build", "-e", "A=1"], "in order to use --container-env-var flag");
    assert_usage_error(&["build", "-mw", "WRITE"], "in order to use --mount-with flag");
    assert_usage_error(
        &["sync", "--stack-name", "s", "-ef", "env.json"],
        "in order to use --container-env-var-file flag",
    );
    assert_usage_error(&["sync", "--stack-name", "s", "--watch-exclude", "Fn"], "Key=Value");
    assert_usage_error(&["sync", "--stack-name", "s", "--resource", "AWS::SQS::Queue"], "AWS::SQS::Queue");
    assert_usage_error(
        &["build", "--region", "not_a_region"],
        "Provided region: not_a_region doesn't match a supported format",
    );
    assert_usage_error(&["build", "--skip-prepare-infra"], "--hook-name");
    assert_usage_error(&["logs", "--stack-name", "s", "--output", "xml"], "xml");
}

#[test]
fn sam_build_mode_must_be_debug() {
    let out = TestContext::new().accel(&["build"]).env("SAM_BUILD_MODE", "fast").assert_code(2);
    assert!(out.stderr.contains("Invalid value for 'mode'"), "{out}");
}

/// Exit code 1 and exactly one line `Error: …` containing each of `parts`.
fn assert_error_line(ctx: &TestContext, args: &[&str], parts: &[&str]) {
    let out = ctx.accel(args).assert_code(1);
    let err = &out.stderr;
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line expected, got {err}");
    assert!(lines[0].starts_with("Error: "), "{err}");
    for part in parts {
        assert!(lines[0].contains(part), "{args:?}: expected {part:?} in {err}");
    }
}

fn project(files: &[(&str, &str)]) -> TestContext {
    let ctx = TestContext::new();
    for (name, text) in files {
        ctx.write(name, text);
    }
    ctx
}

const GOOD_FUNCTION: &str = "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src\n      Handler: app.handler\n      Runtime: python3.12\n";

#[test]
fn missing_template() {
    let dir = TestContext::new();
    let expected = dir.path().join("template.yml");
    assert_error_line(&dir, &["build"], &[&format!("Template file not found at {}", expected.display())]);
    let expected = dir.path().join("nope.yaml");
    assert_error_line(
        &dir,
        &["sync", "--stack-name", "s", "-t", "nope.yaml"],
        &[&format!("Template file not found at {}", expected.display())],
    );
}

#[test]
fn invalid_yaml_names_file_and_line() {
    let dir = project(&[(
        "template.yaml",
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: [unclosed\n",
    )]);
    assert_error_line(&dir, &["build"], &["template.yaml:5", "invalid YAML"]);
    let dir = project(&[("template.yaml", "Resources:\n  Fn:\n    Type: !Bogus x\n")]);
    assert_error_line(&dir, &["build"], &["template.yaml:3", "unknown tag !Bogus"]);
}

#[test]
fn unknown_reference_names_resource_and_line() {
    let text = format!("{GOOD_FUNCTION}      Layers:\n        - !Ref MissingLayer\n");
    let dir = project(&[("template.yaml", &text), ("src/app.py", "")]);
    assert_error_line(
        &dir,
        &["build"],
        &["template.yaml:9", "resource Fn", "unknown resource or parameter 'MissingLayer'"],
    );
    let text = format!("{GOOD_FUNCTION}Outputs:\n  Arn:\n    Value: !Sub '${{Nope.Arn}}'\n");
    let dir = project(&[("template.yaml", &text), ("src/app.py", "")]);
    assert_error_line(
        &dir,
        &["build"],
        &["template.yaml:10", "Outputs refers to unknown resource or parameter 'Nope'"],
    );
}

#[test]
fn missing_code_uri_names_resource_and_line() {
    let dir = project(&[("template.yaml", GOOD_FUNCTION)]);
    let path = dir.path().join("src");
    let parts = ["template.yaml:5", "resource Fn", "CodeUri 'src' does not exist", &path.display().to_string()];
    // sync deploys the code: a missing folder is an error, before any call.
    assert_error_line(&dir, &["sync", "--stack-name", "s"], &parts);
    // build does what sam does: warns, builds nothing for it, and keeps the
    // path valid from the build folder (with the system's separators, as
    // sam's `os.path.relpath`).
    let out = dir.accel(&["build"]).assert_success();
    assert!(parts.iter().all(|p| out.stderr.contains(p)) && out.stderr.contains("Warning:"), "{out}");
    let code_uri = format!("CodeUri: {}", Path::new("..").join("..").join("src").display());
    assert!(dir.read(".aws-sam/build/template.yaml").contains(&code_uri), "{out}");
    assert!(!dir.join(".aws-sam/build/Fn").exists());
}

#[test]
fn nested_stack_cycle_is_reported() {
    let parent =
        "Resources:\n  Child:\n    Type: AWS::Serverless::Application\n    Properties:\n      Location: child.yaml\n";
    let child = "Resources:\n  Back:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: ./template.yaml\n";
    let dir = project(&[("template.yaml", parent), ("child.yaml", child)]);
    assert_error_line(&dir, &["build"], &["child.yaml:2", "resource Child/Back", "nested stacks form a cycle"]);
}

#[test]
fn bad_globals_and_parameter_overrides() {
    let text = format!("Globals:\n  Function:\n    FunctionName: x\n{GOOD_FUNCTION}");
    let dir = project(&[("template.yaml", &text), ("src/app.py", "")]);
    assert_error_line(
        &dir,
        &["build"],
        &["template.yaml:1", "'FunctionName' is not a supported property of 'Function'"],
    );
    let dir = project(&[("template.yaml", GOOD_FUNCTION), ("src/app.py", "")]);
    assert_error_line(&dir, &["build", "--parameter-overrides", "NoEquals"], &["--parameter-overrides", "NoEquals"]);
}

#[test]
fn unsupported_features_are_refused_by_name() {
    let dir = project(&[("template.yaml", GOOD_FUNCTION), ("src/app.py", "")]);
    assert_error_line(
        &dir,
        &["sync", "--stack-name", "s", "--build-in-source"],
        &["--build-in-source is not supported by accel sync yet"],
    );
    let with_context = format!("{GOOD_FUNCTION}    Metadata:\n      BuildMethod: makefile\n      ContextPath: sub\n");
    let other = project(&[("template.yaml", &with_context), ("src/app.py", "")]);
    let makefile = Path::new("sub").join("Makefile").display().to_string();
    assert_error_line(&other, &["build"], &["Fn: Makefile not found at ", &makefile]);
    assert_error_line(&dir, &["build", "--use-container"], &["--use-container needs Docker"]);
    assert_error_line(&dir, &["build", "-u", "-bi", "img"], &["--use-container needs Docker"]);
    assert_error_line(
        &dir,
        &["sync", "--stack-name", "s", "--image-repository", "r"],
        &["--image-repository needs Docker"],
    );
    assert_error_line(&dir, &["build", "--hook-name", "terraform"], &["--hook-name terraform", "not supported"]);
}

#[test]
fn samconfig_precedence_flag_over_env_over_file() {
    let dir = project(&[
        ("samconfig.toml", "version = 0.1\n[default.build.parameters]\ntemplate_file = \"from-config.yaml\"\n"),
        ("src/app.py", ""),
    ]);
    let not_found = |name: &str| format!("Template file not found at {}", dir.path().join(name).display());
    // samconfig alone
    assert_error_line(&dir, &["build"], &[&not_found("from-config.yaml")]);
    // the environment variable beats samconfig
    let out = dir.accel(&["build"]).env("SAM_TEMPLATE_FILE", "from-env.yaml").run();
    assert!(out.stderr.contains(&not_found("from-env.yaml")), "{out}");
    // the flag beats both
    let out = dir.accel(&["build", "-t", "from-flag.yaml"]).env("SAM_TEMPLATE_FILE", "from-env.yaml").run();
    assert!(out.stderr.contains(&not_found("from-flag.yaml")), "{out}");
}

#[test]
fn samconfig_problems_are_one_line_errors() {
    let dir = project(&[("samconfig.toml", "[default.build.parameters]\ncached = true\n")]);
    assert_error_line(&dir, &["build"], &["samconfig.toml", "'version' key is not present"]);
    let dir = TestContext::new();
    assert_error_line(&dir, &["build", "--config-file", "other.toml"], &["Config file", "other.toml does not exist"]);
    let dir = project(&[("samconfig.toml", "version = 0.1\n[default.sync.parameters\n")]);
    assert_error_line(&dir, &["sync"], &["samconfig.toml: line 2"]);
}

#[test]
fn samconfig_supplies_required_stack_name() {
    let dir = project(&[
        ("samconfig.toml", "version = 0.1\n[default.sync.parameters]\nstack_name = \"blog\"\n"),
        ("template.yaml", GOOD_FUNCTION),
        ("src/app.py", ""),
    ]);
    // No usage error: the stack name came from samconfig, and the safety
    // prompt (answered by end of input) is reached.
    let out = dir.accel(&["sync"]).assert_code(1);
    assert!(out.stdout.contains("Aborted!"), "{out}");
}

#[test]
fn help_snapshots() {
    let ctx = TestContext::new();
    for (name, args) in [
        ("help", &["--help"][..]),
        ("build_help", &["build", "--help"]),
        ("sync_help", &["sync", "--help"]),
        ("logs_help", &["logs", "--help"]),
    ] {
        // A fixed width: help wraps to the terminal's.
        let out = ctx.accel(args).env("COLUMNS", "100").assert_success();
        insta::assert_snapshot!(name, out.stdout);
    }
}

#[test]
fn flags_after_parameter_overrides_stay_flags() {
    let template =
        GOOD_FUNCTION.replacen("Resources:", "Parameters:\n  Stage: {Type: String, Default: dev}\nResources:", 1);
    let dir = project(&[("template.yaml", &template), ("src/app.py", "")]);
    // `--cached` after the overrides is the flag (sam's click takes one value
    // per occurrence), and an undeclared parameter is accepted, as by sam.
    dir.accel(&["build", "--parameter-overrides", "Stage=prod", "Undeclared=1", "--cached"]).assert_success();
    let again = dir.accel(&["build", "--parameter-overrides", "Stage=prod", "--cached"]).assert_success();
    assert!(again.stderr.contains("artifact unchanged"), "the second build reused the cache: {again}");
}

#[test]
fn a_function_sam_refuses_is_refused_with_sams_words() {
    let no_handler = "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src\n      Runtime: python3.12\n";
    let dir = project(&[("template.yaml", no_handler), ("src/app.py", "")]);
    assert_error_line(&dir, &["build"], &["Could not find handler for function: Fn"]);
    let fake = format!("{GOOD_FUNCTION}      Architectures: [fake]\n");
    let dir = project(&[("template.yaml", &fake), ("src/app.py", "")]);
    assert_error_line(
        &dir,
        &["build"],
        &["Fn", "PythonPipBuilder:Validation - Architecture fake is not supported for runtime python3.12"],
    );
}
