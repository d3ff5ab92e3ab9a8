//! Template shapes sam builds beyond plain SAM functions (issue 13, items
//! 11, 12, 14 and 17): CDK-synthesized templates, nested templates reached
//! through symlinks, prebuilt image functions, and makefile builds laid out
//! by `ContextPath`, `ProjectRootDirectory` and `WorkingDirectory`. The
//! fixtures are also in `scripts/parity-apps`, which checks them byte for
//! byte against `sam build`; here the tree and template are asserted.

use serde_json::Value;

use crate::support::{TestContext, listing, yaml};

fn keys(value: &Value) -> Vec<&str> {
    value.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default()
}

const ASSET: &str = "cdk.out/asset.1111111111111111111111111111111111111111111111111111111111111111";
const INNER: &str = "cdk.out/asset.3333333333333333333333333333333333333333333333333333333333333333";
const BUNDLED: &str = "cdk.out/asset.2222222222222222222222222222222222222222222222222222222222222222";

#[test]
fn cdk_functions_build_from_their_asset_folder() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/shape-cdk");
    ctx.accel(&["build"]).assert_success();
    let build = ctx.join(".aws-sam/build");
    // Built from the asset, into a folder named by the logical id (as sam);
    // the bundled asset is CDK's own build: nothing to do.
    assert_eq!(listing(&build), ["Child", "PyFunction0A1B2C3D", "template.yaml"]);
    assert_eq!(listing(&build.join("PyFunction0A1B2C3D")), ["main.py", "requests_free.py", "requirements.txt"]);
    // The nested stack's TemplateURL is an asset too; sam builds it into a
    // folder named by its construct id, its assets relative to its template.
    assert_eq!(listing(&build.join("Child")), ["InnerFunction7C8D9E0F", "template.yaml"]);
    assert_eq!(listing(&build.join("Child/InnerFunction7C8D9E0F")), ["inner.py"]);
    let child = yaml(&build.join("Child/template.yaml"));
    let inner = &child["Resources"]["InnerFunction7C8D9E0F"];
    assert_eq!(inner["Properties"]["Code"], "InnerFunction7C8D9E0F");
    assert_eq!(inner["Metadata"]["aws:asset:path"], format!("../../../{INNER}"));

    let template = yaml(&build.join("template.yaml"));
    let built = &template["Resources"]["PyFunction0A1B2C3D"];
    assert_eq!(built["Properties"]["Code"], "PyFunction0A1B2C3D", "the S3 location becomes the artifact");
    let metadata = &built["Metadata"];
    assert_eq!(
        keys(metadata),
        [
            "SamNormalized",
            "SamResourceId",
            "aws:asset:is-bundled",
            "aws:asset:path",
            "aws:asset:property",
            "aws:cdk:path"
        ],
        "sam's normalized metadata, keys sorted"
    );
    assert_eq!(metadata["SamNormalized"], true);
    assert_eq!(metadata["SamResourceId"], "PyFunction", "the construct id from aws:cdk:path");
    assert_eq!(metadata["aws:asset:path"], format!("../../{ASSET}"), "relative to the build folder");

    let bundled = &template["Resources"]["BundledFunction9F8E7D6C"];
    assert!(bundled["Properties"]["Code"]["S3Key"].is_string(), "not built: its Code stays");
    assert_eq!(
        keys(&bundled["Metadata"]),
        ["aws:cdk:path", "aws:asset:path", "aws:asset:is-bundled", "aws:asset:property"],
        "metadata of a resource not built keeps its order"
    );
    assert_eq!(bundled["Metadata"]["aws:asset:path"], format!("../../{BUNDLED}"));
    let stack = &template["Resources"]["ChildNestedStackNestedStackChildNestedStackResource5E6F7A8B"];
    assert_eq!(stack["Properties"]["TemplateURL"], "Child/template.yaml");
    assert_eq!(stack["Metadata"]["SamResourceId"], "Child");
    assert_eq!(stack["Metadata"]["SamNormalized"], true);
}

#[test]
fn cdk_resources_are_also_found_by_construct_id() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/shape-cdk");
    ctx.accel(&["build", "PyFunction"]).assert_success();
    assert!(ctx.join(".aws-sam/build/PyFunction0A1B2C3D/main.py").is_file());
}

#[test]
fn cdk_asset_edits_rebuild_with_cached() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/shape-cdk");
    ctx.accel(&["build", "--cached"]).assert_success();
    ctx.replace(&format!("{ASSET}/requests_free.py"), "hello from a CDK asset", "edited asset");
    ctx.accel(&["build", "--cached"]).assert_success();
    assert!(ctx.read(".aws-sam/build/PyFunction0A1B2C3D/requests_free.py").contains("edited asset"));
}

#[cfg(unix)] // symlinks
#[test]
fn cdk_asset_paths_of_a_symlinked_template_start_from_the_real_file() {
    // Loading follows the link to the real folder; the built template's
    // asset paths must too, or they name files next to the link.
    let ctx = TestContext::from_fixture("tests/fixtures/apps/shape-cdk");
    std::fs::create_dir(ctx.join("link")).unwrap();
    std::os::unix::fs::symlink("../template.json", ctx.join("link/template.json")).unwrap();
    ctx.accel(&["build", "-t", "link/template.json"]).assert_success();
    let template = yaml(&ctx.join(".aws-sam/build/template.yaml"));
    let resources = &template["Resources"];
    assert_eq!(resources["PyFunction0A1B2C3D"]["Metadata"]["aws:asset:path"], format!("../../{ASSET}"));
    assert_eq!(resources["BundledFunction9F8E7D6C"]["Metadata"]["aws:asset:path"], format!("../../{BUNDLED}"));
}

