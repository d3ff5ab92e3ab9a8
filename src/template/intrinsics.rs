//! Local, best-effort resolution of CloudFormation intrinsics: what a build or
//! a sync needs to know before anything is deployed (CodeUri, Runtime, Layers,
//! Handler …). Like sam, anything that cannot be resolved locally — a
//! resource's attribute, an import, an unknown name — is left as it was.

use std::cell::RefCell;
use std::collections::HashMap;

use indexmap::IndexMap;
use serde_json::{Map, Value};

/// Values of the pseudo-parameters (`AWS::Region` …) used locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pseudo {
    /// `AWS::Region`.
    pub(crate) region: String,
    /// `AWS::AccountId`.
    pub(crate) account_id: String,
    /// `AWS::StackName`.
    pub(crate) stack_name: String,
}

impl Default for Pseudo {
    /// The placeholders sam uses when nothing better is known.
    fn default() -> Self {
        Pseudo { region: "us-east-1".into(), account_id: "123456789012".into(), stack_name: "local".into() }
    }
}

impl Pseudo {
    /// `AWS::Partition`, derived from the region.
    pub(crate) fn partition(&self) -> &'static str {
        partition_of(&self.region)
    }

    fn value(&self, name: &str) -> Option<Value> {
        let s = match name {
            "AWS::Region" => self.region.clone(),
            "AWS::AccountId" => self.account_id.clone(),
            "AWS::StackName" => self.stack_name.clone(),
            "AWS::Partition" => self.partition().into(),
            "AWS::URLSuffix" => {
                if self.region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" }.into()
            }
            "AWS::StackId" => format!(
                "arn:{}:cloudformation:{}:{}:stack/{}/51af3dc0-da77-11e4-872e-1234567db123",
                self.partition(),
                self.region,
                self.account_id,
                self.stack_name
            ),
            "AWS::NotificationARNs" => return Some(Value::Array(Vec::new())),
            _ => return None,
        };
        Some(Value::String(s))
    }
}

/// Names every pseudo-parameter.
pub(crate) const PSEUDO_PARAMETERS: [&str; 8] = [
    "AWS::Region",
    "AWS::AccountId",
    "AWS::StackName",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::StackId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
];

/// Resolves intrinsics of one template against its parameters, mappings and
/// conditions.
#[derive(Debug, Clone)]
pub(crate) struct Resolver {
    parameters: IndexMap<String, Value>,
    pseudo: Pseudo,
    mappings: Map<String, Value>,
    conditions: Map<String, Value>,
    evaluated: RefCell<HashMap<String, Option<bool>>>,
}

impl Resolver {
    /// Builds a resolver for `template`. `overrides` win over parameter
    /// defaults; list-typed parameters become lists.
    pub(crate) fn new(template: &Value, overrides: &IndexMap<String, String>, pseudo: Pseudo) -> Self {
        let section = |name: &str| template.get(name).and_then(Value::as_object).cloned().unwrap_or_default();
        let mut parameters = IndexMap::new();
        for (name, decl) in section("Parameters") {
            let value = overrides.get(&name).cloned().or_else(|| decl.get("Default").and_then(scalar_string));
            let Some(value) = value else { continue };
            let is_list = decl
                .get("Type")
                .and_then(Value::as_str)
                .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"));
            let value = if is_list {
                Value::Array(value.split(',').map(|s| Value::String(s.trim().to_string())).collect())
            } else {
                Value::String(value)
            };
            parameters.insert(name, value);
        }
        Resolver {
            parameters,
            pseudo,
            mappings: section("Mappings"),
            conditions: section("Conditions"),
            evaluated: RefCell::new(HashMap::new()),
        }
    }

    /// The value of a parameter or pseudo-parameter, if known locally.
    pub(crate) fn parameter(&self, name: &str) -> Option<Value> {
        self.parameters.get(name).cloned().or_else(|| self.pseudo.value(name))
    }

