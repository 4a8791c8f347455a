//! The console in a real browser: headless Chromium (Debian's `chromium`, which `.ci/run`
//! installs) loads it from a running server with a seeded registry, runs its script and
//! shows the right figures, in Chinese by default and in English when asked.
//!
//! Without Chromium the test says so and passes on a developer's machine; in CI (`CI`
//! set) it fails.

mod common;

use std::process::Command;

use campuswatch_protocol::{CampusId, RegionCode, SchoolType};
use campuswatch_server::registry::RegistryEntry;

fn chromium() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Chromium is not installed: .ci/run must install Debian's chromium"
        );
        eprintln!("Chromium not installed: console browser test not run (see .ci/run)");
    }
    found
}

/// The page's DOM after its script ran, as Chromium renders it.
fn rendered(browser: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--virtual-time-budget=5000",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            url,
        ])
        .output()
        .expect("Chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn entry(id: &str, region: &str, school_type: SchoolType) -> RegistryEntry {
    RegistryEntry {
        campus: CampusId::parse(id).unwrap(),
        name: format!("{id} 幼儿园"),
        region: RegionCode::parse(region).unwrap(),
        school_type,
        expected_alarms: 1,
        expected_cameras: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_registered_figures_in_chinese_and_in_english() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::local_config(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(cfg, listener).await.unwrap();
    server
        .import_registry(
            vec![
                entry("k-1", "150102", SchoolType::Kindergarten),
                entry("k-2", "150102", SchoolType::Kindergarten),
                entry("p-1", "150203", SchoolType::Primary),
            ],
            false,
        )
        .await
        .unwrap();
    let base = format!("http://{}", server.http_addr());

    let browser = browser.to_string();
    // A still snapshot: an open live stream would keep the page loading forever.
    let url = format!("{base}/console?live=off");
    let zh = tokio::task::spawn_blocking({
        let (b, u) = (browser.clone(), url.clone());
        move || rendered(&b, &u)
    })
    .await
    .unwrap();
    assert!(zh.contains("<h2 id=\"area\">全部地区</h2>"), "{zh}");
    assert!(
        zh.contains("data-figure=\"registered\"><span>登记</span><b>3</b>"),
        "{zh}"
    );
    assert!(
        zh.contains("data-figure=\"reporting\"><span>在线上报</span><b>0</b>"),
        "{zh}"
    );

    // The county's page, in English: its two kindergartens, neither reporting.
    let en = tokio::task::spawn_blocking(move || {
        rendered(&browser, &format!("{url}&lang=en&region=150102"))
    })
    .await
    .unwrap();
    assert!(en.contains("<span>Registered</span><b>2</b>"), "{en}");
    assert!(
        en.contains("k-1 幼儿园") && en.contains("k-2 幼儿园"),
        "{en}"
    );
    assert!(!en.contains("p-1 幼儿园"), "another county's campus: {en}");
    assert!(en.contains(">Dropped links now<"), "{en}");
    server.stop().await;
}
