//! `samconfig.toml` / `.yaml` / `.yml` (spec §5): finding the file, reading
//! the `[<env>.<command>.parameters]` and `[<env>.global.parameters]` sections,
//! and turning their keys into command-line tokens so that clap applies one
//! set of rules to both.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The default config file name; when it is not overridden the `.yaml` and
/// `.yml` variants are looked up too.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "samconfig.toml";

/// What can go wrong reading a samconfig file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SamConfigError {
    /// A non-default `--config-file` that is not there.
    #[error("Config file {0} does not exist or could not be read!")]
    Missing(PathBuf),
    /// The file does not parse.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// The file has content but no numeric `version`.
    #[error("{0}: 'version' key is not present or is in unrecognized format.")]
    Version(PathBuf),
    /// `--save-params` could not write the file.
    #[error("cannot save parameters to {path}: {message}")]
    Save { path: PathBuf, message: String },
    /// Neither .toml, .yaml nor .yml.
    #[error("{0}: unsupported samconfig format (use .toml, .yaml or .yml)")]
    Extension(PathBuf),
}

/// The parameters of one command in one environment, global ones merged under
/// the command's own.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct SamConfig {
    /// The file the values came from, if any.
    pub(crate) path: Option<PathBuf>,
    /// Key (sam's option name, e.g. `stack_name`) to value.
    pub(crate) parameters: Map<String, Value>,
}

/// Finds the config file for a project folder. Returns `Ok(None)` when the
/// default file does not exist; a note when several candidates exist.
pub(crate) fn locate(dir: &Path, config_file: &str) -> Result<(Option<PathBuf>, Option<String>), SamConfigError> {
    if config_file != DEFAULT_CONFIG_FILE {
        let path = dir.join(config_file);
        return if path.is_file() { Ok((Some(path), None)) } else { Err(SamConfigError::Missing(path)) };
    }
    let found: Vec<PathBuf> = ["samconfig.toml", "samconfig.yaml", "samconfig.yml"]
        .iter()
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect();
    let note = (found.len() > 1).then(|| format!("More than one samconfig file found; using {}.", found[0].display()));
    Ok((found.into_iter().next(), note))
}

/// Reads the parameters of `command` in `env` from `path`.
pub(crate) fn load(path: &Path, env: &str, command: &str) -> Result<SamConfig, SamConfigError> {
    let text = std::fs::read_to_string(path).map_err(|_| SamConfigError::Missing(path.to_path_buf()))?;
    let doc = parse_document(path, &text)?;
    let Value::Object(doc) = doc else {
        return Ok(SamConfig { path: Some(path.to_path_buf()), ..Default::default() });
    };
    if !doc.is_empty() && !doc.get("version").is_some_and(Value::is_number) {
        return Err(SamConfigError::Version(path.to_path_buf()));
    }
    let section = |name: &str| -> Map<String, Value> {
        doc.get(env)
            .and_then(|e| e.get(name))
            .and_then(|c| c.get("parameters"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let mut parameters = section("global");
    parameters.extend(section(&command.replace([' ', '-'], "_")));
    Ok(SamConfig { path: Some(path.to_path_buf()), parameters })
}

/// Writes `params` into `[<env>.<command>.parameters]` of `path` (creating
/// it), the region into `[<env>.global.parameters]`, and `version = 0.1` when
/// missing. TOML keeps its comments and layout; the write is atomic.
pub(crate) fn save(path: &Path, env: &str, command: &str, params: &Map<String, Value>) -> Result<(), SamConfigError> {
    let fail = |message: String| SamConfigError::Save { path: path.to_path_buf(), message };
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let command = command.replace([' ', '-'], "_");
    let section = |key: &str| {
        if key == "region" { "global" } else { command.as_str() }
    };
    let text = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            let mut doc: toml_edit::DocumentMut =
                existing.parse().map_err(|e: toml_edit::TomlError| fail(e.message().to_string()))?;
            if !doc.contains_key("version") {
                doc.insert("version", toml_edit::value(0.1));
            }
            for (key, value) in params {
                let table = implicit_table(doc.as_table_mut(), env)
                    .and_then(|t| implicit_table(t, section(key)))
                    .and_then(|t| implicit_table(t, "parameters"))
                    .ok_or_else(|| fail(format!("[{env}.{}] is not a table", section(key))))?;
                table.insert(key, toml_edit::value(toml_value(value)));
            }
            doc.to_string()
        }
        Some("yaml" | "yml") => {
            let mut doc: Value = if existing.trim().is_empty() {
                Value::Object(Map::new())
            } else {
                serde_yaml::from_str(&existing).map_err(|e| fail(e.to_string()))?
            };
            let root = doc.as_object_mut().ok_or_else(|| fail("not a mapping".into()))?;
            root.entry("version").or_insert(serde_json::json!(0.1));
            for (key, value) in params {
                let table = [env, section(key), "parameters"].into_iter().try_fold(&mut *root, |map, name| {
                    map.entry(name).or_insert_with(|| Value::Object(Map::new())).as_object_mut()
                });
                let table = table.ok_or_else(|| fail(format!("{env}.{}.parameters is not a mapping", section(key))))?;
                table.insert(key.clone(), value.clone());
            }
            serde_yaml::to_string(&doc).map_err(|e| fail(e.to_string()))?
        }
        _ => return Err(SamConfigError::Extension(path.to_path_buf())),
    };
    crate::files::write_atomic(path, text.as_bytes()).map_err(|e| fail(e.to_string()))
}

fn implicit_table<'t>(parent: &'t mut toml_edit::Table, key: &str) -> Option<&'t mut toml_edit::Table> {
    let item = parent.entry(key).or_insert_with(|| {
        let mut table = toml_edit::Table::new();
        table.set_implicit(true);
        toml_edit::Item::Table(table)
    });
    item.as_table_mut()
}

