//! Every ```toml block in the documentation is a configuration that loads.
//!
//! The blocks of `README.md`, `ARCHITECTURE.md` and `docs/*.md` are extracted and each is
//! loaded through the programs' own public loaders — `ServerConfig::load` for the
//! server, `AgentConfig::load_from` for the agent — which parse (unknown keys are errors)
//! and validate, as `campuswatch-server run` and `campuswatch-agent run` would. A block
//! that a reader could paste and have refused fails here, with its file and line.
//!
//! Which program a block is for is said on its fence, after the language:
//!
//! - ```` ```toml server ```` — a server configuration (every key has a default, so any
//!   section of it is a whole file);
//! - ```` ```toml agent ```` — a whole agent configuration (`campus` and `region` set);
//! - ```` ```toml agent fragment ```` — a part of one (a `[[devices]]` entry, the
//!   `[mqtt]` section): the test adds `campus` and `region` before loading it;
//! - ```` ```toml agent server fragment ```` — keys both programs read (`[mqtt]`):
//!   loaded as each.
//!
//! Without a marker the content decides: `campus =`, `region =` or `[[devices]]` make
//! an agent configuration, a server-only section (`[notify]`, `[alerts]`, …) a server
//! one; a block that is neither fails and asks for a marker.
//!
//! Files named by `*_file` keys (`mqtt.ca_file`, `mqtt.client_cert_file`,
//! `mqtt.client_key_file`, `mqtt.embedded.tls_cert_file`, `tls_key_file` and
//! `password_file`, an SMTP channel's `ca_file`) live on the machine the reader
//! installs; the loaders read them. The test points each such key at a certificate (or,
//! for the key files, its private key; for `password_file`, a Mosquitto password file)
//! made here, so the rest of the block is validated as written.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use campuswatch_agent::AgentConfig;
use campuswatch_server::config::ServerConfig;

/// A fenced code block of a Markdown file.
#[derive(Debug)]
struct Block {
    file: String,
    /// 1-based line of the opening fence.
    line: usize,
    /// The words after the fence (`toml`, `agent`, `fragment`, …), lower-cased.
    info: Vec<String>,
    text: String,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    fn has(&self, word: &str) -> bool {
        self.info.iter().skip(1).any(|w| w == word)
    }
}

/// The fenced code blocks of `markdown` (``` or ~~~, also indented inside list items).
fn fenced_blocks(file: &str, markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(char, usize, usize, Block)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None => {
                let Some(fence) = ['`', '~'].into_iter().find(|c| trimmed.starts_with(*c)) else {
                    continue;
                };
                let count = trimmed.chars().take_while(|c| *c == fence).count();
                // A backtick fence's info has no backtick (else it is inline code).
                if count < 3 || (fence == '`' && trimmed[count..].contains('`')) {
                    continue;
                }
                let info = trimmed[count..]
                    .split_whitespace()
                    .map(str::to_lowercase)
                    .collect();
                open = Some((
                    fence,
                    count,
                    indent,
                    Block {
                        file: file.to_string(),
                        line: i + 1,
                        info,
                        text: String::new(),
                    },
                ));
            }
            Some((fence, count, strip, block)) => {
                let closing = trimmed.chars().take_while(|c| c == fence).count();
                if closing >= *count && trimmed[closing..].trim().is_empty() {
                    if let Some((_, _, _, b)) = open.take() {
                        blocks.push(b);
                    }
                    continue;
                }
                // Content keeps its own indentation beyond the fence's.
                let cut = line
                    .char_indices()
                    .take_while(|(j, c)| *j < *strip && *c == ' ')
                    .count();
                block.text.push_str(&line[cut..]);
                block.text.push('\n');
            }
        }
    }
    assert!(
        open.is_none(),
        "{file}: a code block opened at line {} is never closed",
        open.map_or(0, |(_, _, _, b)| b.line)
    );
    blocks
}

