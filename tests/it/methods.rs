//! The build methods beyond Python, Node.js, Go and make (issue 13 items 18
//! and 19): Rust with cargo-lambda, Ruby with Bundler, Java with Maven —
//! the built tree and template, the cache, and the one-line error naming
//! the tool when it is missing. Byte parity with sam for the same apps is
//! checked by `scripts/parity` (they are listed in `scripts/parity-apps`).

use std::path::Path;

use crate::support::{RunOutput, TestContext, files_of, step, symlink};

/// What the unit labelled `label` did with its code (`built`, `reused`).
fn code_step(out: &RunOutput, label: &str) -> String {
    step(out, label, "code")
}

/// The built template's `CodeUri` of a function.
fn code_uri(ctx: &TestContext, function: &str) -> String {
    let template: serde_yaml::Value =
        serde_yaml::from_str(&ctx.read(".aws-sam/build/template.yaml")).expect("built template");
    template["Resources"][function]["Properties"]["CodeUri"].as_str().expect("a CodeUri").to_string()
}

/// A `PATH` for `ctx` whose one folder holds only `tool` (linked from this
/// process's PATH): every other tool a build needs is then missing, even
/// one installed beside it (`cargo install cargo-lambda`).
fn path_with_only(ctx: &TestContext, tool: &str) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let file = format!("{tool}{}", std::env::consts::EXE_SUFFIX);
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(&file))
        .find(|file| file.is_file())
        .unwrap_or_else(|| panic!("{tool} is not on PATH"));
    let bin = ctx.root().join("only-bin");
    std::fs::create_dir_all(&bin).unwrap();
    symlink(found, bin.join(&file));
    bin.display().to_string()
}

/// A cargo-lambda build of the fixture, with cargo's target folder in the
/// source folder (as sam) whatever the test runner's `CARGO_TARGET_DIR`.
fn cargo_lambda_build(ctx: &TestContext) -> RunOutput {
    ctx.accel(&["build", "--cached"]).env("CARGO_TARGET_DIR", "").assert_success()
}

#[test]
fn cargo_lambda_builds_each_binary_as_bootstrap_and_keys_on_path_dependencies() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/rust-cargolambda");
    let out = cargo_lambda_build(&ctx);
    for function in ["HelloFunction", "GoodbyeFunction"] {
        assert_eq!(code_step(&out, function), "built");
        assert_eq!(code_uri(&ctx, function), function);
        let artifact = ctx.join(&format!(".aws-sam/build/{function}"));
        assert_eq!(files_of(&artifact).keys().collect::<Vec<_>>(), ["bootstrap"], "only the binary");
        let bootstrap = artifact.join("bootstrap");
        let elf = std::fs::read(&bootstrap).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF", "a Linux executable");
        assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 62, "for x86_64 (EM_X86_64)");
        #[cfg(unix)] // Windows has no exec bits (the zip gives the bootstrap 0755)
        assert_ne!(
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&bootstrap).unwrap().permissions()) & 0o111,
            0,
            "executable"
        );
    }
    let binary = |f: &str| std::fs::read(ctx.join(&format!(".aws-sam/build/{f}/bootstrap"))).unwrap();
    assert_ne!(binary("HelloFunction"), binary("GoodbyeFunction"), "Binary chose each function's own");
    let contains = |bytes: &[u8], text: &str| bytes.windows(text.len()).any(|w| w == text.as_bytes());
    assert!(contains(&binary("HelloFunction"), ", from greeting\""), "built with the shared crate");

    // Nothing changed: reused. A change in the path dependency outside
    // the CodeUri rebuilds both (cargo's dep-info keyed it).
    let out = cargo_lambda_build(&ctx);
    assert_eq!(code_step(&out, "HelloFunction"), "reused");
    ctx.replace("greeting/src/lib.rs", ", from greeting", ", from greeting v2");
    let out = cargo_lambda_build(&ctx);
    assert_eq!(code_step(&out, "HelloFunction"), "built", "a path dependency is a build input");
    assert!(contains(&binary("HelloFunction"), ", from greeting v2\""));

    // Without the project's compiler choice, accel picks the host's own
    // toolchain on a matching host (no zig needed): the same bytes.
    let rebuilt = binary("HelloFunction");
    ctx.replace("hello/Cargo.toml", "[package.metadata.lambda.build]\ncompiler = { type = \"cargo\" }\n", "");
    let out = cargo_lambda_build(&ctx);
    assert_eq!(code_step(&out, "HelloFunction"), "built");
    assert_eq!(binary("HelloFunction"), rebuilt, "--compiler cargo");
}

