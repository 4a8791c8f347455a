//! Loading a program's configuration: built-in defaults, then a TOML file, then
//! `CAMPUSWATCH__SECTION__KEY` environment variables (last one wins), then the program's
//! own checks. A refused configuration names where the problem is — the file and line
//! (found by [`crate::locate`]), or the environment variable — and the key.
//!
//! Each program describes its loading once, as a [`Loader`] constant, and calls
//! [`Loader::load`] with its configuration type and its validation.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::locate;

/// Environment variables handed to [`Loader::load`] instead of the process's (tests hand
/// them in rather than set them on the shared process).
pub type Env = config::Map<String, String>;

/// Why a configuration was refused. Both variants name where it came from (the file,
/// and the line when the problem has one there, or the environment variable); `Invalid`
/// also names the key and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {message}\n  ({hint})", at(.source_name, *.line))]
    Load {
        source_name: String,
        /// The 1-based line in the file, when the problem has one there.
        line: Option<usize>,
        message: String,
        /// Where to read about the keys ([`Loader::hint`]).
        hint: &'static str,
    },
    #[error("{}: {key}: {message}", at(.source_name, *.line))]
    Invalid {
        source_name: String,
        line: Option<usize>,
        key: String,
        message: String,
    },
}

/// `file:line`, or just the name when there is no line.
fn at(source_name: &str, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{source_name}:{l}"),
        None => source_name.to_string(),
    }
}

impl ConfigError {
    /// The file (or environment variable, or `defaults`) the problem is in.
    pub fn source_name(&self) -> &str {
        match self {
            ConfigError::Load { source_name, .. } | ConfigError::Invalid { source_name, .. } => {
                source_name
            }
        }
    }

    /// The 1-based line in the file, when the problem has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Load { line, .. } | ConfigError::Invalid { line, .. } => *line,
        }
    }

    /// What is wrong, without where.
    pub fn reason(&self) -> String {
        match self {
            ConfigError::Load { message, .. } => message.clone(),
            ConfigError::Invalid { key, message, .. } => format!("{key}: {message}"),
        }
    }
}

/// A value the types accept but the program cannot use: its key (`mqtt.url`,
/// `devices[2].probe.target`) and what is wrong with it, in words that say the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The same problem one level down: `probe.url` of `devices[2]` is
    /// `devices[2].probe.url`.
    pub fn within(self, parent: &str) -> Self {
        Self {
            key: format!("{parent}.{}", self.key),
            message: self.message,
        }
    }

    /// The refusal, said to be in `source_name` (no line yet: [`Loader::load`] finds it).
    pub fn in_source(self, source_name: &str) -> ConfigError {
        ConfigError::Invalid {
            source_name: source_name.to_string(),
            line: None,
            key: self.key,
            message: self.message,
        }
    }
}

/// How one program reads its configuration. The layers and the error reporting are the
/// same for every program; what differs between them is spelled out here.
#[derive(Debug, Clone, Copy)]
pub struct Loader {
    /// Said after a file that does not load, on a line of its own in parentheses: where
    /// to read about the keys (`` `campuswatch-agent print-config` shows every key with
    /// its default``).
    pub hint: &'static str,
    /// Keys whose environment value is a comma-separated list (`mqtt.regions`). With
    /// any, the other environment values that read as numbers or booleans are taken as
    /// such (the `config` crate splits lists only then); without, every value is a
    /// string, converted to its key's type when the configuration is read.
    pub list_keys: &'static [&'static str],
    /// A refused value that came from the environment is named by its variable
    /// (`CAMPUSWATCH__MQTT__URL (environment)`) rather than by the file.
    pub name_env_variables: bool,
}

