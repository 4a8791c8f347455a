//! The video platform (GB/T 28181) in the console, in a real headless Chromium: a campus
//! whose cameras are up on campus but not on the platform, one whose agent is blind to
//! cameras the platform sees, one without an agent, a device no campus lists, and one
//! without GB/T 28181 at all. The campus page shows both views with the disagreement
//! banner and the devices with their channels; the platform page lists the disagreements
//! worst first and the devices with those for review; the overview shows both video
//! figures only where the platform is used; a platform alarm and an offline device read
//! in both languages; pages follow live changes. Screenshots at 1440×900 and 390 wide.
//!
//! Without Chromium the tests say so and pass on a developer's machine; in CI (`CI` set)
//! they fail.

mod common;

use std::time::Duration;

use campuswatch_protocol::{DeviceKind, DeviceState, SchoolType};
use campuswatch_server::gb28181::{AlarmInfo, ChannelInfo, ChannelStatus, GbInput};
use campuswatch_server::testing::entry;
use campuswatch_testkit::device;
use common::browser::Browser;
use serde_json::json;

/// Campus A: both cameras up on campus, one of its NVR's two channels ON.
const A: &str = "150102-P-0001";
const NVR_A: &str = "15010200001180000001";
/// Campus B: no agent; its NVR registered, later unregistered.
const B: &str = "150102-K-0002";
const NVR_B: &str = "15010200001180000002";
/// Campus C: its camera down on campus, its channel ON on the platform.
const C: &str = "150103-S-0003";
const NVR_C: &str = "15010300001180000003";
/// Campus D: no GB/T 28181 codes, in a county of its own.
const D: &str = "150104-P-0004";
/// Registered, listed by no campus.
const STRAY: &str = "15010200001180000077";
/// Registered while the devices list is open.
const LATE: &str = "15010500001180000088";

fn catalog(device: &str, channels: &[(&str, &str, bool)]) -> GbInput {
    GbInput::Catalog {
        device: common::gb_code(device),
        channels: channels
            .iter()
            .map(|(id, name, on)| ChannelInfo {
                id: common::gb_code(id),
                name: Some(name.to_string()),
                manufacturer: Some("Hikvision".into()),
                model: None,
                status: if *on {
                    ChannelStatus::On
                } else {
                    ChannelStatus::Off
                },
                parent: None,
            })
            .collect(),
        complete: true,
    }
}

