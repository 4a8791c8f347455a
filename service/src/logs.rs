//! The log: to standard error (journald takes it from there under systemd), without
//! colour codes unless standard error is a terminal, filtered by `RUST_LOG` when it is
//! set and valid, else by the program's `--log-level`.

use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// Installs the log for the process, filtered by `RUST_LOG` or else `level` (`info`,
/// `campuswatch_agent=debug`), to which `quiet` (directives such as `rumqttd=off`) is
/// added for each target that `level` does not name.
///
/// A `level` directive that does not parse is left out, and said so on standard error;
/// with none left, the log is at `info`.
pub fn init(level: &str, quiet: &[&str]) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::builder()
            .with_default_directive(LevelFilter::INFO.into())
            .parse_lossy(filter(level, quiet))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in journald or log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// `level`, followed by each of `quiet` whose target `level` does not name.
fn filter(level: &str, quiet: &[&str]) -> String {
    let mut filter = level.to_string();
    for directive in quiet {
        let target = directive.split('=').next().unwrap_or_default();
        if !level.contains(target) {
            filter.push(',');
            filter.push_str(directive);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_targets_are_added_unless_the_level_names_them() {
        let quiet = ["rumqttd=off", "campuswatch_agent=warn"];
        assert_eq!(
            filter("info", &quiet),
            "info,rumqttd=off,campuswatch_agent=warn"
        );
        assert_eq!(
            filter("debug,rumqttd=info", &quiet),
            "debug,rumqttd=info,campuswatch_agent=warn"
        );
        assert_eq!(
            filter("campuswatch_agent=debug", &[]),
            "campuswatch_agent=debug"
        );
    }
}
