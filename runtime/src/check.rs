//! `entente validate PATH…`: reads manifests from files or directories and
//! checks each object against the generated CRD schemas and their CEL rules.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use entente_crds::validate::{parse_manifests, ManifestError, Resource};

/// What validating a set of paths found.
#[derive(Debug, Default)]
pub struct Report {
    pub accepted: Vec<(PathBuf, Resource)>,
    pub problems: Vec<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && !self.accepted.is_empty()
    }

    /// Human-readable summary, one line per accepted object, then the problems.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (path, resource) in &self.accepted {
            let _ = writeln!(
                out,
                "ok    {} {:?} ({})",
                resource.kind(),
                resource.name(),
                path.display()
            );
        }
        for problem in &self.problems {
            let _ = writeln!(out, "error {problem}");
        }
        if self.accepted.is_empty() && self.problems.is_empty() {
            out.push_str("error no manifests found\n");
        }
        out
    }
}

/// Validates every `.yaml`/`.yml` file under the given files and directories
/// (directories are read recursively, in name order).
pub fn check_paths(paths: &[PathBuf]) -> Report {
    let mut report = Report::default();
    let mut files = Vec::new();
    for path in paths {
        if let Err(e) = collect(path, &mut files) {
            report.problems.push(format!("{}: {e}", path.display()));
        }
    }
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                report.problems.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        for result in parse_manifests(&text, &file.display().to_string()) {
            match result {
                Ok(resource) => report.accepted.push((file.clone(), resource)),
                Err(e @ ManifestError::Invalid { .. }) => {
                    report.problems.push(format!("{}: {e}", file.display()))
                }
                Err(e) => report.problems.push(e.to_string()),
            }
        }
    }
    report
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            if entry.is_dir() || is_manifest(&entry) {
                collect(&entry, files)?;
            }
        }
        Ok(())
    } else if path.exists() {
        files.push(path.to_path_buf());
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file or directory",
        ))
    }
}

fn is_manifest(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(path: &str) -> PathBuf {
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path)
    }

    #[test]
    fn every_example_directory_passes() {
        let report = check_paths(&[repo("examples")]);
        assert!(report.is_ok(), "{}", report.render());
        assert!(report.accepted.len() >= 14, "{}", report.render());
    }

    #[test]
    fn a_broken_manifest_is_reported_with_its_file_and_message() {
        let report = check_paths(&[repo("crds/tests/invalid/readonly-share-posting.yaml")]);
        assert!(!report.is_ok());
        let text = report.render();
        assert!(text.contains("readonly-share-posting.yaml"), "{text}");
        assert!(
            text.contains("a ReadOnly share cannot allow the partner to post"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_path_or_an_empty_set_is_an_error() {
        let report = check_paths(&[PathBuf::from("/nonexistent/manifests")]);
        assert!(!report.is_ok());
        assert!(report.render().contains("no such file or directory"));
        let empty = tempdir();
        assert!(!check_paths(std::slice::from_ref(&empty)).is_ok());
        std::fs::remove_dir_all(empty).unwrap();
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("entente-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