#[test]
fn cargo_lambda_links_provided_al2_functions_against_its_glibc_with_zig() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/rust-cargolambda");
    ctx.replace("template.yaml", "Runtime: provided.al2023", "Runtime: provided.al2");
    // Without the project's compiler choice: cargo-lambda's default (zig,
    // from PyPI's ziglang), which the glibc-versioned target needs.
    ctx.replace("hello/Cargo.toml", "[package.metadata.lambda.build]\ncompiler = { type = \"cargo\" }\n", "");
    ctx.accel(&["build", "HelloFunction"]).env("CARGO_TARGET_DIR", "").assert_success();
    let binary = std::fs::read(ctx.join(".aws-sam/build/HelloFunction/bootstrap")).unwrap();
    assert_eq!(&binary[..4], b"\x7fELF");
    // The newest glibc symbol version it needs is at most Amazon Linux 2's 2.26.
    let text = String::from_utf8_lossy(&binary);
    let newest = text
        .split("GLIBC_2.")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u32>().ok())
        .max()
        .expect("versioned glibc symbols");
    assert!(newest <= 26, "needs GLIBC_2.{newest}");
}

#[test]
fn cargo_lambda_refuses_several_binaries_without_a_name_and_a_bad_binary_property() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/rust-cargolambda");
    ctx.replace("template.yaml", "      BuildProperties:\n        Binary: hello\n", "");
    ctx.replace("template.yaml", "Binary: goodbye", "Binary: [goodbye]");
    let out = ctx.accel(&["build", "GoodbyeFunction"]).env("CARGO_TARGET_DIR", "").assert_code(1);
    assert_eq!(
        out.stderr.lines().filter(|l| l.starts_with("Error:")).collect::<Vec<_>>(),
        ["Error: GoodbyeFunction: Metadata.BuildProperties.Binary must be a string (a binary's name)"]
    );
    let out = ctx.accel(&["build", "HelloFunction"]).env("CARGO_TARGET_DIR", "").assert_code(1);
    assert!(
        out.stderr.contains("Error: HelloFunction: ")
            && out.stderr.contains("cargo-lambda built more than one binary (or none); name the function's in Metadata.BuildProperties.Binary"),
        "{out}"
    );
}

#[test]
fn cargo_lambda_missing_is_named_with_how_to_install_it() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/rust-cargolambda");
    let out = ctx.accel(&["build", "HelloFunction"]).env("PATH", &path_with_only(&ctx, "cargo")).assert_code(1);
    assert_eq!(
        out.stderr.trim(),
        "Error: HelloFunction: cargo-lambda is not installed or not on PATH; install it with `pip install cargo-lambda` (or `cargo install --locked cargo-lambda`)"
    );
    assert!(!Path::new(&ctx.join(".aws-sam/build/HelloFunction")).exists());
}