/// The Markdown files whose blocks are checked: the root's README and ARCHITECTURE, and
/// every `docs/*.md`.
fn documentation(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md"]
        .iter()
        .map(|f| root.join(f))
        .filter(|p| p.is_file())
        .collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Program {
    Agent,
    Server,
}

/// Sections only the server has (its top-level keys `id` and `data_dir` are checked too).
const SERVER_ONLY: [&str; 10] = [
    "http", "database", "history", "ha", "cluster", "liveness", "coverage", "alerts", "auth",
    "notify",
];

/// Which programs a block is for: its markers, else its content.
fn programs(block: &Block) -> Result<Vec<Program>, String> {
    let mut marked = Vec::new();
    if block.has("agent") {
        marked.push(Program::Agent);
    }
    if block.has("server") {
        marked.push(Program::Server);
    }
    if !marked.is_empty() {
        return Ok(marked);
    }
    let lines: Vec<&str> = block.text.lines().map(str::trim).collect();
    let headers: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with('['))
        .map(|l| l.trim_start_matches('['))
        .collect();
    // Keys before the first table header: `id` inside `[[devices]]` is not the server's.
    let top: Vec<&str> = lines
        .iter()
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let agent = top.iter().any(|k| matches!(*k, "campus" | "region"))
        || headers.iter().any(|h| h.starts_with("devices]]"));
    let server = top.iter().any(|k| matches!(*k, "id" | "data_dir"))
        || headers.iter().any(|h| {
            SERVER_ONLY
                .iter()
                .any(|s| h.starts_with(&format!("{s}]")) || h.starts_with(&format!("{s}.")))
        });
    match (agent, server) {
        (true, false) => Ok(vec![Program::Agent]),
        (false, true) => Ok(vec![Program::Server]),
        _ => Err(format!(
            "cannot tell whether this ```toml block is an agent or a server configuration: \
             write ```toml agent, ```toml server (add `fragment` for a part of an agent's \
             file) on its fence\n{}",
            block.text
        )),
    }
}

/// A certificate and its key, made once, for the blocks' `*_file` keys.
struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    passwd: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let key_pair = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["150102-K-0001".to_string()])
            .unwrap()
            .self_signed(&key_pair)
            .unwrap();
        let (c, k) = (dir.path().join("doc.crt"), dir.path().join("doc.key"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key_pair.serialize_pem()).unwrap();
        // A line as mosquitto_passwd 2.0 writes it.
        let passwd = dir.path().join("mqtt-passwd");
        std::fs::write(&passwd, "150102-K-0001:$7$101$IRwGGO1OX6CA5FOw$lZA/EPragTWrGfxNB26AwlQYK62RaUzC43wPsujWxJ+DQYFuLnFNG0oSRCiru5Nslcibb8iZ57ycP9/fls/oug==\n").unwrap();
        Files {
            _dir: dir,
            cert: c,
            key: k,
            passwd,
        }
    }

    /// `text` with the value of every `*_file = "…"` key replaced by a file made here.
    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            let replaced = trimmed.split_once('=').and_then(|(key, value)| {
                let key = key.trim();
                let value = value.trim_start();
                if !key.ends_with("_file") || !value.starts_with('"') {
                    return None;
                }
                // Keep a trailing comment; the value is one basic string.
                let end = value[1..].find('"')? + 2;
                let path = match key {
                    "client_key_file" | "tls_key_file" => &self.key,
                    "password_file" => &self.passwd,
                    _ => &self.cert,
                };
                let indent = &line[..line.len() - trimmed.len()];
                Some(format!(
                    "{indent}{key} = {:?}{}",
                    path.display().to_string(),
                    &value[end..]
                ))
            });
            out.push_str(replaced.as_deref().unwrap_or(line));
            out.push('\n');
        }
        out
    }
}

/// The campus and region an agent fragment is completed with.
const AGENT_HEAD: &str = "campus = \"150102-K-0001\"\nregion = \"150102\"\n";

