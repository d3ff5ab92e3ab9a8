//! A corpus of real-world-shaped SAM templates (after SAM CLI's
//! tests/integration/testdata, in `tests/fixtures`), loaded through the
//! template model and checked through its typed views.

use std::path::PathBuf;

use serde_json::json;

use super::resources::{Definition, HttpApi, PackageType, RestApi, StateMachine};
use super::{CodeLocation, Function, Layer, LoadOptions, Stack};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Absolute, as loading makes the paths it gives: a cross-built test run
/// under Wine has the build machine's `CARGO_MANIFEST_DIR`, with no drive.
fn fixture(name: &str) -> PathBuf {
    std::path::absolute(repo().join("tests/fixtures/templates").join(name)).unwrap()
}

fn load(name: &str, file: &str) -> Stack {
    let stack = Stack::load(&fixture(name).join(file), &LoadOptions::default()).expect("template loads");
    stack.validate().expect("template is valid");
    stack
}

fn function<'a>(stack: &'a Stack, id: &str) -> Function<'a> {
    let (s, r) = stack.find(id).unwrap_or_else(|| panic!("{id} not found"));
    Function::of(s, r).unwrap_or_else(|| panic!("{id} is not a function"))
}

#[test]
fn sync_code_shapes() {
    let stack = load("sync_code", "template.yaml");
    let dir = fixture("sync_code");

    let hello = function(&stack, "HelloWorldFunction");
    assert_eq!(hello.code, CodeLocation::Local { uri: "function/".into(), path: dir.join("function/") });
    assert_eq!(hello.runtime.as_deref(), Some("python3.12"));
    assert_eq!(hello.handler.as_deref(), Some("app.lambda_handler"));
    assert_eq!(hello.auto_publish_alias.as_deref(), Some("live"));
    assert_eq!(hello.layer_refs(), ["HelloWorldLayer", "HelloWorldLayerWithoutBuildMethod"]);
    assert_eq!(hello.logging_config, Some(json!({"LogGroup": "/custom/local/hello"})), "Sub with AWS::StackName");
    assert_eq!(hello.resource.property("Timeout"), Some(&json!(10)), "Globals merged");

    let (s, r) = stack.find("HelloWorldLayer").unwrap();
    let layer = Layer::of(s, r).unwrap();
    assert_eq!(layer.build_method.as_deref(), Some("python3.12"));
    assert_eq!(layer.compatible_runtimes, ["python3.12", "python3.13"]);
    assert_eq!(layer.compatible_architectures, ["x86_64", "arm64"]);
    assert_eq!(layer.license_info.as_deref(), Some("MIT"));
    assert_eq!(layer.description.as_deref(), Some("Hello World Layer"));
    let (s, r) = stack.find("HelloWorldLayerWithoutBuildMethod").unwrap();
    let plain = Layer::of(s, r).unwrap();
    assert_eq!(plain.build_method, None);
    assert_eq!(plain.compatible_architectures, ["x86_64"], "default");

    let (s, r) = stack.find("MyApi").unwrap();
    let api = RestApi::of(s, r).unwrap();
    assert_eq!(api.stage_name.as_deref(), Some("beta"));
    assert!(
        matches!(api.definition, Definition::Uri(CodeLocation::Local { ref uri, .. }) if uri == "apigateway/definition.json")
    );
    let (s, r) = stack.find("MyHttpApi").unwrap();
    assert!(matches!(HttpApi::of(s, r).unwrap().definition, Definition::Uri(_)));

    let (s, r) = stack.find("StockStateMachine").unwrap();
    let sm = StateMachine::of(s, r).unwrap();
    assert!(matches!(sm.definition, Definition::Uri(CodeLocation::Local { .. })));
    assert_eq!(sm.substitutions, Some(json!({"HelloArn": {"Fn::GetAtt": ["HelloWorldFunction", "Arn"]}})));
    assert_eq!(sm.logging.as_ref().and_then(|l| l.get("Level")), Some(&json!("ALL")));

    let esbuild = function(&stack, "EsbuildFunction");
    assert_eq!(esbuild.build_method.as_deref(), Some("esbuild"));
    assert_eq!(esbuild.build_properties["EntryPoints"], json!(["src/app.ts"]));
    assert_eq!(esbuild.architecture, "arm64", "local Architectures replace the Globals ones");
    assert_eq!(function(&stack, "NodeFunction").architecture, "x86_64");
    assert_eq!(function(&stack, "MakefileFunction").build_method.as_deref(), Some("makefile"));
    assert_eq!(
        function(&stack, "PreZippedFunction").code,
        CodeLocation::PreZipped(dir.join("pre_zipped_function.zip"))
    );
    assert!(
        matches!(function(&stack, "InlineFunction").code, CodeLocation::Inline(ref src) if src.contains("return \"inline\""))
    );
    assert_eq!(function(&stack, "RemoteFunction").code, CodeLocation::S3(json!("s3://my-bucket/code.zip")));

    // Implicit APIs from events, typed like the explicit ones.
    let (s, r) = stack.find("ServerlessRestApi").expect("implicit REST API");
    assert!(r.implicit);
    let implicit = RestApi::of(s, r).unwrap();
    assert_eq!(implicit.definition, Definition::Generated);
    assert_eq!(implicit.stage_name.as_deref(), Some("Prod"));
    let (_, r) = stack.find("ServerlessHttpApi").expect("implicit HTTP API from NodeFunction's event");
    assert_eq!(r.resource_type, "AWS::Serverless::HttpApi");
}