#[test]
fn a_nested_stack_building_into_a_function_folder_is_refused() {
    // sam lets the two artifacts mix in .aws-sam/build/Child.
    let ctx = TestContext::new();
    ctx.write("a/app.py", "def h(e, c): return 1\n");
    ctx.write("b/app.py", "def h(e, c): return 2\n");
    let function = |code: &str| {
        format!(
            "    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: {code}\n      Handler: app.h\n      Runtime: python3.12\n"
        )
    };
    ctx.write("child.yaml", &format!("Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n{}", function("b/")));
    ctx.write(
        "template.yaml",
        &format!(
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  Child:\n{}  ChildStack:\n    Type: AWS::CloudFormation::Stack\n    \
             Properties:\n      TemplateURL: child.yaml\n    Metadata:\n      SamResourceId: Child\n",
            function("a/")
        ),
    );
    let out = ctx.accel(&["build"]).assert_code(1);
    assert!(
        out.stderr.contains(
            "template.yaml:9: resource ChildStack: builds into the folder 'Child', as Child does; give one of them \
             another SamResourceId or logical id"
        ),
        "{out}"
    );
    assert!(!ctx.join(".aws-sam/build/Child").exists());
}

#[test]
fn nested_templates_through_symlinks_resolve_from_the_real_file() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/shape-nested-symlink");
    ctx.accel(&["build"]).assert_success();
    let build = ctx.join(".aws-sam/build");
    let children = ["ChildDirect", "ChildViaFileLink", "ChildViaFolderLink"];
    for child in children {
        assert_eq!(listing(&build.join(child).join("FunctionB")), ["main_b.py", "requirements.txt"], "{child}");
        let template = yaml(&build.join(child).join("template.yaml"));
        let function = &template["Resources"]["FunctionB"];
        assert_eq!(function["Properties"]["CodeUri"], "FunctionB", "{child}");
        assert_eq!(function["Metadata"]["SamResourceId"], "FunctionB", "{child}");
    }
    let root = yaml(&build.join("template.yaml"));
    for (child, property) in [("ChildDirect", "Location"), ("ChildViaFileLink", "Location")]
        .into_iter()
        .chain([("ChildViaFolderLink", "TemplateURL")])
    {
        let resource = &root["Resources"][child];
        assert_eq!(resource["Properties"][property], format!("{child}/template.yaml"));
        assert_eq!(resource["Metadata"]["SamResourceId"], child, "nested stacks get sam's metadata too");
    }
    assert!(build.join("FunctionA/main_a.py").is_file());
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
    // A CDK image asset is built by Docker too.
    ctx.write(
        "template.yaml",
        "Resources:\n  ImgFn1234:\n    Type: AWS::Lambda::Function\n    Properties:\n      PackageType: Image\n      Code:\n        ImageUri: {'Fn::Sub': 'x.dkr.ecr'}\n    Metadata:\n      aws:cdk:path: S/ImgFn/Resource\n      aws:asset:path: asset.3\n      aws:asset:dockerfile-path: Dockerfile\n      aws:asset:property: Code.ImageUri\n",
    );
    let out = ctx.accel(&["build"]).assert_code(1);
    assert!(out.stderr.starts_with("Error: ImgFn1234: building an image function"), "{out}");
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
    let metadata = &template["Resources"]["ProjectFunction"]["Metadata"];
    assert_eq!(
        keys(metadata),
        ["BuildMethod", "ContextPath", "ProjectRootDirectory", "SamResourceId", "WorkingDirectory"],
        "kept as written, keys sorted as sam writes them"
    );
    assert_eq!(template["Resources"]["ProjectFunction"]["Properties"]["CodeUri"], "ProjectFunction");
    // Layers read the same metadata.
    assert_eq!(ctx.read(".aws-sam/build/MakeLayer/lib/helper.py"), "VALUE = 1\n");
    assert_eq!(ctx.read(".aws-sam/build/MakeLayer/layer-listing.txt"), "helper.py\nmain.py\n");
    // In a nested stack the paths start from the root template's folder, as sam.
    assert_eq!(ctx.read(".aws-sam/build/Nested/NestedFunction/which.txt"), "the root folder's Makefile\n");
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

#[test]
fn the_makefile_chosen_with_manifest_is_in_the_cache_key() {
    // Two Makefiles inside the CodeUri: the source is the same whichever
    // `-m` names, the build is not.
    let ctx = TestContext::new();
    ctx.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src\n      Handler: main.handler\n      Runtime: provided.al2023\n    Metadata:\n      BuildMethod: makefile\n",
    );
    ctx.write("src/Makefile", "build-Fn:\n\techo one > $(ARTIFACTS_DIR)/out.txt\n");
    ctx.write("src/Makefile.alt", "build-Fn:\n\techo two > $(ARTIFACTS_DIR)/out.txt\n");
    ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(ctx.read(".aws-sam/build/Fn/out.txt"), "one\n");
    ctx.accel(&["build", "--cached", "-m", "src/Makefile.alt"]).assert_success();
    assert_eq!(ctx.read(".aws-sam/build/Fn/out.txt"), "two\n");
}
