//! Settings in layers: the defaults, then a TOML file (`--config FILE`), then the command line.
//!
//! The binary declares each setting once, as a struct that is both its flag and its file key
//! (the key is the flag without `--`). This module is generic over that struct: it reads the
//! file with every problem located by line and key, and lays the flags given on the command
//! line over it. A flag given wins over the file; a flag not given leaves the file's value.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use toml::de::DeTable;

/// A problem with the settings: where it is (file, line, key, as far as known) and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The settings file, if the problem is in one.
    pub file: Option<PathBuf>,
    /// The line in it, counted from 1.
    pub line: Option<usize>,
    /// The key, e.g. `max-clients`.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}:", file.display())?;
            if let Some(line) = self.line {
                write!(f, "{line}:")?;
            }
            f.write_str(" ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SettingsError {}

/// A settings file as read: its text and where each key is in it.
#[derive(Debug)]
pub struct SettingsFile {
    path: PathBuf,
    text: String,
    /// Each top-level key and the byte range of its name.
    keys: Vec<(String, Range<usize>)>,
}

impl SettingsFile {
    /// Reads `path` and checks that it is TOML; the error names the file and the line.
    pub fn read(path: &Path) -> Result<SettingsFile, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|e| SettingsError {
            file: Some(path.to_owned()),
            line: None,
            key: None,
            message: format!("cannot read it: {e}"),
        })?;
        SettingsFile::parse(path, text)
    }

    /// The file `path` with the contents `text`.
    pub fn parse(path: &Path, text: String) -> Result<SettingsFile, SettingsError> {
        let mut file = SettingsFile {
            path: path.to_owned(),
            text,
            keys: Vec::new(),
        };
        let keys = match DeTable::parse(&file.text) {
            Ok(table) => table
                .get_ref()
                .iter()
                .map(|(key, _)| (key.get_ref().to_string(), key.span()))
                .collect(),
            Err(e) => return Err(file.error(&e)),
        };
        file.keys = keys;
        Ok(file)
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's settings over the defaults of `S` (its `#[serde(default)]`); an unknown key, or
    /// a value of the wrong type, is an error naming its line and key.
    pub fn settings<S: DeserializeOwned>(&self) -> Result<S, SettingsError> {
        toml::from_str(&self.text).map_err(|e| self.error(&e))
    }

    /// The line (from 1) of `key` in the file, if it is there.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        let (_, span) = self.keys.iter().find(|(k, _)| k == key)?;
        Some(self.line_at(span.start))
    }

    /// The error `key: message` at the line of `key`.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> SettingsError {
        SettingsError {
            file: Some(self.path.clone()),
            line: self.line_of(key),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// `error` located: its line, and the key on that line if there is one.
    fn error(&self, error: &toml::de::Error) -> SettingsError {
        let line = error.span().map(|span| self.line_at(span.start));
        let key = line.and_then(|line| {
            self.keys
                .iter()
                .find(|(_, span)| self.line_at(span.start) == line)
                .map(|(key, _)| key.clone())
        });
        if let Some(name) = unknown_field(error.message()) {
            return self.unknown_key(name, &expected_fields(error.message()), line);
        }
        SettingsError {
            file: Some(self.path.clone()),
            line,
            key,
            message: plain_types(error.message().trim_end()),
        }
    }

    /// The error for a key that is no setting, with the nearest of the `known` ones if it looks
    /// mistyped.
    fn unknown_key(&self, name: &str, known: &[String], line: Option<usize>) -> SettingsError {
        let nearest = known
            .iter()
            .map(|k| (strsim::osa_distance(name, k), k))
            .filter(|(d, _)| *d <= 2)
            .min_by_key(|(d, _)| *d);
        let message = match nearest {
            Some((_, k)) => format!("unknown key; did you mean {k}?"),
            None => "unknown key (`chatd check-config` prints every key)".to_owned(),
        };
        SettingsError {
            file: Some(self.path.clone()),
            line: line.or_else(|| self.line_of(name)),
            key: Some(name.to_owned()),
            message,
        }
    }
}

/// The name in serde's "unknown field `NAME`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    message.strip_prefix("unknown field `")?.split('`').next()
}

