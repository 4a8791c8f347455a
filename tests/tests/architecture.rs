//! The shape of the code: within each crate, the top-level modules depend on each other
//! without a cycle, so each can be read (and changed) knowing only the ones below it.
//!
//! A module's dependencies are the `crate::name` paths in its files, outside comments and
//! test code (files named `tests.rs` or under a `tests/` folder, `test_*.rs` fixtures, and
//! `#[cfg(test)] mod tests` blocks). Reading the source as text is deliberate: the check
//! needs no tool beyond the test itself, and a path written out is how Rust code names
//! what it uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 5] = ["protocol", "mqtt", "service", "agent", "server"];

/// Every `.rs` file below `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn is_test_code(rel: &Path) -> bool {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name == "tests.rs"
        || name.starts_with("test_")
        || rel.components().any(|c| c.as_os_str() == "tests")
}

/// The source without comments and without its `#[cfg(test)] mod tests` block.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names following each `crate::` in `code`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .map(|(i, _)| {
            code[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// Each top-level module of the crate whose sources are in `src`, with the other
/// top-level modules it names.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files(src) {
        let rel = file.strip_prefix(src).expect("below src").to_path_buf();
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_string();
        if ["lib", "main", "bin"].contains(&top.as_str()) {
            continue;
        }
        let deps = graph.entry(top.clone()).or_default();
        if is_test_code(&rel) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        deps.extend(crate_paths(&code(&text)).into_iter().filter(|d| *d != top));
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    graph
}

/// A cycle through `graph`, if there is one, as the modules along it.
fn a_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for d in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, graph, done, path) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(m, graph, &mut done, &mut Vec::new()))
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in CRATES {
        let graph = module_graph(&root.join(krate).join("src"));
        assert!(graph.len() >= 2, "{krate}: modules found: {graph:?}");
        if let Some(cycle) = a_cycle(&graph) {
            panic!(
                "{krate}: the modules {} depend on each other in a circle; move what they \
                 share below them (the whole graph: {graph:#?})",
                cycle.join(" → ")
            );
        }
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_only_a_cycle() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(a_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    assert_eq!(
        a_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        crate_paths(&code(
            "use crate::x::Y; // crate::z\nfn f() { crate::w::g() }"
        )),
        BTreeSet::from(["x".to_string(), "w".to_string()])
    );
}
