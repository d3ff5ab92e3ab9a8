//! `--parameter-overrides` in the three forms sam accepts (spec §1.1):
//! `Key=Value Key2="a b"`, `ParameterKey=K,ParameterValue=V ...`, and
//! `file://params.(toml|yaml|yml)` with nested `$include`.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

/// Parameter name to value, in the order given.
pub(crate) type Overrides = IndexMap<String, String>;

/// A value that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OverridesError {
    /// Not `Key=Value` nor `ParameterKey=…,ParameterValue=…`.
    #[error("Invalid value for '--parameter-overrides': {0} is not a valid format")]
    Format(String),
    /// A `file://` that cannot be read or parsed.
    #[error("Invalid value for '--parameter-overrides': {path}: {message}")]
    File { path: PathBuf, message: String },
}

/// Parses every `--parameter-overrides` value; later keys win. Relative
/// `file://` paths are taken from `cwd`.
pub(crate) fn parse(values: &[String], cwd: &Path) -> Result<Overrides, OverridesError> {
    let mut out = Overrides::new();
    for value in values {
        if let Some(path) = value.strip_prefix("file://") {
            load_file(&cwd.join(path), &mut out, 0)?;
            continue;
        }
        let tokens = shell_words::split(value).map_err(|_| OverridesError::Format(value.clone()))?;
        for token in tokens {
            let (key, val) = parse_token(&token)?;
            out.insert(key, val);
        }
    }
    Ok(out)
}

fn parse_token(token: &str) -> Result<(String, String), OverridesError> {
    if let Some(rest) = token.strip_prefix("ParameterKey=") {
        let (key, value) = rest.split_once(",ParameterValue=").ok_or_else(|| OverridesError::Format(token.into()))?;
        return Ok((key.to_string(), value.to_string()));
    }
    match token.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(OverridesError::Format(token.into())),
    }
}

fn load_file(path: &Path, out: &mut Overrides, depth: usize) -> Result<(), OverridesError> {
    let fail = |message: String| OverridesError::File { path: path.to_path_buf(), message };
    if depth > 10 {
        return Err(fail("$include nests too deep (a cycle?)".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let doc: Value = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&text).map_err(|e| fail(e.to_string()))?,
        Some("yaml" | "yml") => serde_yaml::from_str(&text).map_err(|e| fail(e.to_string()))?,
        _ => return Err(fail("use a .toml, .yaml or .yml file".into())),
    };
    let entries: Vec<(String, Value)> = match doc {
        Value::Object(map) => map.into_iter().collect(),
        Value::Array(items) => {
            for item in items {
                let (k, v) = parse_token(item.as_str().ok_or_else(|| fail("list items must be Key=Value".into()))?)?;
                out.insert(k, v);
            }
            return Ok(());
        }
        Value::Null => Vec::new(),
        _ => return Err(fail("expected a table of parameters".into())),
    };
    for (key, value) in entries {
        if key == "$include" {
            let dir = path.parent().unwrap_or(Path::new("."));
            let includes = match value {
                Value::Array(items) => items,
                other => vec![other],
            };
            for include in includes {
                let name = include.as_str().ok_or_else(|| fail("$include takes a file name".into()))?;
                load_file(&dir.join(name.trim_start_matches("file://")), out, depth + 1)?;
            }
            continue;
        }
        out.insert(key, stringify(&value));
    }
    Ok(())
}

/// samconfig-style values: lists join with commas, scalars as text.
fn stringify(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(stringify).collect::<Vec<_>>().join(","),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(o: &Overrides) -> Vec<(&str, &str)> {
        o.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn key_value_form_with_quotes() {
        let o = parse(&["Env=prod Msg=\"hello world\" Empty=".into(), "Url=a=b".into()], Path::new(".")).unwrap();
        assert_eq!(kv(&o), [("Env", "prod"), ("Msg", "hello world"), ("Empty", ""), ("Url", "a=b")]);
    }

    #[test]
    fn parameter_key_form() {
        let o = parse(
            &["ParameterKey=KeyPair,ParameterValue=MyKey ParameterKey=Type,ParameterValue=t1.micro".into()],
            Path::new("."),
        )
        .unwrap();
        assert_eq!(kv(&o), [("KeyPair", "MyKey"), ("Type", "t1.micro")]);
    }

    #[test]
    fn file_form_with_include() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.yaml"), "Env: dev\nSubnets: [a, b]\n").unwrap();
        std::fs::write(dir.path().join("params.toml"), "\"$include\" = \"base.yaml\"\nEnv = \"prod\"\nSize = 3\n")
            .unwrap();
        let o = parse(&["file://params.toml".into()], dir.path()).unwrap();
        assert_eq!(kv(&o), [("Env", "prod"), ("Subnets", "a,b"), ("Size", "3")]);
        assert!(matches!(parse(&["file://nope.toml".into()], dir.path()), Err(OverridesError::File { .. })));
    }

    #[test]
    fn bad_tokens_are_errors() {
        assert_eq!(
            parse(&["JustAWord".into()], Path::new(".")).unwrap_err().to_string(),
            "Invalid value for '--parameter-overrides': JustAWord is not a valid format"
        );
        assert!(parse(&["ParameterKey=A".into()], Path::new(".")).is_err());
    }
}
