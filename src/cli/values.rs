//! Flag values with a format of their own: `--tags` and `--metadata`.

use std::collections::HashMap;

/// A `--tags` or `--metadata` value that does not parse.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ValueError {
    /// Unbalanced quotes.
    #[error("Invalid --tags value: {0}")]
    Tags(String),
    /// A tag without `=`.
    #[error("Invalid --tags value: {0} (expected key=value)")]
    TagPair(String),
    /// Metadata JSON that does not parse.
    #[error("Invalid --metadata JSON: {0}")]
    MetadataJson(serde_json::Error),
    /// A metadata pair without `=`.
    #[error("Invalid --metadata value: {0} (expected key=value)")]
    MetadataPair(String),
}

/// `--tags k=v k2="v 2"` (also several pairs in one value, as samconfig
/// writes them) as ordered pairs.
pub(crate) fn tags(values: &[String]) -> Result<Vec<(String, String)>, ValueError> {
    let mut out = Vec::new();
    for value in values {
        let words = shell_words::split(value).map_err(|_| ValueError::Tags(value.clone()))?;
        for word in words {
            let (key, val) = word.split_once('=').ok_or_else(|| ValueError::TagPair(word.clone()))?;
            out.push((key.to_string(), val.to_string()));
        }
    }
    Ok(out)
}

/// `--metadata k=v,k2=v2` or a JSON object of strings.
pub(crate) fn metadata(value: Option<&str>) -> Result<HashMap<String, String>, ValueError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(HashMap::new()) };
    if value.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(value).map_err(ValueError::MetadataJson)?;
        return Ok(map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect());
    }
    value
        .split(',')
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| ValueError::MetadataPair(pair.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_in_every_form() {
        let got = tags(&["a=1 b=\"two words\"".into(), "c=3".into()]).unwrap();
        assert_eq!(got, [("a".into(), "1".into()), ("b".into(), "two words".into()), ("c".into(), "3".into())]);
        assert!(tags(&["novalue".into()]).is_err());
    }

    #[test]
    fn metadata_pairs_or_json() {
        assert_eq!(metadata(Some("a=1,b=2")).unwrap()["b"], "2");
        assert_eq!(metadata(Some(r#"{"a": "1", "n": 2}"#)).unwrap()["n"], "2");
        assert!(metadata(Some("oops")).is_err());
        assert!(metadata(None).unwrap().is_empty());
    }
}
