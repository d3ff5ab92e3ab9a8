//! Packaging a built template tree (spec §2.5): every local artifact path
//! becomes an S3 location named by its content checksum, nested templates
//! are packaged recursively and referenced by a path-style URL.
//!
//! Packaging only *computes* the locations; nothing is uploaded here. The
//! sync compares the result with the deployed stack first and uploads
//! ([`upload_all`]) only when a deploy is really needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use super::{PackageError, Upload, Uploader, dir_checksum, file_md5, zip_dir};
use crate::printer::Printer;
use crate::report::Event;
use crate::template::kind::PATH_PROPERTIES;
use crate::template::yaml;

/// What an S3 object will hold.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// A folder, zipped deterministically.
    Folder(PathBuf),
    /// A file, as is.
    File(PathBuf),
    /// A packaged nested template.
    Template(Vec<u8>),
}

/// One object the packaged templates refer to.
#[derive(Debug, Clone)]
pub(crate) struct Artifact {
    /// Object key (`[prefix/]<md5>[.template]`).
    pub(crate) key: String,
    /// What goes into it.
    pub(crate) content: Content,
}

/// A packaged template and its packaged nested stacks.
#[derive(Debug, Clone)]
pub(crate) struct Packaged {
    /// The template with S3 locations.
    pub(crate) template: Value,
    /// Nested stacks by logical id.
    pub(crate) children: BTreeMap<String, Packaged>,
}

impl Packaged {
    /// The template as uploaded (YAML).
    pub(crate) fn body(&self) -> String {
        yaml::to_yaml(&self.template)
    }

    /// Every template of the tree by stack prefix (`""`, `Child/` …).
    pub(crate) fn by_prefix(&self) -> std::collections::HashMap<String, &serde_json::Value> {
        let mut out = std::collections::HashMap::new();
        let mut pending = vec![(String::new(), self)];
        while let Some((prefix, packaged)) = pending.pop() {
            out.insert(prefix.clone(), &packaged.template);
            pending.extend(packaged.children.iter().map(|(id, child)| (format!("{prefix}{id}/"), child)));
        }
        out
    }
}

/// Where packaged artifacts live.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The bucket.
    pub(crate) bucket: String,
    /// `--s3-prefix`.
    pub(crate) prefix: Option<String>,
    /// Base of path-style object URLs, e.g. `https://s3.eu-west-1.amazonaws.com`.
    pub(crate) url_base: String,
}

impl Target {
    fn key(&self, checksum: &str, suffix: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}/{checksum}{suffix}"),
            None => format!("{checksum}{suffix}"),
        }
    }

    /// The key of a packaged template: `[prefix/]<md5 of its text>.template`.
    pub(crate) fn template_key(&self, body: &[u8]) -> String {
        self.key(&hex::encode(<md5::Md5 as md5::Digest>::digest(body)), ".template")
    }

    /// The path-style URL of an object, as CloudFormation's `TemplateURL` wants.
    pub(crate) fn url(&self, key: &str) -> String {
        format!("{}/{}/{key}", self.url_base.trim_end_matches('/'), self.bucket)
    }
}

/// Packages the template at `file` (a built template) and its nested
/// templates. Every object the result refers to is appended to `artifacts`.
pub(crate) fn package(file: &Path, target: &Target, artifacts: &mut Vec<Artifact>) -> Result<Packaged, PackageError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PackageError::Io { path, source }
    };
    let text = std::fs::read_to_string(file).map_err(io(file))?;
    let mut template = yaml::parse(&text).map_err(|e| PackageError::Io {
        path: file.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.message),
    })?;
    let dir = file.parent().unwrap_or(Path::new("/"));
    let mut children = BTreeMap::new();
    let Some(resources) = template.get_mut("Resources").and_then(Value::as_object_mut) else {
        return Ok(Packaged { template, children });
    };
    for (logical_id, resource) in resources.iter_mut() {
        let Some(kind) = resource.get("Type").and_then(Value::as_str).map(str::to_string) else { continue };
        let Some((_, properties)) = PATH_PROPERTIES.iter().find(|(t, _)| *t == kind) else { continue };
        let Some(props) = resource.get_mut("Properties").and_then(Value::as_object_mut) else { continue };
        for property in *properties {
            let Some(Value::String(uri)) = props.get(*property) else { continue };
            if !is_local(uri) {
                continue;
            }
            let path = dir.join(uri);
            let key = if is_template_property(property) {
                let child = package(&path, target, artifacts)?;
                let body = child.body().into_bytes();
                let key = target.template_key(&body);
                artifacts.push(Artifact { key: key.clone(), content: Content::Template(body) });
                children.insert(logical_id.clone(), child);
                key
            } else if path.is_dir() {
                let key = target.key(&dir_checksum(&path).map_err(io(&path))?, "");
                artifacts.push(Artifact { key: key.clone(), content: Content::Folder(path) });
                key
            } else {
                let key = target.key(&file_md5(&path).map_err(io(&path))?, "");
                artifacts.push(Artifact { key: key.clone(), content: Content::File(path) });
                key
            };
            let value = location(&kind, property, target, &key);
            props.insert(property.to_string(), value);
        }
    }
    Ok(Packaged { template, children })
}

fn is_template_property(property: &str) -> bool {
    property == "TemplateURL" || property == "Location"
}

fn is_local(uri: &str) -> bool {
    !(uri.starts_with("s3://") || uri.starts_with("http://") || uri.starts_with("https://"))
}

