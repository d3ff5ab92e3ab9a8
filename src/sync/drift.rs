//! `.aws-sam/accel-hotswap.json`: per stack, the resources whose
//! configuration was hotswapped since CloudFormation last deployed, and which
//! properties. A plain `accel sync` never skips a deploy while this is not
//! empty, so CloudFormation ends up holding what runs; a deploy clears it.
//! Written atomically (a temporary file renamed over it).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// One stack's drift: resource full path → hotswapped property → its
/// template value (Globals merged, intrinsics as written).
pub(crate) type StackDrift = BTreeMap<String, BTreeMap<String, Value>>;

/// Every stack's drift, by stack name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Drift {
    stacks: BTreeMap<String, StackDrift>,
}

impl Drift {
    /// Reads the file; a missing or unreadable one holds nothing.
    pub(crate) fn load(file: &Path) -> Drift {
        std::fs::read(file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
    }

    /// Writes the file atomically.
    pub(crate) fn save(&self, file: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::files::write_if_changed(file, &bytes).map(drop)
    }

    /// Notes that `values` (property → template value) of `resource` in
    /// `stack` were hotswapped.
    pub(crate) fn record(&mut self, stack: &str, resource: &str, values: &BTreeMap<String, Value>) {
        let owed = self.stacks.entry(stack.to_string()).or_default().entry(resource.to_string()).or_default();
        owed.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// What `stack` owes CloudFormation: resource → properties.
    pub(crate) fn owed(&self, stack: &str) -> BTreeMap<String, Vec<String>> {
        let owed = self.stacks.get(stack).into_iter().flatten();
        owed.map(|(resource, values)| (resource.clone(), values.keys().cloned().collect())).collect()
    }

    /// `stack`'s drift.
    pub(crate) fn of(&self, stack: &str) -> StackDrift {
        self.stacks.get(stack).cloned().unwrap_or_default()
    }

    /// Forgets `stack`'s drift (CloudFormation deployed its template).
    pub(crate) fn clear(&mut self, stack: &str) {
        self.stacks.remove(stack);
    }
}

/// Reads, changes and writes the drift file in one step.
pub(crate) fn update(file: &Path, change: impl FnOnce(&mut Drift)) -> std::io::Result<()> {
    let mut drift = Drift::load(file);
    let before = drift.clone();
    change(&mut drift);
    if drift == before { Ok(()) } else { drift.save(file) }
}

/// The closing line when `stack` owes CloudFormation a deploy, naming the
/// resources and the command that reconciles them.
pub(crate) fn behind_note(file: &Path, stack: &str) -> Option<String> {
    let owed = Drift::load(file).owed(stack);
    if owed.is_empty() {
        return None;
    }
    let names: Vec<&str> = owed.keys().map(String::as_str).collect();
    Some(format!(
        "CloudFormation is behind for {} (hotswapped); `accel sync --stack-name {stack}` deploys the template and reconciles it.",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reload_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".aws-sam/accel-hotswap.json");
        let values = |pairs: &[(&str, u32)]| pairs.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
        update(&file, |d| d.record("blog", "Fn", &values(&[("Timeout", 3)]))).unwrap();
        update(&file, |d| d.record("blog", "Fn", &values(&[("Environment", 1), ("Timeout", 9)]))).unwrap();
        update(&file, |d| d.record("other", "G", &values(&[("Layers", 1)]))).unwrap();
        let drift = Drift::load(&file);
        assert_eq!(drift.owed("blog")["Fn"], ["Environment", "Timeout"]);
        assert_eq!(drift.of("blog")["Fn"]["Timeout"], Value::from(9));
        assert_eq!(
            behind_note(&file, "blog").unwrap(),
            "CloudFormation is behind for Fn (hotswapped); `accel sync --stack-name blog` deploys the template and reconciles it."
        );
        update(&file, |d| d.clear("blog")).unwrap();
        assert!(behind_note(&file, "blog").is_none());
        assert!(!Drift::load(&file).owed("other").is_empty());
    }
}