fn toml_value(value: &Value) -> toml_edit::Value {
    match value {
        Value::Bool(b) => (*b).into(),
        Value::Array(items) => items.iter().map(toml_value).collect::<toml_edit::Array>().into(),
        Value::Number(n) => n.as_i64().map_or_else(|| n.to_string().into(), toml_edit::Value::from),
        Value::String(s) => s.as_str().into(),
        other => other.to_string().into(),
    }
}

fn parse_document(path: &Path, text: &str) -> Result<Value, SamConfigError> {
    let parse_err = |message: String| SamConfigError::Parse { path: path.to_path_buf(), message };
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str::<Value>(text).map_err(|e| {
            // toml's Display spans several lines with a snippet; keep one.
            let line = e.span().map(|s| text[..s.start].lines().count().max(1));
            parse_err(format!("line {}: {}", line.unwrap_or(1), e.message().trim()))
        }),
        Some("yaml" | "yml") => {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            serde_yaml::from_str::<Value>(text).map_err(|e| parse_err(e.to_string().replace('\n', " ")))
        }
        _ => Err(SamConfigError::Extension(path.to_path_buf())),
    }
}

/// How an option takes values, as far as config injection cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OptionKind {
    /// A boolean switch; `negation` is its `--no-` twin, if any.
    Switch,
    /// One value.
    Single,
    /// Several values (repeatable or space-separated list).
    Many,
}

/// Renders a config value as command-line tokens for the option `long`.
/// `negation` is the long name of the option's `--no-` twin.
/// `None` when a switch's value is not a boolean (sam refuses it).
pub(crate) fn tokens_for(long: &str, kind: OptionKind, negation: Option<&str>, value: &Value) -> Option<Vec<OsString>> {
    let flag = |name: &str| OsString::from(format!("--{name}"));
    let with_value = |v: &str| OsString::from(format!("--{long}={v}"));
    Some(match kind {
        OptionKind::Switch => match truthy(value)? {
            true => vec![flag(long)],
            false => negation.map(|n| vec![flag(n)]).unwrap_or_default(),
        },
        OptionKind::Single => scalar(value).map(|v| vec![with_value(&v)]).unwrap_or_default(),
        OptionKind::Many => list_items(long, value).iter().map(|v| with_value(v)).collect(),
    })
}

