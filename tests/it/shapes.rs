//! Template shapes sam builds beyond plain SAM functions (issue 13, items
//! 14 and 17): prebuilt image functions, and makefile builds laid out by
//! `ContextPath`, `ProjectRootDirectory` and `WorkingDirectory`. The
//! fixtures are also in `scripts/parity-apps`, which checks them byte for
//! byte against `sam build`; here the tree and template are asserted.

use std::path::Path;

use serde_json::Value;

use crate::support::TestContext;

fn yaml(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Names of a folder's entries, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn prebuilt_image_functions_pass_through() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/shape-image");
    let source = yaml(&ctx.join("template.yaml"));
    ctx.accel(&["build"]).assert_success();
    let build = ctx.join(".aws-sam/build");
    assert_eq!(listing(&build), ["ZipFunction", "template.yaml"], "nothing built for the images");
    let template = yaml(&build.join("template.yaml"));
    for image in ["PrebuiltFunction", "PrebuiltLambdaFunction"] {
        assert_eq!(template["Resources"][image], source["Resources"][image], "{image} is written back as is");
    }
    let toml = ctx.read(".aws-sam/build.toml");
    assert!(toml.contains("ZipFunction") && !toml.contains("Prebuilt"), "{toml}");
}

#[test]
fn image_functions_sam_would_build_need_docker() {
    let ctx = TestContext::new();
    let template =
        "Resources:\n  Img:\n    Type: AWS::Serverless::Function\n    Properties:\n      PackageType: Image\n";
    ctx.write("Dockerfile", "FROM scratch\n");
    ctx.write(
        "template.yaml",
        &format!("{template}    Metadata:\n      Dockerfile: Dockerfile\n      DockerContext: .\n"),
    );
    let out = ctx.accel(&["build"]).assert_code(1);
    assert_eq!(
        out.stderr.trim(),
        "Error: Img: building an image function (Metadata.Dockerfile) requires a container runtime (Docker or Finch), which accel does not use; build it with `sam build`"
    );
    // An ImageUri that is an image archive on disk is loaded with Docker.
    ctx.write("image.tar", "not really an image");
    ctx.write("template.yaml", &format!("{template}      ImageUri: image.tar\n"));
    let out = ctx.accel(&["build"]).assert_code(1);
    assert!(out.stderr.starts_with("Error: Img: loading the image archive 'image.tar' requires a container runtime"));
    // SkipBuild: nothing to load.
    ctx.write("template.yaml", &format!("{template}      ImageUri: image.tar\n    Metadata:\n      SkipBuild: true\n"));
    ctx.accel(&["build"]).assert_success();
}

#[test]
fn makefile_context_project_root_and_working_directory_as_sam() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/shape-makefile");
    ctx.accel(&["build"]).assert_success();
    let build = ctx.join(".aws-sam/build");
    // ContextPath: the Makefile comes from there; make runs in the copied CodeUri.
    assert_eq!(listing(&build.join("ContextFunction")), ["helper.py", "main.py", "workdir-listing.txt"]);
    assert_eq!(ctx.read(".aws-sam/build/ContextFunction/workdir-listing.txt"), "helper.py\nmain.py\n");
    // ProjectRootDirectory is what is copied; WorkingDirectory inside it is
    // the copy's folder.
    assert_eq!(ctx.read(".aws-sam/build/ProjectFunction/project-listing.txt"), "build_here\nmakefiles\nsrc\n");
    assert_eq!(ctx.read(".aws-sam/build/ProjectFunction/note.txt"), "built in the working directory\n");
    // A WorkingDirectory outside the copied folder is used in place.
    assert_eq!(ctx.read(".aws-sam/build/OutsideFunction/workdir-listing.txt"), "marker.txt\n");
    let template = yaml(&build.join("template.yaml"));
    assert_eq!(template["Resources"]["ProjectFunction"]["Properties"]["CodeUri"], "ProjectFunction");
}

#[test]
fn makefile_inputs_outside_the_copied_folder_are_in_the_cache_key() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/shape-makefile");
    ctx.accel(&["build", "--cached"]).assert_success();
    // The Makefile of ContextFunction lies outside its CodeUri.
    ctx.replace(
        "custom_makefile/Makefile",
        "\tls > $(ARTIFACTS_DIR)/workdir-listing.txt\n\nbuild-Outside",
        "\techo edited > $(ARTIFACTS_DIR)/edited.txt\n\nbuild-Outside",
    );
    // OutsideFunction's working folder lies outside too.
    ctx.write("outside_wd/marker.txt", "changed marker\n");
    ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(ctx.read(".aws-sam/build/ContextFunction/edited.txt"), "edited\n");
    assert_eq!(ctx.read(".aws-sam/build/OutsideFunction/marker.txt"), "changed marker\n");
}

#[test]
fn makefile_layout_errors_name_the_resource() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/shape-makefile");
    let error = |ctx: &TestContext| {
        let out = ctx.accel(&["build"]).assert_code(1);
        let lines: Vec<String> = out.stderr.lines().map(str::to_string).collect();
        assert_eq!(lines.len(), 1, "one line: {out}");
        lines[0].clone()
    };
    ctx.replace("template.yaml", "ProjectRootDirectory: project", "ProjectRootDirectory: nowhere");
    let line = error(&ctx);
    assert!(line.starts_with("Error: ProjectFunction: Metadata.ProjectRootDirectory '"), "{line}");
    assert!(line.ends_with("nowhere' is not a folder"), "{line}");

    ctx.replace("template.yaml", "ProjectRootDirectory: nowhere", "ProjectRootDirectory: project");
    ctx.replace("template.yaml", "ContextPath: project/makefiles", "ContextPath: project/src");
    let line = error(&ctx);
    assert!(line.starts_with("Error: ProjectFunction: Makefile not found at "), "{line}");
    assert!(line.ends_with("project/src/Makefile"), "{line}");

    ctx.replace("template.yaml", "ContextPath: project/src", "ContextPath: [project]");
    let line = error(&ctx);
    assert!(line.contains("ProjectFunction: Metadata.ContextPath must be a path"), "{line}");
}