fn load(block: &Block, program: Program, files: &Files) -> Result<(), String> {
    let mut text = files.substitute(&block.text);
    if program == Program::Agent && block.has("fragment") {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let sets = |k: &str| {
            lines.iter().any(|l| {
                l.strip_prefix(k)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
        };
        if !sets("campus") && !sets("region") {
            text = format!("{AGENT_HEAD}{text}");
        }
    }
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    match program {
        // The environment is handed in empty: a CAMPUSWATCH__… variable of the machine
        // running the tests must not decide whether the documentation is right.
        Program::Agent => AgentConfig::load_from(file.path(), Some(Default::default()))
            .map(drop)
            .map_err(|e| format!("as an agent configuration: {e}")),
        Program::Server => ServerConfig::load(Some(file.path()))
            .map(drop)
            .map_err(|e| format!("as a server configuration: {e}")),
    }
    .map_err(|e| format!("{e}\n--- the block as loaded:\n{text}"))
}

#[test]
fn every_toml_block_in_the_documentation_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = Files::new();
    let mut checked = 0;
    let mut failures = String::new();
    for path in documentation(&root) {
        let markdown = std::fs::read_to_string(&path).unwrap();
        let name = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        for block in fenced_blocks(&name, &markdown) {
            if block.info.first().map(String::as_str) != Some("toml") {
                continue;
            }
            match programs(&block) {
                Err(e) => {
                    let _ = writeln!(failures, "{}: {e}\n", block.at());
                }
                Ok(programs) => {
                    for program in programs {
                        checked += 1;
                        if let Err(e) = load(&block, program, &files) {
                            let _ = writeln!(failures, "{}: {e}\n", block.at());
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "documentation blocks that do not load:\n\n{failures}"
    );
    // The docs hold several (the broker settings, a discovered camera, notification
    // channels, the configuration examples); none found means the search is broken.
    assert!(
        checked >= 4,
        "only {checked} ```toml blocks were found and loaded"
    );
    eprintln!("{checked} configuration blocks loaded");
}

#[test]
fn blocks_are_found_with_their_markers_and_indentation() {
    let md = "text\n\n```toml agent fragment\n[[devices]]\nid = \"a\"\n```\n\n- item\n\n  ```toml\n  [http]\n  listen = \"x\"\n  ```\n\n````md\n```toml\nnot a block\n```\n````\n";
    let blocks = fenced_blocks("t.md", md);
    assert_eq!(blocks.len(), 3, "{blocks:?}");
    assert_eq!(blocks[0].line, 3);
    assert_eq!(blocks[0].info, ["toml", "agent", "fragment"]);
    assert!(blocks[0].has("fragment") && blocks[0].has("agent") && !blocks[0].has("server"));
    assert_eq!(blocks[1].text, "[http]\nlisten = \"x\"\n");
    assert_eq!(programs(&blocks[1]).unwrap(), [Program::Server]);
    assert_eq!(blocks[2].info, ["md"]);
    assert_eq!(blocks[2].text, "```toml\nnot a block\n```\n");
    let ambiguous = &fenced_blocks("t.md", "```toml\n[mqtt]\nurl = \"mqtt://x\"\n```\n")[0];
    assert!(programs(ambiguous).is_err());
    let device = &fenced_blocks("t.md", "```toml\n[[devices]]\nid = \"cam\"\n```\n")[0];
    assert_eq!(programs(device).unwrap(), [Program::Agent]);
    let server = &fenced_blocks(
        "t.md",
        "```toml\nid = \"hohhot\"\n[mqtt]\nregions = []\n```\n",
    )[0];
    assert_eq!(programs(server).unwrap(), [Program::Server]);
}

#[test]
fn file_keys_point_at_files_made_by_the_test() {
    let files = Files::new();
    let text = "[mqtt]\nca_file = \"/etc/x.crt\"   # the CA\nclient_key_file = \"/etc/k.key\"\nurl = \"mqtts://b\"\n";
    let out = files.substitute(text);
    assert!(
        out.contains(&format!(
            "ca_file = {:?}   # the CA",
            files.cert.display().to_string()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "client_key_file = {:?}",
            files.key.display().to_string()
        )),
        "{out}"
    );
    assert!(out.contains("url = \"mqtts://b\""), "{out}");
}