    /// Resolves what can be resolved in `value`. `Ref AWS::NoValue` removes
    /// the enclosing key or list item; at the top it becomes null.
    pub(crate) fn resolve(&self, value: &Value) -> Value {
        self.resolve_inner(value).unwrap_or(Value::Null)
    }

    /// Evaluates a named condition; `None` when it depends on something unknown.
    pub(crate) fn condition(&self, name: &str) -> Option<bool> {
        if let Some(known) = self.evaluated.borrow().get(name) {
            return *known;
        }
        // Mark as unknown first so a cycle of conditions ends.
        self.evaluated.borrow_mut().insert(name.to_string(), None);
        let result = self.conditions.get(name).and_then(|expr| self.evaluate(expr));
        self.evaluated.borrow_mut().insert(name.to_string(), result);
        result
    }

    fn evaluate(&self, expr: &Value) -> Option<bool> {
        let (key, args) = single_entry(expr)?;
        let list = args.as_array();
        match key {
            "Condition" => self.condition(args.as_str()?),
            "Fn::Equals" => {
                let [a, b] = list?.as_slice() else {
                    return None;
                };
                Some(scalar_string(&self.resolve_inner(a)?)? == scalar_string(&self.resolve_inner(b)?)?)
            }
            "Fn::Not" => Some(!self.evaluate(list?.first()?)?),
            "Fn::And" => {
                let values: Option<Vec<bool>> = list?.iter().map(|c| self.evaluate(c)).collect();
                Some(values?.into_iter().all(|b| b))
            }
            "Fn::Or" => {
                let values: Option<Vec<bool>> = list?.iter().map(|c| self.evaluate(c)).collect();
                Some(values?.into_iter().any(|b| b))
            }
            _ => None,
        }
    }

    /// `None` means `AWS::NoValue`.
    fn resolve_inner(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Array(items) => Some(Value::Array(items.iter().filter_map(|v| self.resolve_inner(v)).collect())),
            Value::Object(map) => {
                if let Some((key, args)) = single_entry(value) {
                    if key == "Ref" && args.as_str() == Some("AWS::NoValue") {
                        return None;
                    }
                    if let Some(done) = self.intrinsic(key, args) {
                        return done;
                    }
                }
                let mut out = Map::new();
                for (k, v) in map {
                    if let Some(v) = self.resolve_inner(v) {
                        out.insert(k.clone(), v);
                    }
                }
                Some(Value::Object(out))
            }
            other => Some(other.clone()),
        }
    }

    /// `Some(result)` when `key` is an intrinsic that resolved (the result
    /// itself may be NoValue); `None` to fall back to resolving the children.
    fn intrinsic(&self, key: &str, args: &Value) -> Option<Option<Value>> {
        match key {
            "Ref" => self.parameter(args.as_str()?).map(Some),
            "Fn::Sub" => self.sub(args).map(|s| Some(Value::String(s))),
            "Fn::If" => {
                let [cond, yes, no] = args.as_array()?.as_slice() else {
                    return None;
                };
                let branch = if self.condition(cond.as_str()?)? { yes } else { no };
                Some(self.resolve_inner(branch))
            }
            "Fn::FindInMap" => self.find_in_map(args).map(Some),
            "Fn::Join" => {
                let [delimiter, items] = args.as_array()?.as_slice() else {
                    return None;
                };
                let items = self.resolve_inner(items)?;
                let parts: Option<Vec<String>> = items.as_array()?.iter().map(scalar_string).collect();
                Some(Some(Value::String(parts?.join(delimiter.as_str()?))))
            }
            "Fn::Select" => {
                let [index, items] = args.as_array()?.as_slice() else {
                    return None;
                };
                let index: usize = scalar_string(&self.resolve_inner(index)?)?.parse().ok()?;
                let items = self.resolve_inner(items)?;
                items.as_array()?.get(index).cloned().map(Some)
            }
            "Fn::Split" => {
                let [delimiter, source] = args.as_array()?.as_slice() else {
                    return None;
                };
                let source = scalar_string(&self.resolve_inner(source)?)?;
                let parts = source.split(delimiter.as_str()?).map(|s| Value::String(s.to_string())).collect();
                Some(Some(Value::Array(parts)))
            }
            "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" => {
                let wrapped = Value::Object(Map::from_iter([(key.to_string(), args.clone())]));
                self.evaluate(&wrapped).map(|b| Some(Value::Bool(b)))
            }
            _ => None,
        }
    }

    fn find_in_map(&self, args: &Value) -> Option<Value> {
        let args = args.as_array()?;
        let key = |i: usize| args.get(i).and_then(|v| self.resolve_inner(v)).and_then(|v| scalar_string(&v));
        let found = self.mappings.get(&key(0)?).and_then(|m| m.get(key(1)?)).and_then(|m| m.get(key(2)?)).cloned();
        // Language extensions allow a fourth `{DefaultValue: …}` argument.
        found.or_else(|| args.get(3)?.get("DefaultValue").and_then(|d| self.resolve_inner(d)))
    }

    /// Both forms of `Fn::Sub`; `None` when a variable is not known locally.
    fn sub(&self, args: &Value) -> Option<String> {
        let (text, vars) = match args {
            Value::String(s) => (s.as_str(), Map::new()),
            Value::Array(items) => match items.as_slice() {
                [Value::String(s)] => (s.as_str(), Map::new()),
                [Value::String(s), Value::Object(vars)] => (s.as_str(), vars.clone()),
                _ => return None,
            },
            _ => return None,
        };
        substitute(text, |name| match vars.get(name) {
            Some(v) => self.resolve_inner(v).as_ref().and_then(scalar_string),
            None => self.parameter(name).as_ref().and_then(scalar_string),
        })
    }
}

