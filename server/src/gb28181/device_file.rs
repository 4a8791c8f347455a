//! The per-device passwords file (`gb28181.devices_file`): one device per line,
//! `device_id,password` and optionally a third column, the device's keepalive interval in
//! seconds. Blank lines and lines starting with `#` are skipped. A bad line refuses the
//! whole file with its line number; the passwords never appear in an error.

use std::collections::HashMap;
use std::path::Path;

use super::GbCode;

/// Most devices one file may list: far above a province's NVRs.
pub const MAX_DEVICES: usize = 1_000_000;

/// What a device's line says.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    pub password: String,
    /// Seconds, when the line gives them.
    pub keepalive_secs: Option<u32>,
}

impl std::fmt::Debug for DeviceEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceEntry")
            .field("password", &"***")
            .field("keepalive_secs", &self.keepalive_secs)
            .finish()
    }
}

/// The devices of a file, by code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFile {
    pub devices: HashMap<GbCode, DeviceEntry>,
}

impl DeviceFile {
    pub fn load(path: &Path) -> Result<DeviceFile, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        DeviceFile::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(bytes: &[u8]) -> Result<DeviceFile, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            format!("line {line}: not valid UTF-8")
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut devices = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let (code, password, keepalive) = match fields[..] {
                [c, p] => (c, p, None),
                [c, p, k] => (c, p, Some(k)),
                _ => {
                    return Err(format!(
                        "line {n}: expected device_id,password[,keepalive_interval_seconds], found {} fields",
                        fields.len()
                    ))
                }
            };
            let code = GbCode::parse(code).map_err(|e| format!("line {n}: {e}"))?;
            if password.is_empty() {
                return Err(format!("line {n}: device {code} has an empty password"));
            }
            let keepalive_secs = match keepalive {
                None | Some("") => None,
                Some(k) => match k.parse::<u32>() {
                    Ok(s) if (1..=86_400).contains(&s) => Some(s),
                    _ => {
                        return Err(format!(
                            "line {n}: keepalive interval {:?} is not a whole number of seconds from 1 to 86400",
                            k.chars().take(20).collect::<String>()
                        ))
                    }
                },
            };
            let entry = DeviceEntry {
                password: password.to_string(),
                keepalive_secs,
            };
            if devices.insert(code, entry).is_some() {
                return Err(format!("line {n}: device {code} is listed twice"));
            }
            if devices.len() > MAX_DEVICES {
                return Err(format!("line {n}: more than {MAX_DEVICES} devices"));
            }
        }
        Ok(DeviceFile { devices })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn lines_give_passwords_and_keepalive_intervals() {
        let f = DeviceFile::parse(
            b"\xEF\xBB\xBF# campus NVRs\n34020000001180000001, s3cret\n\n34020000001320000002,other,30\n",
        )
        .unwrap();
        let a = &f.devices[&GbCode::parse("34020000001180000001").unwrap()];
        assert_eq!((a.password.as_str(), a.keepalive_secs), ("s3cret", None));
        let b = &f.devices[&GbCode::parse("34020000001320000002").unwrap()];
        assert_eq!(b.keepalive_secs, Some(30));
    }

    #[test]
    fn a_bad_line_is_named_and_no_password_is_shown() {
        for (text, says) in [
            ("34020000001180000001\n", "line 1: expected"),
            ("3402000000118000000,pw\n", "line 1: GB/T 28181 code"),
            ("34020000001180000001,\n", "empty password"),
            ("34020000001180000001,hunter2,0\n", "keepalive interval"),
            (
                "34020000001180000001,hunter2\n34020000001180000001,hunter3\n",
                "line 2: device 34020000001180000001 is listed twice",
            ),
        ] {
            let e = DeviceFile::parse(text.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(!e.contains("hunter"), "{e}");
        }
        assert!(DeviceFile::parse(b"a\n\xff\n")
            .unwrap_err()
            .starts_with("line 2"));
        let debug = format!("{:?}", DeviceFile::parse(b"34020000001180000001,hunter2\n"));
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn generated_garbage_is_refused_or_read_never_a_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(28181);
        let seed = b"34020000001180000001,pw,60\n34020000001320000002,x\n";
        for _ in 0..3000 {
            let mut bytes = seed.to_vec();
            for _ in 0..rng.random_range(1..6) {
                let i = rng.random_range(0..bytes.len());
                bytes[i] = rng.random();
            }
            if let Ok(f) = DeviceFile::parse(&bytes) {
                assert!(f.devices.values().all(|d| !d.password.is_empty()));
            }
        }
    }
}