fn truthy(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "on" => Some(true),
            "false" | "0" | "no" | "n" | "off" => Some(false),
            _ => None,
        },
        Value::Number(n) => Some(n.as_f64() != Some(0.0)),
        _ => None,
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => Some(items.iter().filter_map(scalar).collect::<Vec<_>>().join(",")),
        _ => None,
    }
}

/// The items of a multi-valued option. Tables become `key=value` items (the
/// form of `parameter_overrides` and `tags`); a string is split on white space
/// except for `parameter_overrides`, whose own parser understands quoting.
fn list_items(long: &str, value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().filter_map(scalar).collect(),
        Value::Object(map) => {
            map.iter().filter_map(|(k, v)| scalar(v).map(|v| format!("{k}={}", shell_quote(&v)))).collect()
        }
        Value::String(s) if long != "parameter-overrides" => s.split_whitespace().map(str::to_string).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

/// Quotes a value for the `Key=Value` parsers when it holds white space.
fn shell_quote(value: &str) -> String {
    if value.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'') {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn command_section_wins_over_global() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "samconfig.toml",
            "version = 0.1\n[default.global.parameters]\nstack_name = \"g\"\nregion = \"eu-west-1\"\n[default.sync.parameters]\nstack_name = \"s\"\n[prod.sync.parameters]\nstack_name = \"p\"\n",
        );
        let c = load(&p, "default", "sync").unwrap();
        assert_eq!(c.parameters["stack_name"], json!("s"));
        assert_eq!(c.parameters["region"], json!("eu-west-1"));
        let c = load(&p, "prod", "sync").unwrap();
        assert_eq!(c.parameters["stack_name"], json!("p"));
        assert!(!c.parameters.contains_key("region"), "no fallback to the default env");
    }

    #[test]
    fn yaml_and_precedence_of_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "samconfig.yaml", "version: 0.1\ndefault:\n  build:\n    parameters:\n      cached: true\n");
        let found = locate(dir.path(), DEFAULT_CONFIG_FILE).unwrap().0.unwrap();
        assert!(found.ends_with("samconfig.yaml"));
        assert_eq!(load(&found, "default", "build").unwrap().parameters["cached"], json!(true));
        write(dir.path(), "samconfig.toml", "version = 0.1\n");
        assert!(locate(dir.path(), DEFAULT_CONFIG_FILE).unwrap().0.unwrap().ends_with("samconfig.toml"));
    }

    #[test]
    fn missing_version_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "samconfig.toml", "[default.build.parameters]\ncached = true\n");
        assert!(matches!(load(&p, "default", "build"), Err(SamConfigError::Version(_))));
        assert!(matches!(locate(dir.path(), "other.toml"), Err(SamConfigError::Missing(_))));
        assert!(locate(tempfile::tempdir().unwrap().path(), DEFAULT_CONFIG_FILE).unwrap().0.is_none());
    }

    #[test]
    fn values_become_tokens() {
        let t = |long, kind, neg, v: Value| {
            tokens_for(long, kind, neg, &v).unwrap().into_iter().map(|s| s.into_string().unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(t("cached", OptionKind::Switch, Some("no-cached"), json!(true)), ["--cached"]);
        assert_eq!(
            t("dependency-layer", OptionKind::Switch, Some("no-dependency-layer"), json!(false)),
            ["--no-dependency-layer"]
        );
        assert_eq!(t("stack-name", OptionKind::Single, None, json!("blog")), ["--stack-name=blog"]);
        assert_eq!(
            t("capabilities", OptionKind::Many, None, json!("CAPABILITY_IAM CAPABILITY_AUTO_EXPAND")),
            ["--capabilities=CAPABILITY_IAM", "--capabilities=CAPABILITY_AUTO_EXPAND"]
        );
        assert_eq!(
            t("parameter-overrides", OptionKind::Many, None, json!({"Stage": "dev", "Msg": "a b", "L": ["x", "y"]})),
            ["--parameter-overrides=Stage=dev", "--parameter-overrides=Msg=\"a b\"", "--parameter-overrides=L=x,y"]
        );
        assert_eq!(
            t("parameter-overrides", OptionKind::Many, None, json!("A=1 B=\"x y\"")),
            ["--parameter-overrides=A=1 B=\"x y\""]
        );
    }
}