impl Loader {
    /// Built-in `defaults` (when given; otherwise the serde defaults of `T`), then `file`
    /// (when given), then the environment — `env` when given, else the process's — and
    /// `validate`, which is told the name of the source to put in its errors.
    ///
    /// A file that does not parse as a `T` is refused with the line of its first problem
    /// when the file alone shows it; a refused value with the line of its key in the file,
    /// or (with [`Loader::name_env_variables`]) with the variable it came from.
    pub fn load<T>(
        &self,
        defaults: Option<&T>,
        file: Option<&Path>,
        env: Option<Env>,
        validate: impl FnOnce(&T, &str) -> Result<(), ConfigError>,
    ) -> Result<T, ConfigError>
    where
        T: DeserializeOwned + Serialize,
    {
        let name = file.map_or_else(|| "defaults".to_string(), |f| f.display().to_string());
        let load_err = |e: config::ConfigError| ConfigError::Load {
            source_name: name.clone(),
            line: None,
            message: e.to_string(),
            hint: self.hint,
        };
        let mut builder = config::Config::builder();
        if let Some(defaults) = defaults {
            builder = builder.add_source(config::Config::try_from(defaults).map_err(load_err)?);
        }
        if let Some(f) = file {
            builder = builder.add_source(
                config::File::from(f)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let mut environment = config::Environment::with_prefix("CAMPUSWATCH")
            .prefix_separator("__")
            .separator("__");
        if !self.list_keys.is_empty() {
            environment = environment.list_separator(",");
            for key in self.list_keys {
                environment = environment.with_list_parse_key(key);
            }
            environment = environment.try_parsing(true);
        }
        let loaded: Result<T, _> = builder
            .add_source(environment.source(env.clone()))
            .build()
            .and_then(|c| c.try_deserialize());
        let text = || file.and_then(|f| std::fs::read_to_string(f).ok());
        let cfg = match loaded {
            Ok(cfg) => cfg,
            // The `config` crate does not say where in the file a wrong type or an
            // unknown key is; the file read alone by `toml` does.
            Err(e) => {
                return Err(match text().and_then(|t| locate::file_problem::<T>(&t)) {
                    Some(p) => ConfigError::Load {
                        source_name: name,
                        line: Some(p.line),
                        message: p.message,
                        hint: self.hint,
                    },
                    None => load_err(e),
                })
            }
        };
        validate(&cfg, &name).map_err(|e| match e {
            ConfigError::Invalid {
                source_name,
                key,
                message,
                ..
            } => {
                // A value from the environment is named by its variable, not a line.
                let var = format!("CAMPUSWATCH__{}", key.replace('.', "__").to_uppercase());
                let from_env = self.name_env_variables
                    && match &env {
                        Some(map) => map.contains_key(&var),
                        None => std::env::var_os(&var).is_some(),
                    };
                if from_env {
                    ConfigError::Invalid {
                        source_name: format!("{var} (environment)"),
                        line: None,
                        key,
                        message,
                    }
                } else {
                    ConfigError::Invalid {
                        line: text().and_then(|t| locate::line_of_key(&t, &key)),
                        source_name,
                        key,
                        message,
                    }
                }
            }
            other => other,
        })?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Cfg {
        name: String,
        port: u16,
        tags: Vec<String>,
    }

    impl Default for Cfg {
        fn default() -> Self {
            Self {
                name: "main".into(),
                port: 1883,
                tags: Vec::new(),
            }
        }
    }

    const LOADER: Loader = Loader {
        hint: "see the manual",
        list_keys: &["tags"],
        name_env_variables: true,
    };

    fn write(s: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::io::Write::write_all(&mut f, s.as_bytes()).unwrap();
        f
    }

    fn env(vars: &[(&str, &str)]) -> Option<Env> {
        Some(
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn port_above_1000(c: &Cfg, source: &str) -> Result<(), ConfigError> {
        if c.port <= 1000 {
            return Err(Invalid::new("port", "must be above 1000").in_source(source));
        }
        Ok(())
    }

    #[test]
    fn defaults_then_the_file_then_the_environment() {
        let f = write("name = \"file\"\nport = 2000\n");
        let cfg = LOADER
            .load(
                Some(&Cfg::default()),
                Some(f.path()),
                env(&[("CAMPUSWATCH__PORT", "3000"), ("CAMPUSWATCH__TAGS", "a,b")]),
                port_above_1000,
            )
            .unwrap();
        assert_eq!(
            cfg,
            Cfg {
                name: "file".into(),
                port: 3000,
                tags: vec!["a".into(), "b".into()]
            }
        );
        let cfg = LOADER
            .load(Some(&Cfg::default()), None, env(&[]), port_above_1000)
            .unwrap();
        assert_eq!(cfg, Cfg::default());
    }

    #[test]
    fn a_file_that_does_not_load_names_its_line_and_the_hint() {
        let f = write("name = \"x\"\n\nprot = 2000\n");
        let err = LOADER
            .load(
                Some(&Cfg::default()),
                Some(f.path()),
                env(&[]),
                port_above_1000,
            )
            .unwrap_err();
        assert_eq!(err.line(), Some(3));
        assert_eq!(err.source_name(), f.path().display().to_string());
        assert!(err.reason().contains("prot"), "{err}");
        assert!(err.to_string().ends_with("\n  (see the manual)"), "{err}");
    }

    #[test]
    fn a_refused_value_names_the_line_of_its_key_or_its_variable() {
        let f = write("name = \"x\"\n\nport = 80\n");
        let err = LOADER
            .load(
                Some(&Cfg::default()),
                Some(f.path()),
                env(&[]),
                port_above_1000,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}:3: port: must be above 1000", f.path().display())
        );
        let f = write("name = \"x\"\n");
        let err = LOADER
            .load(
                Some(&Cfg::default()),
                Some(f.path()),
                env(&[("CAMPUSWATCH__PORT", "80")]),
                port_above_1000,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "CAMPUSWATCH__PORT (environment): port: must be above 1000"
        );
        let quiet = Loader {
            name_env_variables: false,
            ..LOADER
        };
        let err = quiet
            .load(
                Some(&Cfg::default()),
                None,
                env(&[("CAMPUSWATCH__PORT", "80")]),
                port_above_1000,
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "defaults: port: must be above 1000");
    }

    #[test]
    fn keys_are_named_within_their_parent() {
        let e = Invalid::new("probe.url", "bad").within("devices[2]");
        assert_eq!(e.key, "devices[2].probe.url");
        assert_eq!(
            e.in_source("f.toml").to_string(),
            "f.toml: devices[2].probe.url: bad"
        );
    }
}
