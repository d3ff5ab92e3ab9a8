//! Reading templates (JSON, or YAML with CloudFormation's short-form tags) into
//! one long-form model, and writing that model back as YAML the way sam does:
//! block style, long-form intrinsics, key order kept.

use serde_json::{Map, Number, Value};
use serde_yaml::value::TaggedValue;

/// Where a parse went wrong (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// Line of the error, when the parser knows it.
    pub(crate) line: Option<usize>,
    /// Column of the error, when the parser knows it.
    pub(crate) column: Option<usize>,
    /// What is wrong.
    pub(crate) message: String,
}

/// The short-form tags CloudFormation accepts, and the long-form key of each.
pub(crate) const SHORT_FORM_TAGS: [(&str, &str); 20] = [
    ("Ref", "Ref"),
    ("Condition", "Condition"),
    ("Sub", "Fn::Sub"),
    ("GetAtt", "Fn::GetAtt"),
    ("Join", "Fn::Join"),
    ("If", "Fn::If"),
    ("Select", "Fn::Select"),
    ("Split", "Fn::Split"),
    ("FindInMap", "Fn::FindInMap"),
    ("ImportValue", "Fn::ImportValue"),
    ("Base64", "Fn::Base64"),
    ("Cidr", "Fn::Cidr"),
    ("GetAZs", "Fn::GetAZs"),
    ("Equals", "Fn::Equals"),
    ("And", "Fn::And"),
    ("Or", "Fn::Or"),
    ("Not", "Fn::Not"),
    ("Transform", "Fn::Transform"),
    ("ToJsonString", "Fn::ToJsonString"),
    ("Length", "Fn::Length"),
];

/// Parses a template's text. Text that starts with `{` is JSON; anything else
/// is YAML (of which JSON is a subset, so either way the result is the same).
pub(crate) fn parse(text: &str) -> Result<Value, ParseError> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| ParseError {
            line: Some(e.line()),
            column: Some(e.column()),
            message: format!("invalid JSON: {e}"),
        });
    }
    let yaml: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| ParseError {
        line: e.location().map(|l| l.line()),
        column: e.location().map(|l| l.column()),
        message: format!("invalid YAML: {}", strip_location(&e.to_string())),
    })?;
    from_yaml(yaml).map_err(|mut e| {
        // Tags are resolved after serde_yaml has dropped positions: find the tag in the text.
        if let Some(tag) = e.message.strip_prefix("unknown tag ") {
            e.line = text.lines().position(|l| l.contains(tag)).map(|i| i + 1);
        }
        e
    })
}

/// serde_yaml appends " at line L column C"; the caller prints the location itself.
fn strip_location(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

fn from_yaml(value: serde_yaml::Value) -> Result<Value, ParseError> {
    use serde_yaml::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => yaml_number(&n),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(from_yaml).collect::<Result<_, _>>()?),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(yaml_key(k)?, from_yaml(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => long_form(*tagged)?,
    })
}

fn yaml_number(n: &serde_yaml::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Number(i.into())
    } else if let Some(u) = n.as_u64() {
        Value::Number(u.into())
    } else {
        // .inf and .nan have no JSON form; keep their text.
        n.as_f64().and_then(Number::from_f64).map_or_else(|| Value::String(n.to_string()), Value::Number)
    }
}

fn yaml_key(key: serde_yaml::Value) -> Result<String, ParseError> {
    use serde_yaml::Value as Y;
    match key {
        Y::String(s) => Ok(s),
        Y::Bool(b) => Ok(b.to_string()),
        Y::Number(n) => Ok(n.to_string()),
        Y::Null => Ok("null".into()),
        other => Err(ParseError {
            line: None,
            column: None,
            message: format!("invalid YAML: mapping key {other:?} is not a string"),
        }),
    }
}

/// `!GetAtt A.B.C` is `[A, "B.C"]`: CloudFormation splits at the first dot.
fn long_form(tagged: TaggedValue) -> Result<Value, ParseError> {
    let tag = tagged.tag.to_string();
    let name = tag.trim_start_matches('!');
    let Some((_, key)) = SHORT_FORM_TAGS.iter().find(|(short, _)| *short == name) else {
        return Err(ParseError { line: None, column: None, message: format!("unknown tag {tag}") });
    };
    let inner = from_yaml(tagged.value)?;
    let inner = match (name, inner) {
        ("GetAtt", Value::String(s)) => match s.split_once('.') {
            Some((resource, attribute)) => Value::Array(vec![resource.into(), attribute.into()]),
            None => Value::String(s),
        },
        (_, other) => other,
    };
    Ok(Value::Object(Map::from_iter([(key.to_string(), inner)])))
}

