//! The Debian packaging, checked without building a package (CI builds and inspects
//! the real .deb files with cargo-deb, dpkg-deb and systemd-analyze; see .ci/run):
//! the cargo-deb metadata of both programs names files that exist, the systemd units
//! carry the service settings the programs rely on, and the default config files they
//! install parse and point where the units keep state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A systemd unit: section → key → every value given (in order).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(text: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line:?}"));
        unit.entry(section.clone())
            .or_default()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    unit
}

/// The last value of `key` in the [Service] section (systemd's rule for most keys).
fn service<'a>(unit: &'a Unit, key: &str) -> &'a str {
    unit.get("Service")
        .and_then(|s| s.get(key))
        .and_then(|v| v.last())
        .unwrap_or_else(|| panic!("[Service] has no {key}"))
}

struct Package {
    crate_dir: PathBuf,
    name: String,
    deb: toml::Table,
}

fn package(crate_dir: &str) -> Package {
    let crate_dir = root().join(crate_dir);
    let manifest: toml::Table = std::fs::read_to_string(crate_dir.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let deb = manifest["package"]["metadata"]["deb"]
        .as_table()
        .expect("[package.metadata.deb]")
        .clone();
    Package {
        name: deb["name"].as_str().unwrap().to_string(),
        crate_dir,
        deb,
    }
}

impl Package {
    /// (source, destination) of every asset.
    fn assets(&self) -> Vec<(String, String)> {
        self.deb["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let a = a.as_array().unwrap();
                (
                    a[0].as_str().unwrap().to_string(),
                    a[1].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn unit(&self) -> Unit {
        let dir = self.deb["systemd-units"]["unit-scripts"].as_str().unwrap();
        let path = self
            .crate_dir
            .join(dir)
            .join(format!("{}.service", self.name));
        parse_unit(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
    }

    /// The packaged file installed at `dest` (`etc/campuswatch/agent.toml`).
    fn source_of(&self, dest: &str) -> PathBuf {
        let (src, _) = self
            .assets()
            .into_iter()
            .find(|(_, d)| d == dest)
            .unwrap_or_else(|| panic!("no asset installed at {dest}"));
        self.crate_dir.join(src)
    }
}

fn check_package(crate_dir: &str) -> (Package, Unit) {
    let p = package(crate_dir);
    // Every asset exists (the binary is cargo-deb's to build), the binary goes to
    // /usr/bin, the default config to /etc/campuswatch.
    for (src, dest) in p.assets() {
        if src.starts_with("target/release/") {
            assert_eq!(src, format!("target/release/{}", p.name));
            assert_eq!(dest, "usr/bin/");
        } else {
            assert!(
                p.crate_dir.join(&src).is_file(),
                "{}: {src} is missing",
                p.name
            );
        }
    }
    // Maintainer scripts: executable, with the token where cargo-deb puts the systemd
    // snippets, making the system user.
    let scripts = p
        .crate_dir
        .join(p.deb["maintainer-scripts"].as_str().unwrap());
    for name in ["postinst", "postrm"] {
        let path = scripts.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(text.starts_with("#!/bin/sh\n"), "{path:?}");
        assert!(text.contains("#DEBHELPER#"), "{path:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o111, 0o111, "{path:?} is not executable");
        }
    }
    let postinst = std::fs::read_to_string(scripts.join("postinst")).unwrap();
    assert!(postinst.contains("useradd --system"), "{postinst}");
    let postrm = std::fs::read_to_string(scripts.join("postrm")).unwrap();
    assert!(postrm.contains("\"purge\""), "{postrm}");

    let unit = p.unit();
    for (key, want) in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("WatchdogSec", "30s"),
        ("Restart", "always"),
        ("User", "campuswatch"),
        ("Group", "campuswatch"),
        ("ConfigurationDirectory", "campuswatch"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("SystemCallFilter", "@system-service"),
    ] {
        assert_eq!(service(&unit, key), want, "{}: {key}", p.name);
    }
    let families: Vec<&str> = service(&unit, "RestrictAddressFamilies")
        .split_whitespace()
        .collect();
    for f in ["AF_INET", "AF_INET6", "AF_UNIX"] {
        assert!(families.contains(&f), "{}: {families:?}", p.name);
    }
    assert!(service(&unit, "RestartSec").ends_with('s'));
    assert!(unit["Install"]["WantedBy"].contains(&"multi-user.target".to_string()));
    // The program reads the config file the package installs.
    let exec = service(&unit, "ExecStart");
    let conf = exec
        .strip_prefix(&format!("/usr/bin/{} run --config /", p.name))
        .unwrap_or_else(|| panic!("{}: ExecStart={exec}", p.name));
    assert!(
        p.assets().iter().any(|(_, d)| d == conf),
        "{}: {conf} is not installed",
        p.name
    );
    (p, unit)
}

#[test]
fn the_agent_package_installs_a_hardened_notify_unit_with_only_cap_net_raw() {
    let (p, unit) = check_package("agent");
    assert_eq!(service(&unit, "AmbientCapabilities"), "CAP_NET_RAW");
    assert_eq!(service(&unit, "CapabilityBoundingSet"), "CAP_NET_RAW");
    assert!(service(&unit, "MemoryMax").ends_with('M'));

    // The default config, once the installer names the campus, is valid and keeps its
    // state where systemd's StateDirectory= puts it.
    let text = std::fs::read_to_string(p.source_of("etc/campuswatch/agent.toml")).unwrap();
    let filled = text
        .replace("#campus = ", "campus = ")
        .replace("#region = ", "region = ");
    assert_ne!(filled, text, "campus and region are to be uncommented");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, filled).unwrap();
    let cfg = campuswatch_agent::AgentConfig::load_from(&file, Some(Default::default()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cfg.state_dir,
        Path::new("/var/lib").join(service(&unit, "StateDirectory"))
    );
    // As shipped it is refused (no campus), so an unedited agent never reports as
    // someone else's campus.
    std::fs::write(&file, text).unwrap();
    let err = campuswatch_agent::AgentConfig::load_from(&file, Some(Default::default()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("campus"), "{err}");
}

#[test]
fn the_server_package_installs_a_hardened_notify_unit_without_capabilities() {
    let (p, unit) = check_package("server");
    assert_eq!(service(&unit, "CapabilityBoundingSet"), "");
    assert_eq!(service(&unit, "AmbientCapabilities"), "");
    let cfg = campuswatch_server::config::ServerConfig::load(Some(
        &p.source_of("etc/campuswatch/server.toml"),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cfg.data_dir,
        Path::new("/var/lib").join(service(&unit, "StateDirectory"))
    );
}
