//! Where in a TOML config file a problem is, so that a refused configuration reads
//! `/etc/campuswatch/agent.toml:12: devices[1].probe.target: …` — the form editors and
//! `journalctl` readers jump to.
//!
//! The programs load their configuration with the `config` crate (defaults, file,
//! environment), whose errors for wrong types and unknown keys carry no position. These
//! helpers find one from the file's text: [`file_problem`] re-reads the file alone with
//! the `toml` crate, whose errors carry spans; [`line_of_key`] finds the line of a key
//! path such as `devices[2].probe.url` that validation named.

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

/// A problem found in the file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, without the position.
    pub message: String,
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // `offset` may fall inside a character: count up to that character's start.
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The first problem of `text` as a `T`, with its position: a TOML syntax error, or a
/// wrong type, unknown key or bad value that the `toml` deserializer can place. `None`
/// when the file is fine as a `T`, or its only problem has no place in it (a missing key,
/// which the environment may still supply).
pub fn file_problem<T: DeserializeOwned>(text: &str) -> Option<Problem> {
    let err = match toml::from_str::<T>(text) {
        Ok(_) => return None,
        Err(e) => e,
    };
    let span = err.span()?;
    let message = err.message().trim().to_string();
    if message.starts_with("missing field") {
        return None;
    }
    let (line, column) = line_col(text, span.start);
    Some(Problem {
        line,
        column,
        message,
    })
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `devices[2].probe.url` → `devices`, `2`, `probe`, `url`.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            let (key, indexes) = rest.split_at(open);
            if !key.is_empty() {
                out.push(Step::Key(key));
            }
            rest = indexes;
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                match stripped[..close].parse() {
                    Ok(i) => out.push(Step::Index(i)),
                    Err(_) => return out,
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Step::Key(rest));
        }
    }
    out
}

/// The 1-based line of `path` (`mqtt.url`, `devices[1].probe.target`) in the TOML
/// `text`: of the key itself, or of the deepest part of the path the file has (the
/// `[[devices]]` table when the key is missing from it). `None` when the file has none
/// of it, or does not parse.
pub fn line_of_key(text: &str, path: &str) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut found: Option<usize> = None;
    let mut steps = steps(path).into_iter().peekable();
    while let Some(step) = steps.next() {
        let Step::Key(key) = step else {
            return found;
        };
        let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == key) else {
            return found;
        };
        found = Some(line_col(text, k.span().start).0);
        let mut value = v;
        // Indexes into arrays (of tables) that follow the key.
        while let Some(Step::Index(i)) = steps.peek() {
            let i = *i;
            steps.next();
            let Some(item) = value.get_ref().as_array().and_then(|a| a.get(i)) else {
                return found;
            };
            found = Some(line_col(text, item.span().start).0);
            value = item;
        }
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return found,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "campus = \"c1\"\nregion = \"150102\"\n\n[mqtt]\nurl = \"mqtt://x\"\n\n\
                        [[devices]]\nid = \"a\"\nprobe = { type = \"tcp\", target = \"h:1\" }\n\n\
                        [[devices]]\nid = \"b\"\n\nprobe = { type = \"tcp\", target = \"h\" }\n";

    #[test]
    fn a_key_path_is_found_on_its_line() {
        assert_eq!(line_of_key(FILE, "region"), Some(2));
        assert_eq!(line_of_key(FILE, "mqtt.url"), Some(5));
        assert_eq!(line_of_key(FILE, "devices[0].id"), Some(8));
        assert_eq!(line_of_key(FILE, "devices[1].probe.target"), Some(14));
    }

    #[test]
    fn a_missing_key_points_at_the_deepest_part_the_file_has() {
        // The second [[devices]] table has no `kind`: its own table's line or below.
        let line = line_of_key(FILE, "devices[1].kind").unwrap();
        assert!((11..=12).contains(&line), "{line}");
        assert_eq!(line_of_key(FILE, "mqtt.keepalive"), Some(4));
        assert_eq!(line_of_key(FILE, "heartbeat_interval"), None);
        assert_eq!(line_of_key(FILE, "devices[7].id"), Some(7));
        assert_eq!(line_of_key("not toml [", "campus"), None);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        campus: String,
        #[serde(default)]
        port: u16,
    }

    #[test]
    fn problems_in_the_file_are_placed() {
        let p = file_problem::<Cfg>("campus = \"c\"\nport = \"x\"\n").unwrap();
        assert_eq!((p.line, p.column), (2, 8));
        assert!(
            p.message.contains("u16") || p.message.contains("integer"),
            "{p:?}"
        );

        let p = file_problem::<Cfg>("campus = \"c\"\n\nprot = 1\n").unwrap();
        assert_eq!(p.line, 3);
        assert!(p.message.contains("prot"), "{p:?}");

        let p = file_problem::<Cfg>("campus = \"c\nport = 1\n").unwrap();
        assert_eq!(p.line, 1);

        // Fine, or only missing something the environment may give: no problem here.
        assert_eq!(file_problem::<Cfg>("campus = \"c\"\n"), None);
        assert_eq!(file_problem::<Cfg>("port = 1\n"), None);
    }

    #[test]
    fn lines_and_columns_count_characters_not_bytes() {
        assert_eq!(line_col("校园\nab", 7), (2, 1));
        assert_eq!(line_col("校园\nab", 8), (2, 2));
        assert_eq!(line_col("校园", 4), (1, 2));
        assert_eq!(line_col("", 10), (1, 1));
    }
}