/// The names in serde's "..., expected one of `a`, `b`" message.
fn expected_fields(message: &str) -> Vec<String> {
    let Some((_, list)) = message.split_once("expected") else {
        return Vec::new();
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// serde's type names said in words.
fn plain_types(message: &str) -> String {
    let mut message = message.to_owned();
    for (rust, words) in [
        ("expected usize", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        message = message.replace(rust, words);
    }
    message
}

/// The keys given on the command line, and their values: the serialized flags, where a flag not
/// given is left out (an absent option, a switch that is off, a repeated flag never given).
pub fn given<F: Serialize>(flags: &F) -> Result<toml::Table, SettingsError> {
    toml::Table::try_from(flags).map_err(|e| SettingsError {
        file: None,
        line: None,
        key: None,
        message: format!("cannot take the flags: {e}"),
    })
}

/// `base` (the defaults, or the file over them) with the `given` flags laid over it.
pub fn overlay<S: Serialize + DeserializeOwned>(
    base: &S,
    given: &toml::Table,
) -> Result<S, SettingsError> {
    let mut table = toml::Table::try_from(base).map_err(|e| SettingsError {
        file: None,
        line: None,
        key: None,
        message: format!("cannot take the settings: {e}"),
    })?;
    for (key, value) in given {
        table.insert(key.clone(), value.clone());
    }
    table
        .try_into()
        .map_err(|e: toml::de::Error| SettingsError {
            file: None,
            line: None,
            key: None,
            message: e.message().to_owned(),
        })
}

/// Whether a flag was left out on the command line: serde skips it when this is true.
pub trait Unset {
    /// True for `None`, `false` and an empty list.
    fn is_unset(&self) -> bool;
}

impl<T> Unset for Option<T> {
    fn is_unset(&self) -> bool {
        self.is_none()
    }
}

impl Unset for bool {
    fn is_unset(&self) -> bool {
        !*self
    }
}

impl<T> Unset for Vec<T> {
    fn is_unset(&self) -> bool {
        self.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, serde::Deserialize)]
    #[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
    struct Demo {
        max_clients: usize,
        web_host: Vec<String>,
        quiet: bool,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "kebab-case")]
    struct DemoFlags {
        #[serde(skip_serializing_if = "Unset::is_unset")]
        max_clients: Option<usize>,
        #[serde(skip_serializing_if = "Unset::is_unset")]
        web_host: Vec<String>,
        #[serde(skip_serializing_if = "Unset::is_unset")]
        quiet: bool,
    }

    fn file(text: &str) -> Result<SettingsFile, SettingsError> {
        SettingsFile::parse(Path::new("demo.toml"), text.to_owned())
    }

    #[test]
    fn flags_given_replace_the_files_values_and_flags_not_given_leave_them() {
        let demo = file("max-clients = 5\nweb-host = [\"a\", \"b\"]\nquiet = true\n").unwrap();
        let base: Demo = demo.settings().unwrap();
        let none = DemoFlags {
            max_clients: None,
            web_host: Vec::new(),
            quiet: false,
        };
        let given = given(&none).unwrap();
        assert!(given.is_empty(), "{given:?}");
        assert_eq!(overlay(&base, &given).unwrap(), base);
        let some = DemoFlags {
            max_clients: Some(9),
            web_host: vec!["c".into()],
            quiet: false,
        };
        let merged = overlay(&base, &super::given(&some).unwrap()).unwrap();
        let expected = Demo {
            max_clients: 9,
            web_host: vec!["c".into()],
            quiet: true,
        };
        assert_eq!(merged, expected);
    }

    #[test]
    fn problems_are_located_by_line_and_key() {
        let demo = file("\nquiet = true\nmax-clients = -1\n").unwrap();
        assert_eq!(demo.line_of("max-clients"), Some(3));
        assert_eq!(demo.line_of("quiet"), Some(2));
        assert_eq!(demo.line_of("web-host"), None);
        let error = demo.settings::<Demo>().unwrap_err();
        assert_eq!(
            (error.line, error.key.as_deref()),
            (Some(3), Some("max-clients"))
        );
        assert!(
            error.to_string().starts_with("demo.toml:3: max-clients: "),
            "{error}"
        );
        assert!(error.message.contains("expected a whole number"), "{error}");

        let error = file("quite = true\n")
            .unwrap()
            .settings::<Demo>()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "demo.toml:1: quite: unknown key; did you mean quiet?"
        );
        let error = file("a = 1\nb = = 2\n").unwrap_err();
        assert_eq!(error.line, Some(2), "{error}");
        let at = file("quiet = true\n").unwrap().error_at("quiet", "no");
        assert_eq!(at.to_string(), "demo.toml:1: quiet: no");
    }
}