/// The packaged value of a property, in the shape its resource type takes.
fn location(kind: &str, property: &str, target: &Target, key: &str) -> Value {
    let bucket = &target.bucket;
    match (kind, property) {
        (_, "TemplateURL" | "Location") => Value::String(target.url(key)),
        ("AWS::Lambda::Function", "Code") | ("AWS::Lambda::LayerVersion", "Content") => {
            json!({ "S3Bucket": bucket, "S3Key": key })
        }
        ("AWS::ElasticBeanstalk::ApplicationVersion", _) => json!({ "S3Bucket": bucket, "S3Key": key }),
        ("AWS::Serverless::StateMachine", _)
        | ("AWS::StepFunctions::StateMachine", _)
        | ("AWS::ApiGateway::RestApi", _)
        | ("AWS::ApiGatewayV2::Api", _) => json!({ "Bucket": bucket, "Key": key }),
        _ => Value::String(format!("s3://{bucket}/{key}")),
    }
}

/// Above this many objects, one listing of the prefix replaces a HeadObject each.
const LIST_ABOVE: usize = 4;

/// Listings longer than this many pages (1 000 keys each) give way to HeadObject.
const LIST_PAGES: usize = 3;

/// Uploads every artifact not already in the bucket, `jobs` at a time;
/// folders are zipped only when their object is missing. Returns how many
/// objects were written.
pub(crate) async fn upload_all(
    uploader: &Uploader,
    target: &Target,
    artifacts: Vec<Artifact>,
    jobs: usize,
    printer: &Printer,
) -> Result<usize, PackageError> {
    let mut seen = std::collections::HashSet::new();
    let artifacts: Vec<Artifact> = artifacts.into_iter().filter(|a| seen.insert(a.key.clone())).collect();
    let listed = if artifacts.len() > LIST_ABOVE {
        uploader.existing_keys(target.prefix.as_deref(), LIST_PAGES).await.map(Arc::new)
    } else {
        None
    };
    let task = printer.task("Uploading", Some(artifacts.len()));
    let limit = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for artifact in artifacts {
        let (uploader, limit) = (uploader.clone(), limit.clone());
        let exists = listed.as_ref().map(|keys| keys.contains(&artifact.key));
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let started = std::time::Instant::now();
            let key = artifact.key.clone();
            let body = move || match artifact.content {
                Content::Folder(path) => zip_dir(&path),
                Content::File(path) => {
                    std::fs::read(&path).map_err(|source| PackageError::Io { path: path.clone(), source })
                }
                Content::Template(bytes) => Ok(bytes),
            };
            let upload = uploader.upload_with(&key, exists, body).await;
            (key, started.elapsed(), upload)
        });
    }
    let mut uploaded = 0;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((key, elapsed, Ok(Upload::Uploaded(bytes)))) => {
                uploaded += 1;
                task.step(&Event::Upload {
                    resource: key,
                    action: "upload",
                    api: "PutObject",
                    bytes,
                    duration_ms: elapsed.as_millis(),
                    result: "uploaded",
                });
            }
            Ok((key, _, Ok(Upload::Skipped))) => task.tick(key),
            Ok((_, _, Err(e))) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(PackageError::Task(e));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(uploaded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_take_each_type_shape() {
        let target = Target { bucket: "b".into(), prefix: Some("p".into()), url_base: "http://127.0.0.1:1".into() };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("Fn")).unwrap();
        std::fs::write(root.join("Fn/app.py"), "x").unwrap();
        std::fs::write(root.join("api.yaml"), "openapi: 3.0.1").unwrap();
        std::fs::create_dir_all(root.join("Child")).unwrap();
        std::fs::write(
            root.join("Child/template.yaml"),
            "Resources:\n  Sm:\n    Type: AWS::StepFunctions::StateMachine\n    Properties:\n      DefinitionS3Location: ../api.yaml\n",
        )
        .unwrap();
        std::fs::write(
            root.join("template.yaml"),
            "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: Fn\n  Raw:\n    Type: AWS::Lambda::Function\n    Properties:\n      Code: Fn\n  Api:\n    Type: AWS::Serverless::Api\n    Properties:\n      DefinitionUri: api.yaml\n  Remote:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: s3://other/key\n  Child:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: Child/template.yaml\n",
        )
        .unwrap();
        let mut artifacts = Vec::new();
        let packaged = package(&root.join("template.yaml"), &target, &mut artifacts).unwrap();
        let code_key = format!("p/{}", dir_checksum(&root.join("Fn")).unwrap());
        let t = &packaged.template["Resources"];
        assert_eq!(t["Fn"]["Properties"]["CodeUri"], Value::String(format!("s3://b/{code_key}")));
        assert_eq!(t["Raw"]["Properties"]["Code"], json!({"S3Bucket": "b", "S3Key": code_key}));
        let api_key = format!("p/{}", file_md5(&root.join("api.yaml")).unwrap());
        assert_eq!(t["Api"]["Properties"]["DefinitionUri"], Value::String(format!("s3://b/{api_key}")));
        assert_eq!(t["Remote"]["Properties"]["CodeUri"], "s3://other/key");
        let child = &packaged.children["Child"].template["Resources"]["Sm"]["Properties"];
        assert_eq!(child["DefinitionS3Location"], json!({"Bucket": "b", "Key": api_key}));
        let url = t["Child"]["Properties"]["TemplateURL"].as_str().unwrap();
        assert!(url.starts_with("http://127.0.0.1:1/b/p/") && url.ends_with(".template"), "{url}");
        // Fn's folder is used twice but is one object.
        let keys: std::collections::HashSet<_> = artifacts.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
    }
}