/// Writes a template as YAML exactly as sam does (see [`super::emit`]).
pub(crate) fn to_yaml(value: &Value) -> String {
    super::emit::to_yaml(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_short_form_tag_round_trips() {
        let cases: &[(&str, Value)] = &[
            ("!Ref Bucket", json!({"Ref": "Bucket"})),
            ("!Sub 'arn:${AWS::Partition}:s3:::${B}'", json!({"Fn::Sub": "arn:${AWS::Partition}:s3:::${B}"})),
            ("!Sub ['${A}-x', {A: !Ref P}]", json!({"Fn::Sub": ["${A}-x", {"A": {"Ref": "P"}}]})),
            ("!GetAtt Fn.Arn", json!({"Fn::GetAtt": ["Fn", "Arn"]})),
            ("!GetAtt Child.Outputs.LayerArn", json!({"Fn::GetAtt": ["Child", "Outputs.LayerArn"]})),
            ("!GetAtt [Fn, Arn]", json!({"Fn::GetAtt": ["Fn", "Arn"]})),
            ("!Join ['', [a, !Ref B]]", json!({"Fn::Join": ["", ["a", {"Ref": "B"}]]})),
            ("!If [IsProd, 1024, !Ref AWS::NoValue]", json!({"Fn::If": ["IsProd", 1024, {"Ref": "AWS::NoValue"}]})),
            ("!Select [0, !GetAZs '']", json!({"Fn::Select": [0, {"Fn::GetAZs": ""}]})),
            ("!Split [',', 'a,b']", json!({"Fn::Split": [",", "a,b"]})),
            ("!FindInMap [M, !Ref AWS::Region, Key]", json!({"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "Key"]})),
            ("!ImportValue shared-vpc", json!({"Fn::ImportValue": "shared-vpc"})),
            ("!Base64 hello", json!({"Fn::Base64": "hello"})),
            ("!Cidr ['10.0.0.0/16', 4, 8]", json!({"Fn::Cidr": ["10.0.0.0/16", 4, 8]})),
            ("!GetAZs us-east-1", json!({"Fn::GetAZs": "us-east-1"})),
            ("!Equals [!Ref Env, prod]", json!({"Fn::Equals": [{"Ref": "Env"}, "prod"]})),
            ("!And [!Condition A, !Condition B]", json!({"Fn::And": [{"Condition": "A"}, {"Condition": "B"}]})),
            (
                "!Or [!Condition A, !Not [!Condition B]]",
                json!({"Fn::Or": [{"Condition": "A"}, {"Fn::Not": [{"Condition": "B"}]}]}),
            ),
            ("!Not [!Equals [a, b]]", json!({"Fn::Not": [{"Fn::Equals": ["a", "b"]}]})),
            ("!Condition IsProd", json!({"Condition": "IsProd"})),
            (
                "!Transform {Name: AWS::Include, Parameters: {Location: s3://b/k}}",
                json!({"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "s3://b/k"}}}),
            ),
        ];
        for (short, long) in cases {
            let doc = format!("Value: {short}\n");
            let parsed = parse(&doc).unwrap_or_else(|e| panic!("{short}: {e:?}"));
            assert_eq!(&parsed["Value"], long, "{short}");
            // Writing and reading back loses nothing.
            let reparsed = parse(&to_yaml(&parsed)).unwrap();
            assert_eq!(reparsed, parsed, "{short}");
            // The long form written by hand reads the same.
            let long_doc = to_yaml(&json!({ "Value": long }));
            assert_eq!(parse(&long_doc).unwrap(), parsed, "{short}");
        }
    }

    #[test]
    fn key_order_numbers_and_strings_survive() {
        let text = "Z: 1\nA: '0123'\nM: 1.5\nB: yes\nD: 2024-01-01\nN: null\n";
        let v = parse(text).unwrap();
        assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["Z", "A", "M", "B", "D", "N"]);
        assert_eq!(v["A"], json!("0123"));
        assert_eq!(v["D"], json!("2024-01-01"), "YAML timestamps stay strings");
        assert_eq!(parse(&to_yaml(&v)).unwrap(), v);
        assert!(to_yaml(&v).contains("'0123'"), "leading-zero strings are quoted");
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = parse("Resources:\n  A:\n    Type: [x\n").unwrap_err();
        assert!(e.line.is_some(), "{e:?}");
        assert!(e.message.starts_with("invalid YAML"));
        let e = parse("{\n \"a\": ,\n}").unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = parse("A: !Bogus x\n").unwrap_err();
        assert_eq!(e.message, "unknown tag !Bogus");
        assert_eq!(parse("A: 1\nB: !Bogus x\n").unwrap_err().line, Some(2));
    }

    #[test]
    fn json_templates_parse() {
        let v = parse("{\"Resources\": {\"A\": {\"Type\": \"AWS::SNS::Topic\"}}}").unwrap();
        assert_eq!(v["Resources"]["A"]["Type"], json!("AWS::SNS::Topic"));
    }
}