/// Loads `page` as a still snapshot and writes its screenshots at 1440×900 and 390×844
/// as `gb-{name}-{lang}-{screen}.png`, and after clicking `before` (if given) as
/// `gb-{name}-open-…`; none may scroll sideways.
async fn screenshots(b: &Browser, base: &str, page: &str, name: &str, before: Option<&str>) {
    for lang in ["zh", "en"] {
        for (w, h, screen) in [(1440, 900, "screen"), (390, 844, "phone")] {
            b.resize(w, h).await;
            let sep = if page.contains('?') { '&' } else { '?' };
            b.goto(&format!("{base}/console/{page}{sep}live=off&lang={lang}"))
                .await;
            b.find("body[data-ready='1']").await;
            let shot = format!("gb-{name}-{lang}-{screen}");
            assert!(!b.screenshot(&shot).await, "{shot} scrolls sideways");
            // Then with that opened (scrolled to, as a click does).
            if let Some(css) = before {
                b.click(css).await;
                b.find(".gb-channels table").await;
                let shot = format!("gb-{name}-open-{lang}-{screen}");
                assert!(!b.screenshot(&shot).await, "{shot} scrolls sideways");
            }
        }
    }
    b.resize(1440, 900).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_both_views_of_video_where_they_disagree_and_the_platform_devices() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Alerts at once: the alarm centre must show the device going offline.
    let server = common::start(common::alerts_at_once(dir.path())).await;
    server
        .import_registry(
            vec![
                entry(A, "150102", SchoolType::Primary, 1, 2)
                    .named("新城区实验小学")
                    .with_gb(&[NVR_A]),
                entry(B, "150102", SchoolType::Kindergarten, 1, 1)
                    .named("新城区第二幼儿园")
                    .with_gb(&[NVR_B]),
                entry(C, "150103", SchoolType::Secondary, 1, 1)
                    .named("回民区第三中学")
                    .with_gb(&[NVR_C]),
                entry(D, "150104", SchoolType::Primary, 1, 1).named("玉泉区第四小学"),
            ],
            false,
        )
        .await
        .unwrap();
    let base = format!("http://{}", server.http_addr());
    let broker = common::broker_addr(&server);
    // The agents of A, C and D: each an alarm up and its cameras as given.
    let mut agents = Vec::new();
    for (campus, county, cameras) in [
        (A, "150102", &[DeviceState::Up, DeviceState::Up][..]),
        (C, "150103", &[DeviceState::Down]),
        (D, "150104", &[DeviceState::Up]),
    ] {
        let mut devices = vec![device("alarm-1", DeviceKind::Alarm, DeviceState::Up)];
        for (i, state) in cameras.iter().enumerate() {
            devices.push(device(
                &format!("cam-{}", i + 1),
                DeviceKind::Camera,
                *state,
            ));
        }
        agents.push(common::gateway(broker, campus, county, devices).await);
    }
    for input in [
        common::gb_registered(NVR_A),
        catalog(
            NVR_A,
            &[
                ("15010200001320000001", "校门口", true),
                ("15010200001320000002", "操场", false),
            ],
        ),
        common::gb_registered(NVR_B),
        catalog(NVR_B, &[("15010200001320000011", "大门", true)]),
        common::gb_registered(NVR_C),
        catalog(NVR_C, &[("15010300001320000021", "教学楼", true)]),
        common::gb_registered(STRAY),
        GbInput::Alarm {
            device: common::gb_code(NVR_A),
            alarm: AlarmInfo {
                source: common::gb_code("15010200001320000001"),
                priority: Some(1),
                method: Some(2),
                alarm_type: None,
                time: None,
                description: Some("一键报警按钮被按下".into()),
            },
        },
    ] {
        server.gb_input(input).await;
    }
    let monitor = server.monitor.clone();
    campuswatch_testkit::wait_until("both disagreements", Duration::from_secs(10), async || {
        let m = monitor.read().unwrap();
        let v = m.coverage().total(None, None);
        m.gb_devices().len() == 4 && v.uplink_broken == 1 && v.agent_blind == 1
    })
    .await;

    // ---- the campus page: both views, the banner, the devices and their channels ----
    b.goto(&format!("{base}/console/campus/{A}")).await;
    let platform = b.wait_for_text("#platform", "视频平台 (GB/T 28181)").await;
    assert_eq!(
        b.text("#platform-disagreement").await,
        "摄像机在校内正常，但平台上离线：上联或平台注册故障"
    );
    let agent = b.text("[data-view=agent]").await;
    assert!(
        agent.contains("视频已联网") && agent.contains("摄像机 2 / 2 路正常"),
        "{agent}"
    );
    let seen = b.text("[data-view=platform]").await;
    assert!(
        seen.contains("视频未联网") && seen.contains("摄像机通道 1 / 2 路在线 (ON)"),
        "{seen}"
    );
    // The platform's view is in force, and says so.
    assert!(
        seen.contains("以此为准") && !agent.contains("以此为准"),
        "{platform}"
    );
    assert!(b
        .text("#platform-in-force")
        .await
        .contains("按视频平台所见计算"));
    let row = b.text(&format!("tr[data-gb-device='{NVR_A}']")).await;
    for part in [NVR_A, "在线", "10.20.3.4:5060", "UDP", "1 / 2"] {
        assert!(row.contains(part), "{part} in:\n{row}");
    }
    b.click(&format!("button[data-gb-channels='{NVR_A}']"))
        .await;
    b.wait_for_count("tr[data-gb-channel]", 2).await;
    let off = b.text("tr[data-gb-channel='15010200001320000002']").await;
    assert!(
        off.contains("操场") && off.contains("离线") && off.contains("摄像机"),
        "{off}"
    );
    // The platform's alarm in the timeline, with the device's own words.
    let alarm = b.wait_for_text("#transitions", "视频平台报警").await;
    assert!(
        alarm.contains("视频平台报警：一键报警按钮被按下（1级警情，设备报警）"),
        "{alarm}"
    );
    // The other way round: the agent is blind.
    b.goto(&format!("{base}/console/campus/{C}?lang=en")).await;
    b.wait_for_text("#platform", "Video platform (GB/T 28181)")
        .await;
    assert_eq!(
        b.text("#platform-disagreement").await,
        "Cameras up on the platform but not seen by the agent: check the gateway's camera settings and the campus network"
    );
    // In English too, campus A, and a campus without GB/T 28181 has no such section.
    b.goto(&format!("{base}/console/campus/{A}?lang=en")).await;
    b.wait_for_text("#platform", "Video platform (GB/T 28181)")
        .await;
    assert_eq!(
        b.text("#platform-disagreement").await,
        "Cameras up on campus but not on the platform: the uplink or the registration is broken"
    );
    assert!(b
        .text("[data-view=platform]")
        .await
        .contains("1 of 2 camera channels ON"));
    assert!(b
        .wait_for_text("#transitions", "video platform alarm")
        .await
        .contains("alarm from the video platform: 一键报警按钮被按下 (priority 1, device alarm)"));
    b.goto(&format!("{base}/console/campus/{D}")).await;
    b.wait_for_text("#campus-name", "玉泉区第四小学").await;
    assert!(!b.shown("#platform").await);

    // ---- the disagreement page: worst first, each a link to its campus ----------------
    b.goto(&format!("{base}/console/platform")).await;
    b.wait_for_count("#disagreement-rows tbody tr[data-campus]", 2)
        .await;
    let first = b.text("#disagreement-rows tbody tr:first-child").await;
    for part in [
        "上联或平台注册故障",
        "新城区实验小学",
        "新城区",
        "小学",
        "2 / 2",
        "1 / 2",
        "视频平台",
    ] {
        assert!(first.contains(part), "{part} in:\n{first}");
    }
    let second = b.text("#disagreement-rows tbody tr:nth-child(2)").await;
    assert!(
        second.contains("监测程序看不到摄像机") && second.contains("回民区第三中学"),
        "{second}"
    );
    assert!(
        second.contains("0 / 1") && second.contains("1 / 1"),
        "{second}"
    );
    b.click(&format!("#disagreement-rows tr[data-campus='{A}'] a"))
        .await;
    b.wait_for_text("#campus-name", "新城区实验小学").await;
    assert!(b.url().await.ends_with(&format!("/console/campus/{A}")));

    // The devices, offline first; those no campus lists for review.
    b.goto(&format!("{base}/console/platform?tab=devices&lang=en"))
        .await;
    b.wait_for_count("#gb-device-rows tr[data-gb-device]", 4)
        .await;
    b.click("button[data-pf-filter=review]").await;
    b.wait_for_count("#gb-device-rows tr[data-gb-device]", 1)
        .await;
    let stray = b.text(&format!("tr[data-gb-device='{STRAY}']")).await;
    assert!(
        stray.contains("For review") && stray.contains("No campus lists it"),
        "{stray}"
    );
    assert!(b.url().await.contains("filter=review"));
    // A device registering while the list is open shows up live (a `gb_device` event: no
    // campus lists it, so there is no transition to announce it).
    server.gb_input(common::gb_registered(LATE)).await;
    b.wait_for_count("#gb-device-rows tr[data-gb-device]", 2)
        .await;
    // B's NVR leaves: offline, first in the list of all, with why.
    server
        .gb_input(GbInput::Unregistered {
            device: common::gb_code(NVR_B),
        })
        .await;
    b.click("button[data-pf-filter=all]").await;
    b.wait_for_text("#gb-device-rows tbody tr:first-child", NVR_B)
        .await;
    let first = b.text("#gb-device-rows tbody tr:first-child").await;
    assert!(
        first.contains("offline") && first.contains("unregistered"),
        "{first}"
    );
    b.goto(&format!("{base}/console/platform?tab=devices"))
        .await;
    let first = b
        .wait_for_text("#gb-device-rows tbody tr:first-child", NVR_B)
        .await;
    assert!(
        first.contains("离线")
            && first.contains("设备已注销")
            && first.contains("新城区第二幼儿园"),
        "{first}"
    );

    // ---- the alarm centre: the offline device in both languages -----------------------
    b.goto(&format!("{base}/console/alarms")).await;
    let group = b
        .wait_for_text(&format!("article[data-campus='{B}']"), "视频平台设备")
        .await;
    assert!(
        group.contains(NVR_B) && group.contains("设备已注销"),
        "{group}"
    );
    b.goto(&format!("{base}/console/alarms?lang=en")).await;
    let group = b
        .wait_for_text(
            &format!("article[data-campus='{B}']"),
            "video platform device",
        )
        .await;
    assert!(group.contains("unregistered"), "{group}");
    // Campus A's video is down by the platform's view, which is in force.
    let a = b.text(&format!("article[data-campus='{A}']")).await;
    assert!(
        a.contains("camera channels on the video platform"),
        "campus A's video alert:\n{a}"
    );

    // ---- the overview: both video figures and the disagreements, where it applies -----
    b.goto(&format!("{base}/console/")).await;
    let views = b
        .wait_for_text("#video-views", "视频联网（视频平台所见）")
        .await;
    assert!(views.contains("共 3 所校园接入视频平台"), "{views}");
    // Agent: A and D (C's camera is down, B has no agent); platform: B was, now C only.
    assert_eq!(b.text("[data-figure=video-agent] b").await, "2");
    assert_eq!(b.text("[data-figure=video-platform] b").await, "1");
    assert_eq!(b.text("[data-figure=disagreements] b").await, "2");
    b.click("[data-figure=disagreements]").await;
    b.wait_for_count("#disagreement-rows tbody tr[data-campus]", 2)
        .await;
    // A county where nobody uses GB/T 28181: nothing new.
    b.goto(&format!("{base}/console/?region=150104")).await;
    b.wait_for_text("#area", "玉泉区").await;
    assert!(!b.shown("#video-views").await);
    assert_eq!(b.count("#video-views").await, 0);

    // ---- what it looks like ---------------------------------------------------------------
    screenshots(
        &b,
        &base,
        &format!("campus/{A}"),
        "campus",
        Some(&format!(
            "button[data-gb-channels='{NVR_A}'][aria-expanded=false]"
        )),
    )
    .await;
    // The timeline with the platform's devices, channels and alarm.
    b.goto(&format!("{base}/console/campus/{A}?live=off")).await;
    b.find("#timeline-chart").await;
    b.eval(
        "document.getElementById('timeline').scrollIntoView();",
        json!([]),
    )
    .await;
    assert!(!b.screenshot("gb-campus-timeline-zh-screen").await);
    screenshots(&b, &base, "platform", "disagreements", None).await;
    screenshots(&b, &base, "platform?tab=devices", "devices", None).await;
    screenshots(&b, &base, "", "overview", None).await;

    server.stop().await;
}