/// The partition of a region (`AWS::Partition`).
pub(crate) fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Replaces `${Name}` in an `Fn::Sub` string using `lookup`; `${!Literal}`
/// stands for `${Literal}`. `None` when a name is not known.
pub(crate) fn substitute(text: &str, mut lookup: impl FnMut(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Some(out);
        };
        let name = &after[..end];
        match name.strip_prefix('!') {
            Some(literal) => {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            }
            None => out.push_str(&lookup(name.trim())?),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The names an `Fn::Sub` string refers to (`${A}` and `${A.Attr}` give `A`).
pub(crate) fn sub_references(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let _ = substitute(text, |name| {
        names.push(name.split('.').next().unwrap_or(name).to_string());
        Some(String::new())
    });
    names
}

/// `{Key: args}` with exactly one key.
pub(crate) fn single_entry(value: &Value) -> Option<(&str, &Value)> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// Whether `value` is a single intrinsic call (`Ref`, `Condition` or `Fn::*`).
pub(crate) fn is_intrinsic(value: &Value) -> bool {
    single_entry(value).is_some_and(|(k, _)| k == "Ref" || k == "Condition" || k.starts_with("Fn::"))
}

/// A scalar as text, as CloudFormation passes it to an API; `None` for
/// lists, maps and null.
pub(crate) fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolver(template: Value, overrides: &[(&str, &str)]) -> Resolver {
        let overrides = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Resolver::new(&template, &overrides, Pseudo { region: "eu-west-1".into(), ..Pseudo::default() })
    }

    fn template() -> Value {
        json!({
            "Parameters": {
                "Env": {"Type": "String", "Default": "dev"},
                "Subnets": {"Type": "CommaDelimitedList", "Default": "a, b"},
                "NoDefault": {"Type": "String"}
            },
            "Mappings": {"Runtimes": {"dev": {"py": "python3.12"}, "prod": {"py": "python3.13"}}},
            "Conditions": {
                "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
                "Both": {"Fn::And": [{"Condition": "NotProd"}, {"Fn::Equals": ["x", "x"]}]},
                "Loop": {"Condition": "Loop"}
            }
        })
    }

    #[test]
    fn refs_parameters_and_pseudo_parameters() {
        let r = resolver(template(), &[("Env", "prod")]);
        assert_eq!(r.resolve(&json!({"Ref": "Env"})), json!("prod"));
        assert_eq!(r.resolve(&json!({"Ref": "Subnets"})), json!(["a", "b"]));
        assert_eq!(r.resolve(&json!({"Ref": "AWS::Region"})), json!("eu-west-1"));
        assert_eq!(r.resolve(&json!({"Ref": "AWS::Partition"})), json!("aws"));
        // Unknown locally: left alone.
        assert_eq!(r.resolve(&json!({"Ref": "MyBucket"})), json!({"Ref": "MyBucket"}));
        assert_eq!(r.resolve(&json!({"Ref": "NoDefault"})), json!({"Ref": "NoDefault"}));
    }

    #[test]
    fn sub_in_both_forms() {
        let r = resolver(template(), &[]);
        assert_eq!(r.resolve(&json!({"Fn::Sub": "src/${Env}/${AWS::Region}"})), json!("src/dev/eu-west-1"));
        assert_eq!(r.resolve(&json!({"Fn::Sub": ["${X}-${Env}", {"X": {"Ref": "Env"}}]})), json!("dev-dev"));
        assert_eq!(r.resolve(&json!({"Fn::Sub": "${!Literal}-${Env}"})), json!("${Literal}-dev"));
        let unresolved = json!({"Fn::Sub": "${Fn.Arn}"});
        assert_eq!(r.resolve(&unresolved), unresolved);
        assert_eq!(sub_references("${A}/${B.Arn}/${!C}/${AWS::Region}"), ["A", "B", "AWS::Region"]);
    }

    #[test]
    fn conditions_if_and_no_value() {
        let r = resolver(template(), &[]);
        assert_eq!(r.condition("IsProd"), Some(false));
        assert_eq!(r.condition("NotProd"), Some(true));
        assert_eq!(r.condition("Both"), Some(true));
        assert_eq!(r.condition("Loop"), None, "a cyclic condition is unknown, not a hang");
        let v = json!({"MemorySize": {"Fn::If": ["IsProd", 1024, {"Ref": "AWS::NoValue"}]}, "Layers": [{"Fn::If": ["NotProd", "arn:l", {"Ref": "AWS::NoValue"}]}]});
        assert_eq!(r.resolve(&v), json!({"Layers": ["arn:l"]}));
        let prod = resolver(template(), &[("Env", "prod")]);
        assert_eq!(prod.resolve(&v), json!({"MemorySize": 1024, "Layers": []}));
    }

    #[test]
    fn find_in_map_join_select_split() {
        let r = resolver(template(), &[("Env", "prod")]);
        assert_eq!(r.resolve(&json!({"Fn::FindInMap": ["Runtimes", {"Ref": "Env"}, "py"]})), json!("python3.13"));
        assert_eq!(
            r.resolve(&json!({"Fn::FindInMap": ["Runtimes", "none", "py", {"DefaultValue": "python3.11"}]})),
            json!("python3.11")
        );
        assert_eq!(r.resolve(&json!({"Fn::Join": ["-", ["a", {"Ref": "Env"}]]})), json!("a-prod"));
        assert_eq!(r.resolve(&json!({"Fn::Select": ["1", {"Ref": "Subnets"}]})), json!("b"));
        assert_eq!(r.resolve(&json!({"Fn::Split": [",", "x,y"]})), json!(["x", "y"]));
        let getatt = json!({"Fn::Join": ["", [{"Fn::GetAtt": ["F", "Arn"]}]]});
        assert_eq!(r.resolve(&getatt), getatt);
    }
}
