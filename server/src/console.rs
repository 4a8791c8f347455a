//! The web console, served from the binary itself: every page, script and style is
//! compiled in, so it works in a closed network with nothing fetched from outside.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../console/index.html");
const STYLE: &str = include_str!("../console/console.css");

/// The scripts: the core first, then one per page (each registers itself with the core).
const SCRIPTS: &[(&str, &str)] = &[
    ("console.js", include_str!("../console/console.js")),
    ("causes.js", include_str!("../console/causes.js")),
    ("overview.js", include_str!("../console/pages/overview.js")),
    ("alarms.js", include_str!("../console/pages/alarms.js")),
    ("wall.js", include_str!("../console/pages/wall.js")),
    ("campus.js", include_str!("../console/pages/campus.js")),
    ("platform.js", include_str!("../console/pages/platform.js")),
    ("trend.js", include_str!("../console/pages/trend.js")),
    ("registry.js", include_str!("../console/pages/registry.js")),
    ("reports.js", include_str!("../console/pages/reports.js")),
    ("access.js", include_str!("../console/pages/access.js")),
    ("audit.js", include_str!("../console/pages/audit.js")),
];

/// The console's routes: `/console` (and any page below it, which the script draws),
/// its assets, and `/` leading there.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/assets/console.css", get(style))
        .route("/console/assets/{script}", get(script))
        .route("/console/{*page}", get(index))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            // Pages may change with an upgrade; revalidate rather than cache for long.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    let mut r = asset("text/html; charset=utf-8", INDEX);
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        axum::http::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    r
}

async fn script(Path(name): Path<String>) -> Response {
    if let Some((_, body)) = SCRIPTS.iter().find(|(n, _)| *n == name) {
        return asset("text/javascript; charset=utf-8", body);
    }
    if name == "regions.json" {
        // Every division's names, for the console to show them in either language.
        let json = serde_json::to_string(
            &crate::regions::RegionNames::builtin()
                .iter()
                .collect::<Vec<_>>(),
        )
        .unwrap_or_else(|_| "[]".into());
        let mut r = asset("application/json", "");
        *r.body_mut() = json.into();
        return r;
    }
    // A province's tile map: `tiles-150000.json`.
    let tiles = name
        .strip_prefix("tiles-")
        .and_then(|rest| rest.strip_suffix(".json"))
        .and_then(crate::regions::tiles);
    match tiles.and_then(|t| serde_json::to_string(&t).ok()) {
        Some(json) => {
            let mut r = asset("application/json", "");
            *r.body_mut() = json.into();
            r
        }
        None => (StatusCode::NOT_FOUND, "no such console asset").into_response(),
    }
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_code_is_said_in_both_languages_and_documented() {
        let causes = SCRIPTS.iter().find(|(n, _)| *n == "causes.js").unwrap().1;
        let (zh, en) = causes.split_once("  en: {").unwrap();
        let protocol = include_str!("../../docs/PROTOCOL.md");
        for (code, params) in campuswatch_protocol::CAUSE_CODES {
            let key = format!("\"{code}\":");
            assert!(zh.contains(&key), "{code} has no Chinese text");
            assert!(en.contains(&key), "{code} has no English text");
            assert!(
                protocol.contains(&format!("`{code}`")),
                "{code} is not in PROTOCOL.md"
            );
            // Each parameter the text names is one the code has.
            for text in [zh, en] {
                let line = text[text.find(&key).unwrap()..].lines().next().unwrap();
                for name in line.split('{').skip(1).filter_map(|s| s.split_once('}')) {
                    let name = name.0;
                    assert!(
                        params.contains(&name) || (name == "s" && params.contains(&"ms")),
                        "{code}'s text names {{{name}}}, not one of {params:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_console_fetches_nothing_from_outside_the_server() {
        let files = [("index.html", INDEX), ("console.css", STYLE)]
            .into_iter()
            .chain(SCRIPTS.iter().copied());
        for (name, text) in files {
            for needle in [
                "http://",
                "https://",
                "//cdn",
                "@import",
                "fonts.googleapis",
            ] {
                assert!(!text.contains(needle), "{name} refers to {needle}");
            }
        }
        assert!(INDEX.contains("/console/assets/console.css"));
        // Every script is loaded by the page, the core first.
        let loaded: Vec<&str> = INDEX
            .split("<script src=\"/console/assets/")
            .skip(1)
            .map(|s| &s[..s.find('"').unwrap()])
            .collect();
        let served: Vec<&str> = SCRIPTS.iter().map(|(n, _)| *n).collect();
        assert_eq!(loaded, served);
    }

    #[test]
    fn no_two_scripts_declare_the_same_top_level_name() {
        // The scripts share the page's global scope: a `const` declared twice stops the
        // second script (its page is then missing), a `function` declared twice silently
        // replaces the first.
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (file, script) in SCRIPTS {
            for line in script.lines() {
                let rest = ["const ", "let ", "function ", "async function ", "class "]
                    .iter()
                    .find_map(|k| line.strip_prefix(k));
                let Some(rest) = rest else { continue };
                let name = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                    .next()
                    .unwrap_or_default();
                if let Some((other, _)) = seen.iter().find(|(_, n)| *n == name) {
                    panic!("{name} is declared in both {other} and {file}");
                }
                seen.push((file, name));
            }
        }
    }

    /// The keys of one language's block in a `texts({ "zh": {...}, "en": {...} })` call.
    fn keys(script: &str, lang: &str) -> Vec<String> {
        let Some(start) = script.find(&format!("\"{lang}\": {{\n")) else {
            return Vec::new();
        };
        let block = &script[start..start + script[start..].find("},").unwrap()];
        let mut keys: Vec<String> = block
            .split(", ")
            .flat_map(|p| p.split('\n'))
            .filter_map(|p| p.trim().strip_prefix('"'))
            .filter_map(|p| p.split_once("\": ").map(|(k, _)| k.to_string()))
            .filter(|k| k != lang)
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn every_text_the_console_shows_exists_in_both_languages() {
        let mut all = Vec::new();
        for (name, script) in SCRIPTS {
            let (zh, en) = (keys(script, "zh"), keys(script, "en"));
            assert_eq!(zh, en, "{name}: the two languages differ");
            all.extend(zh);
        }
        for used in INDEX.split("data-t=\"").skip(1) {
            let key = &used[..used.find('"').unwrap()];
            assert!(all.iter().any(|k| k == key), "{key} has no text");
        }
        // Keys given to t("…") in the scripts exist too.
        for (name, script) in SCRIPTS {
            for (at, _) in script.match_indices("t(\"") {
                let before = script[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue; // another function whose name ends in t
                }
                let used = &script[at + 3..];
                let end = used.find('"').unwrap();
                let key = &used[..end];
                // t("kind-" + kind): some texts start so.
                let prefix = used[end + 1..].trim_start().starts_with('+');
                assert!(
                    all.iter()
                        .any(|k| k == key || (prefix && k.starts_with(key))),
                    "{name}: {key} has no text"
                );
            }
        }
    }
}
