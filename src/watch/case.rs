//! Whether the project's file system tells names apart by case. Linux's
//! do; Windows' and macOS's default ones do not, and there an event for
//! `src/App.py` is a change of the function whose `CodeUri` is `Src`. Found
//! by probing the file system itself, not by the system accel runs on: a
//! Linux machine may work on a case-insensitive share, a Mac on a
//! case-sensitive volume.

use std::path::Path;

/// How names compare on the project's file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathCase {
    /// `App.py` and `app.py` are two files.
    Sensitive,
    /// `App.py` and `app.py` are one file.
    Insensitive,
}

impl PathCase {
    /// Probes the file system of `dir` once: a new file there, looked up
    /// by its name with the case of each letter flipped. Where no file can
    /// be made, the usual default of the system.
    pub(crate) fn probe(dir: &Path) -> PathCase {
        let usual = if cfg!(any(windows, target_os = "macos")) { PathCase::Insensitive } else { PathCase::Sensitive };
        let Ok(file) = tempfile::Builder::new().prefix(".accel-case-probe-").tempfile_in(dir) else {
            return usual;
        };
        let Some(name) = file.path().file_name().and_then(|n| n.to_str()) else {
            return usual;
        };
        let flipped: String = name
            .chars()
            .map(|c| if c.is_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        match std::fs::metadata(dir.join(flipped)) {
            Ok(_) => PathCase::Insensitive,
            Err(_) => PathCase::Sensitive,
        }
    }

    /// Whether names `a` and `b` name the same file.
    pub(crate) fn same_name(self, a: &str, b: &str) -> bool {
        match self {
            PathCase::Sensitive => a == b,
            PathCase::Insensitive => a.to_lowercase() == b.to_lowercase(),
        }
    }

    /// Whether `path` is `base` or lies below it.
    pub(crate) fn starts_with(self, path: &Path, base: &Path) -> bool {
        let mut path = path.components();
        base.components().all(|b| {
            path.next()
                .is_some_and(|p| self.same_name(&p.as_os_str().to_string_lossy(), &b.as_os_str().to_string_lossy()))
        })
    }

    /// Whether `a` and `b` are the same path.
    pub(crate) fn same(self, a: &Path, b: &Path) -> bool {
        a.components().count() == b.components().count() && self.starts_with(a, b)
    }

    /// Whether the name `name` ends with `suffix`.
    pub(crate) fn ends_with(self, name: &str, suffix: &str) -> bool {
        match self {
            PathCase::Sensitive => name.ends_with(suffix),
            PathCase::Insensitive => name.to_lowercase().ends_with(&suffix.to_lowercase()),
        }
    }

    /// Whether `text` holds `fragment`.
    pub(crate) fn contains(self, text: &str, fragment: &str) -> bool {
        match self {
            PathCase::Sensitive => text.contains(fragment),
            PathCase::Insensitive => text.to_lowercase().contains(&fragment.to_lowercase()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_compare_by_the_case_rule() {
        let (event, folder) = (Path::new("/p/src/App.py"), Path::new("/p/Src"));
        assert!(PathCase::Insensitive.starts_with(event, folder));
        assert!(!PathCase::Sensitive.starts_with(event, folder));
        assert!(PathCase::Sensitive.starts_with(event, Path::new("/p/src")));
        assert!(!PathCase::Insensitive.starts_with(Path::new("/p/srcs/a.py"), folder), "whole names only");
        assert!(PathCase::Insensitive.same(Path::new("/p/Template.YAML"), Path::new("/p/template.yaml")));
        assert!(!PathCase::Insensitive.same(Path::new("/p/template.yaml/x"), Path::new("/p/template.yaml")));
        assert!(!PathCase::Sensitive.same(Path::new("/p/Template.yaml"), Path::new("/p/template.yaml")));
        assert!(PathCase::Insensitive.contains("/p/src/Vendor/x.py", "vendor/"));
        assert!(!PathCase::Sensitive.contains("/p/src/Vendor/x.py", "vendor/"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_linux_folder_probes_as_case_sensitive_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(PathCase::probe(dir.path()), PathCase::Sensitive);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe file is gone");
    }
}
