//! The web console, served from the binary itself: every page, script and style is
//! compiled in, so it works in a closed network with nothing fetched from outside.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/console.js");
const STYLE: &str = include_str!("../console/console.css");

/// The console's routes: `/console` (and any page below it, which the script draws),
/// its assets, and `/` leading there.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/assets/console.js", get(script))
        .route("/console/assets/console.css", get(style))
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

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_fetches_nothing_from_outside_the_server() {
        for (name, text) in [
            ("index.html", INDEX),
            ("console.js", SCRIPT),
            ("console.css", STYLE),
        ] {
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
        assert!(INDEX.contains("/console/assets/console.js"));
        assert!(INDEX.contains("/console/assets/console.css"));
    }

    #[test]
    fn every_text_the_console_shows_exists_in_both_languages() {
        let keys = |lang: &str| -> Vec<String> {
            let start = SCRIPT.find(&format!("\"{lang}\": {{")).unwrap();
            let block = &SCRIPT[start..start + SCRIPT[start..].find("},").unwrap()];
            block
                .split(", ")
                .flat_map(|p| p.split('\n'))
                .filter_map(|p| p.trim().strip_prefix('"'))
                .filter_map(|p| p.split_once("\": ").map(|(k, _)| k.to_string()))
                .filter(|k| k != lang)
                .collect()
        };
        let (mut zh, mut en) = (keys("zh"), keys("en"));
        zh.sort();
        en.sort();
        assert_eq!(zh, en);
        for used in INDEX.split("data-t=\"").skip(1) {
            let key = &used[..used.find('"').unwrap()];
            assert!(zh.iter().any(|k| k == key), "{key} has no text");
        }
    }
}