#[test]
fn bundler_lays_out_gems_as_sam_and_caches_them_apart_from_the_code() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/ruby-bundler");
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(
        (step(&out, "HelloFunction", "deps"), code_step(&out, "HelloFunction")),
        ("built".into(), "built".into())
    );
    let hello = files_of(&ctx.join(".aws-sam/build/HelloFunction"));
    assert_eq!(
        hello.keys().collect::<Vec<_>>(),
        [
            ".bundle/config",
            "Gemfile",
            "Gemfile.lock",
            "app.rb",
            "gems/greeter/greeter.gemspec",
            "gems/greeter/lib/greeter.rb"
        ]
    );
    let text = |bytes: &Vec<u8>| String::from_utf8(bytes.clone()).unwrap();
    assert_eq!(
        text(&hello[".bundle/config"]),
        "---\nBUNDLE_WITHOUT: \"development:test\"\nBUNDLE_DEPLOYMENT: \"true\"\n"
    );
    let lock = text(&hello["Gemfile.lock"]);
    assert!(lock.starts_with("PATH\n  remote: gems/greeter\n  specs:\n    greeter (0.1.0)\n"), "{lock}");
    assert!(ctx.join(".aws-sam/build/HelloFunction/vendor/bundle/ruby").is_dir(), "Bundler's deployment folder");
    // No Gemfile: the source as it is. A layer: under ruby/lib.
    assert_eq!(files_of(&ctx.join(".aws-sam/build/PlainFunction")).keys().collect::<Vec<_>>(), ["app.rb"]);
    let layer = files_of(&ctx.join(".aws-sam/build/ShoutLayer"));
    assert!(layer.contains_key("ruby/lib/Gemfile.lock") && layer.contains_key("ruby/lib/gems/shout/lib/shout.rb"));
    assert_eq!(code_uri(&ctx, "HelloFunction"), "HelloFunction");

    // A code edit reinstalls nothing; a change in a path gem does.
    ctx.write("hello/app.rb", &format!("{}# edited\n", ctx.read("hello/app.rb")));
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(
        (step(&out, "HelloFunction", "deps"), code_step(&out, "HelloFunction")),
        ("reused".into(), "built".into())
    );
    assert!(ctx.read(".aws-sam/build/HelloFunction/app.rb").ends_with("# edited\n"));
    assert_eq!(ctx.read(".aws-sam/build/HelloFunction/Gemfile.lock"), lock, "the install's lock file");
    ctx.replace("hello/gems/greeter/greeter.gemspec", "0.1.0", "0.2.0");
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(step(&out, "HelloFunction", "deps"), "built", "a path gem is an install input");
    assert!(ctx.read(".aws-sam/build/HelloFunction/Gemfile.lock").contains("    greeter (0.2.0)\n"));

    // A gem by absolute path outside the function's folder is a build input.
    let loud = ctx.root().join("loud");
    std::fs::create_dir_all(loud.join("lib")).unwrap();
    std::fs::write(
        loud.join("loud.gemspec"),
        "Gem::Specification.new do |s|\n  s.name = \"loud\"\n  s.version = \"1.0.0\"\n  s.summary = \"x\"\n  s.authors = [\"accel\"]\n  s.files = [\"lib/loud.rb\"]\nend\n",
    )
    .unwrap();
    std::fs::write(loud.join("lib/loud.rb"), "module Loud; end\n").unwrap();
    let gemfile = ctx.read("hello/Gemfile");
    ctx.write("hello/Gemfile", &format!("{gemfile}gem \"loud\", path: \"{}\"\n", loud.display()));
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(step(&out, "HelloFunction", "deps"), "built");
    assert!(ctx.read(".aws-sam/build/HelloFunction/Gemfile.lock").contains("    loud (1.0.0)\n"));
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(
        (step(&out, "HelloFunction", "deps"), code_step(&out, "HelloFunction")),
        ("reused".into(), "reused".into())
    );
    assert_eq!(code_step(&out, "PlainFunction"), "reused");
    std::fs::write(
        loud.join("loud.gemspec"),
        std::fs::read_to_string(loud.join("loud.gemspec")).unwrap().replace("1.0.0", "1.1.0"),
    )
    .unwrap();
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(step(&out, "HelloFunction", "deps"), "built", "the outside gem changed");
    assert!(ctx.read(".aws-sam/build/HelloFunction/Gemfile.lock").contains("    loud (1.1.0)\n"));
}

#[test]
fn bundler_computed_gem_paths_key_the_folder_and_paths_out_of_it_are_refused() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/ruby-bundler");
    // An interpolated path: Bundler evaluates it, so the whole folder is keyed.
    ctx.replace("hello/Gemfile", r#"path: "gems/greeter""#, r##"path: "#{__dir__}/gems/greeter""##);
    ctx.accel(&["build", "HelloFunction", "--cached"]).assert_success();
    ctx.replace("hello/gems/greeter/greeter.gemspec", "0.1.0", "0.2.0");
    let out = ctx.accel(&["build", "HelloFunction", "--cached"]).assert_success();
    assert_eq!(step(&out, "HelloFunction", "deps"), "built", "{out}");
    assert!(ctx.read(".aws-sam/build/HelloFunction/Gemfile.lock").contains("    greeter (0.2.0)\n"));
    // A relative path out of the folder: Bundler would look elsewhere (sam's
    // fails: "The path `.aws-sam/build/greeter` does not exist").
    std::fs::rename(ctx.join("hello/gems/greeter"), ctx.join("greeter")).unwrap();
    ctx.write("hello/Gemfile", "source \"https://rubygems.org\"\n\ngem \"greeter\", path: \"../greeter\"\n");
    let out = ctx.accel(&["build", "HelloFunction"]).assert_code(1);
    let gemfile = ctx.join("hello/Gemfile").display().to_string();
    assert!(
        out.stderr.contains(&format!(
            "{gemfile}: gem path \"../greeter\" leads outside the Gemfile's folder, where Bundler cannot see it \
             (sam's fails as well); use an absolute path, or move the gem into the folder"
        )),
        "{out}"
    );
}

