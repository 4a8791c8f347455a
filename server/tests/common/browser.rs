//! A real headless Chromium driven over the W3C WebDriver protocol by Debian's
//! `chromedriver` (both installed by `.ci/run`): the console's click-through tests load
//! pages, click, type and read the DOM the way a user's browser does.
//!
//! Without Chromium and ChromeDriver the tests say so and pass on a developer's machine;
//! in CI (`CI` set) they fail.

use std::time::{Duration, Instant};

use campuswatch_testkit::webdriver::Session;

use serde_json::{json, Value};

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const DRIVER: &[&str] = &["/usr/bin/chromedriver"];
/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(15);

fn installed(candidates: &[&'static str]) -> Option<&'static str> {
    candidates
        .iter()
        .copied()
        .find(|p| std::path::Path::new(p).exists())
}

/// Chromium's path, or None outside CI when it is not installed.
pub fn chromium() -> Option<&'static str> {
    let found = installed(CHROMIUM);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Chromium is not installed: .ci/run must install Debian's chromium"
        );
        eprintln!("Chromium not installed: console browser test not run (see .ci/run)");
    }
    found
}

pub struct Browser {
    session: Session,
}

impl Browser {
    /// Starts ChromeDriver on a free port and a headless Chromium session in a fresh
    /// profile. None outside CI when either is not installed.
    pub async fn start() -> Option<Browser> {
        let chromium = chromium()?;
        let Some(driver_bin) = installed(DRIVER) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "ChromeDriver is not installed: .ci/run must install Debian's chromium-driver"
            );
            eprintln!("ChromeDriver not installed: console click-through test not run");
            return None;
        };
        let session = Session::start(chromium, driver_bin, &["--window-size=1280,900".into()])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Some(Browser { session })
    }

    /// A WebDriver command: its value, or its error's name and message.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (String, Value)> {
        self.session.request(method, path, body).await
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.request(method, path, body)
            .await
            .unwrap_or_else(|(err, message)| panic!("WebDriver {path}: {err}: {message}"))
    }

    /// Acts on the element matching `css` (`action` is the command after its id), finding
    /// it again when the page redrew it in between, as a live refresh does.
    async fn act(&self, css: &str, action: &str, body: Value) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let id = self.find(css).await;
            let path = format!("/element/{id}/{action}");
            match self
                .request(reqwest::Method::POST, &path, Some(body.clone()))
                .await
            {
                Ok(_) => return,
                Err((err, _)) if err == "stale element reference" && Instant::now() < deadline => {}
                Err((err, message)) => panic!("WebDriver {path} ({css}): {err}: {message}"),
            }
        }
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// GETs an API path from the page, as the signed-in user: (status, JSON body).
    pub async fn fetch(&self, path: &str) -> (u16, Value) {
        let v = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({
                    "script": "const done = arguments[arguments.length - 1];
                        fetch(arguments[0], { credentials: 'same-origin' })
                          .then(r => r.json().then(j => done([r.status, j]), () => done([r.status, null])))
                          .catch(e => done([0, String(e)]));",
                    "args": [path],
                })),
            )
            .await;
        (v[0].as_u64().unwrap_or(0) as u16, v[1].clone())
    }

    /// Waits until the first element matching `css` exists and is shown.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self
                .eval(
                    "const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0;",
                    json!([css]),
                )
                .await;
            if found == json!(true) {
                let v = self
                    .call(
                        reqwest::Method::POST,
                        "/element",
                        Some(json!({ "using": "css selector", "value": css })),
                    )
                    .await;
                return v[ELEMENT].as_str().unwrap().to_string();
            }
            if Instant::now() > deadline {
                panic!(
                    "no element {css} was shown; the page holds:\n{}",
                    self.text("body").await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element matching `css` (once it is shown), as a user's pointer does. A
    /// live refresh may redraw it between finding and clicking: then it is found again.
    pub async fn click(&self, css: &str) {
        self.act(css, "click", json!({})).await;
    }

    /// Types `text` into the field matching `css`, key by key.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.act(css, "value", json!({ "text": text })).await;
    }

    /// The text a user sees in the first element matching `css` ("" if there is none).
    pub async fn text(&self, css: &str) -> String {
        self.eval(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> u64 {
        self.eval(
            "return document.querySelectorAll(arguments[0]).length;",
            json!([css]),
        )
        .await
        .as_u64()
        .unwrap_or_default()
    }

    /// Waits until `n` elements match `css`.
    pub async fn wait_for_count(&self, css: &str, n: u64) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = self.count(css).await;
            if got == n {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{css}: {got} elements, not {n}; the page holds:\n{}",
                    self.text("body").await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the element matching `css` shows text containing `wanted`, and
    /// returns its whole text.
    pub async fn wait_for_text(&self, css: &str, wanted: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.text(css).await;
            if text.contains(wanted) {
                return text;
            }
            if Instant::now() > deadline {
                panic!("{css} never showed {wanted:?}; it shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The console's address bar.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Renders the page for `media` ("print", or "" for the screen again), as the print
    /// dialog and print to PDF do, through Chromium's DevTools protocol.
    pub async fn emulate_media(&self, media: &str) {
        self.cdp("Emulation.setEmulatedMedia", json!({ "media": media }))
            .await;
    }

    /// Runs a command of Chromium's DevTools protocol (`Emulation.setTimezoneOverride`…).
    pub async fn cdp(&self, cmd: &str, params: Value) {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
        .await;
    }

    /// Sizes the window (CSS pixels), as a 1440×900 screen or a 390×844 phone.
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// Writes what the window shows now to `name`.png in the folder a person looks at
    /// (`CAMPUSWATCH_SCREENSHOTS`, else `target/screenshots`), and whether the page
    /// scrolls sideways (which it must not, on any screen).
    pub async fn screenshot(&self, name: &str) -> bool {
        use base64::Engine;
        let dir = std::env::var_os("CAMPUSWATCH_SCREENSHOTS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
            });
        std::fs::create_dir_all(&dir).expect("the screenshots folder");
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a PNG in base64");
        std::fs::write(dir.join(format!("{name}.png")), bytes).expect("the screenshot written");
        self.eval(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
            json!([]),
        )
        .await
            == json!(true)
    }

    /// Whether the first element matching `css` is laid out (shown) now.
    pub async fn shown(&self, css: &str) -> bool {
        self.eval(
            "const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0;",
            json!([css]),
        )
        .await
            == json!(true)
    }

    /// How many page loads the browser has done since this page's own load (the
    /// console's links must not reload).
    pub async fn page_marker(&self, set: bool) -> Value {
        if set {
            self.eval("window.__cwMarker = 1; return 1;", json!([]))
                .await
        } else {
            self.eval("return window.__cwMarker || null;", json!([]))
                .await
        }
    }
}