#[test]
fn nested_stacks_load_recursively_with_full_paths() {
    let stack = load("nested", "template.yaml");
    let paths: Vec<&str> = stack.stacks().iter().map(|s| s.stack_path.as_str()).collect();
    assert_eq!(paths, ["", "ChildApp", "ChildApp/GrandChild", "OtherStack"]);
    let (_, remote) = stack.find("RemoteApp").unwrap();
    assert_eq!(remote.resource_type, "AWS::Serverless::Application", "a remote application stays a resource only");

    let child = function(&stack, "ChildApp/ChildFunction");
    assert_eq!(child.resource.full_path, "ChildApp/ChildFunction");
    assert_eq!(child.runtime.as_deref(), Some("python3.12"), "parent passes its parameter down");
    assert_eq!(child.resource.property("MemorySize"), Some(&json!("512")), "through the child's Globals");
    assert_eq!(
        child.code.local_path().unwrap(),
        &fixture("nested").join("child/src/"),
        "relative to the child template"
    );
    let deep = function(&stack, "DeepFunction");
    assert_eq!(deep.resource.full_path, "ChildApp/GrandChild/DeepFunction", "found by plain logical id too");
    let raw = function(&stack, "OtherStack/RawFunction");
    assert_eq!(raw.code.local_path().unwrap(), &fixture("nested").join("stack2/src"));
    assert_eq!(raw.package_type, PackageType::Zip);
}

#[test]
fn intrinsics_resolve_where_a_build_needs_them() {
    let dir = fixture("intrinsics");
    let load_with = |env: &str| {
        let options = LoadOptions {
            overrides: [("Env".to_string(), env.to_string())].into_iter().collect(),
            ..LoadOptions::default()
        };
        Stack::load(&dir.join("template.yaml"), &options).unwrap()
    };
    let dev = load_with("dev");
    let f = function(&dev, "Fn");
    assert_eq!(f.code.local_path().unwrap(), &dir.join("src/dev"));
    assert_eq!(f.runtime.as_deref(), Some("python3.12"));
    assert_eq!(f.handler.as_deref(), Some("dev.handler"));
    assert_eq!(f.layers.len(), 2, "a CommaDelimitedList parameter");
    assert_eq!(f.resource.property("MemorySize"), None, "AWS::NoValue removes the property");
    assert_eq!(f.architecture, "x86_64");

    let prod = load_with("prod");
    let f = function(&prod, "Fn");
    assert_eq!(f.code.local_path().unwrap(), &dir.join("src/prod"));
    assert_eq!(f.runtime.as_deref(), Some("python3.13"));
    assert_eq!(f.handler.as_deref(), Some("prod.handler"));
    assert_eq!(f.resource.property("MemorySize"), Some(&json!(1024)));
    assert_eq!(f.architecture, "arm64");
    let (_, topic) = prod.find("ProdOnly").unwrap();
    assert_eq!(topic.condition.as_deref(), Some("IsProd"));
    let overrides = [("Env".to_string(), "prod".to_string())].into_iter().collect();
    let resolver = super::intrinsics::Resolver::new(&prod.template, &overrides, super::Pseudo::default());
    assert_eq!(resolver.condition("IsProd"), Some(true));
}