#[test]
fn bundler_missing_is_named_with_how_to_install_it() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/ruby-bundler");
    let out = ctx.accel(&["build", "ShoutLayer"]).env("PATH", "/nonexistent").assert_code(1);
    assert_eq!(
        out.stderr.trim(),
        "Error: ShoutLayer: bundle is not installed or not on PATH; install Ruby and Bundler (Debian/Ubuntu: `apt-get install -y ruby bundler`)"
    );
}

#[test]
fn maven_builds_classes_with_lib_and_layer_jars() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/java-maven");
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(code_step(&out, "HelloFunction"), "built");
    let hello = files_of(&ctx.join(".aws-sam/build/HelloFunction"));
    let commons = "lib/commons-cli.commons-cli-1.5.0.jar";
    assert_eq!(hello.keys().collect::<Vec<_>>(), ["example/App.class", "greeting.txt", commons]);
    let class = &hello["example/App.class"];
    assert_eq!(&class[..4], b"\xca\xfe\xba\xbe", "a class file");
    assert_eq!(u16::from_be_bytes([class[6], class[7]]), 61, "for Java 17");
    let debian = std::fs::read("/usr/share/maven-repo/commons-cli/commons-cli/1.5.0/commons-cli-1.5.0.jar").unwrap();
    assert!(hello[commons] == debian, "the dependency's jar as resolved");
    assert_eq!(code_uri(&ctx, "HelloFunction"), "HelloFunction");
    // A layer ships jars: its own and its dependencies'.
    let layer = files_of(&ctx.join(".aws-sam/build/SharedLayer"));
    assert_eq!(
        layer.keys().collect::<Vec<_>>(),
        ["java/lib/commons-cli.commons-cli-1.5.0.jar", "java/lib/shared-1.0.jar"]
    );
    let jar = crate::support::unzip(&layer["java/lib/shared-1.0.jar"]);
    assert!(jar.contains_key("example/shared/Names.class"), "{:?}", jar.keys());

    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(code_step(&out, "HelloFunction"), "reused");
    ctx.write("hello/src/main/resources/greeting.txt", "Howdy\n");
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!((code_step(&out, "HelloFunction"), code_step(&out, "SharedLayer")), ("built".into(), "reused".into()));
    assert_eq!(ctx.read(".aws-sam/build/HelloFunction/greeting.txt"), "Howdy\n");
}

#[test]
fn maven_refuses_gradle_and_a_missing_manifest_and_names_a_missing_mvn() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/java-maven");
    // The function alone (a single-function build also builds its layers).
    ctx.replace("template.yaml", "      Layers:\n        - !Ref SharedLayer\n", "");
    let error = |args: &[&str], path: Option<&str>| {
        let mut command = ctx.accel(args);
        if let Some(path) = path {
            command = command.env("PATH", path);
        }
        let out = command.assert_code(1);
        out.stderr.lines().filter(|l| l.starts_with("Error:")).map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(
        error(&["build", "HelloFunction"], Some("/nonexistent")),
        [
            "Error: HelloFunction: mvn is not installed or not on PATH; install Maven (Debian/Ubuntu: `apt-get install -y maven`)"
        ]
    );
    std::fs::remove_file(ctx.join("hello/pom.xml")).unwrap();
    let message = error(&["build", "HelloFunction"], None);
    assert!(
        message.len() == 1
            && message[0].starts_with("Error: HelloFunction: Unable to find a supported build workflow for runtime 'java17'. Reason: None of the supported manifests 'build.gradle', 'build.gradle.kts', 'pom.xml' were found in /")
            && message[0].ends_with("/project/hello/"),
        "{message:?}"
    );
    ctx.write("hello/build.gradle", "plugins { id 'java' }\n");
    assert_eq!(
        error(&["build", "HelloFunction"], None),
        [
            "Error: HelloFunction: 'java17' builds (Gradle) are not supported by accel yet; build this resource with `sam build`"
        ]
    );
}