#[test]
fn raw_cloudformation_twins() {
    let stack = load("raw_cfn", "template.yaml");
    let dir = fixture("raw_cfn");
    let raw = function(&stack, "RawFunction");
    assert_eq!(raw.code.local_path().unwrap(), &dir.join("code"));
    assert_eq!(raw.layer_refs(), ["RawLayer"]);
    assert!(matches!(function(&stack, "InlineRawFunction").code, CodeLocation::Inline(_)));
    assert_eq!(function(&stack, "S3RawFunction").code, CodeLocation::S3(json!({"S3Bucket": "b", "S3Key": "k"})));

    let (s, r) = stack.find("RawLayer").unwrap();
    assert_eq!(Layer::of(s, r).unwrap().content.local_path().unwrap(), &dir.join("layer"));
    let (s, r) = stack.find("RawRestApi").unwrap();
    assert!(matches!(RestApi::of(s, r).unwrap().definition, Definition::Uri(CodeLocation::Local { .. })));
    let (s, r) = stack.find("RawHttpApi").unwrap();
    assert!(matches!(HttpApi::of(s, r).unwrap().definition, Definition::Uri(CodeLocation::Local { .. })));
    let (s, r) = stack.find("RawStateMachine").unwrap();
    let sm = StateMachine::of(s, r).unwrap();
    assert!(matches!(sm.definition, Definition::Uri(CodeLocation::Local { .. })));
    assert_eq!(sm.logging.as_ref().and_then(|l| l.get("Level")), Some(&json!("ERROR")));
    let (s, r) = stack.find("InlineStateMachine").unwrap();
    assert!(matches!(StateMachine::of(s, r).unwrap().definition, Definition::Inline(_)));
}

#[test]
fn json_template_with_api_globals_and_implicit_apis() {
    let stack = load("json_globals", "template.json");
    let f = function(&stack, "ApiFunction");
    assert_eq!(f.runtime.as_deref(), Some("nodejs20.x"));
    assert_eq!(
        f.layers,
        [
            json!("arn:aws:lambda:us-east-1:123456789012:layer:g:1"),
            json!("arn:aws:lambda:us-east-1:123456789012:layer:own:3")
        ],
        "Globals layers come first"
    );
    let (s, r) = stack.find("ExplicitApi").unwrap();
    let explicit = RestApi::of(s, r).unwrap();
    assert_eq!(explicit.resource.property("Name"), Some(&json!("from-globals")));
    assert!(matches!(explicit.definition, Definition::Inline(_)));
    let (s, r) = stack.find("ServerlessRestApi").expect("implicit API for the event without RestApiId");
    assert_eq!(RestApi::of(s, r).unwrap().resource.property("TracingEnabled"), Some(&json!(true)), "Api Globals apply");
    let (s, r) = stack.find("ServerlessHttpApi").unwrap();
    let http = HttpApi::of(s, r).unwrap();
    assert_eq!(http.stage_name.as_deref(), Some("$default"));
    assert!(http.access_log_settings.is_some(), "HttpApi Globals apply");
}

#[test]
fn blog_example_app() {
    let stack = Stack::load(&repo().join("templates/blog/template.yaml"), &LoadOptions::default()).unwrap();
    stack.validate().unwrap();
    let functions: Vec<&str> =
        stack.all_resources().filter_map(|(s, r)| Function::of(s, r)).map(|f| f.resource.logical_id.as_str()).collect();
    assert_eq!(functions, ["HelloWorldFunction", "GreetingFunction"]);
    assert!(stack.find("ServerlessRestApi").is_some());
}

#[test]
fn intrinsics_in_metadata_resolve() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("layer")).unwrap();
    std::fs::write(
        dir.path().join("template.yaml"),
        "Parameters:\n  Method: {Type: String, Default: python3.12}\n  Content: {Type: String, Default: layer}\nResources:\n  Layer:\n    Type: AWS::Serverless::LayerVersion\n    Properties: {ContentUri: !Ref Content}\n    Metadata:\n      BuildMethod: !Ref Method\n      BuildProperties: {Target: !Sub '${Method}-x'}\n",
    )
    .unwrap();
    let stack = Stack::load(&dir.path().join("template.yaml"), &LoadOptions::default()).unwrap();
    let (s, r) = stack.find("Layer").unwrap();
    let layer = Layer::of(s, r).unwrap();
    assert_eq!(layer.build_method.as_deref(), Some("python3.12"));
    assert_eq!(layer.content, CodeLocation::Local { uri: "layer".into(), path: dir.path().join("layer") });
    assert_eq!(r.metadata("BuildProperties"), Some(&json!({"Target": "python3.12-x"})));
}
