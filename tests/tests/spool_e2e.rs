//! The event spool end to end: the real `campuswatch-agent` program killed with SIGKILL
//! at random moments while its devices flap, again and again, must still deliver every
//! event it produced to the server exactly once and in order; and a broker outage longer
//! than the spool's bound shows at the server as a counted, explained gap.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use campuswatch_protocol::SchoolType;
use campuswatch_server::ServerHandle;
use campuswatch_tests::*;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);
/// The agent program, built from agent/src/main.rs (see tests/Cargo.toml).
const AGENT: &str = env!("CARGO_BIN_EXE_campuswatch-agent-under-test");

/// An agent configuration file: two alarm links probed every 20 ms, each probe result
/// taken at once (down after 1 failure, up after 1 success), so every flap is an event.
fn write_config(
    dir: &Path,
    campus: &str,
    county: &str,
    url: &str,
    devices: &[&FlappingDevice],
) -> PathBuf {
    let mut toml = format!(
        "campus = \"{campus}\"\nregion = \"{county}\"\nstate_dir = \"{}\"\n\
         heartbeat_interval = \"200ms\"\n\
         [mqtt]\nurl = \"{url}\"\nkeepalive = \"2s\"\n\
         reconnect_delay_min = \"50ms\"\nreconnect_delay_max = \"200ms\"\n",
        dir.join("state").display()
    );
    for (i, d) in devices.iter().enumerate() {
        toml.push_str(&format!(
            "[[devices]]\nid = \"alarm-{}\"\nkind = \"alarm\"\ninterval = \"20ms\"\n\
             timeout = \"200ms\"\ndown_after = 1\nup_after = 1\n\
             probe = {{ type = \"tcp\", target = \"{}\" }}\n",
            i + 1,
            d.addr
        ));
    }
    let path = dir.join("agent.toml");
    std::fs::write(&path, toml).expect("write the agent config");
    path
}

/// Starts the agent program; its log goes to `log` (kept for a failing test's reader).
fn spawn_agent(config: &Path, log: &Path) -> tokio::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("agent log file");
    tokio::process::Command::new(AGENT)
        .args(["--log-level", "warn", "run", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the agent program starts")
}

/// `(watermark, dropped)` from the spool's `acked` file, and whether its log is empty.
fn spool_state(state_dir: &Path) -> (u64, u64, bool) {
    let marks = std::fs::read_to_string(state_dir.join("spool/acked")).unwrap_or_default();
    let mut f = marks.split_whitespace().map(|v| v.parse().unwrap_or(0));
    let (w, d) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
    let empty = std::fs::read(state_dir.join("spool/events.log"))
        .map(|b| b.is_empty())
        .unwrap_or(true);
    (w, d, empty)
}

async fn campus(server: &ServerHandle, id: &str) -> serde_json::Value {
    get_json(server, &format!("/api/v1/campuses/{id}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_again_and_again_delivers_every_event_exactly_once_in_order() {
    const KILLS: usize = 20;
    let (county, id) = ("150221", "t150221-kill");
    let fixture = Fixture::start(
        county,
        vec![registry_entry(id, county, SchoolType::Primary, 2, 0)],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Ids start at 1 in a state directory whose watermark says "nothing yet", so the
    // expected ids are exactly 1..=N.
    std::fs::create_dir_all(state.join("spool")).unwrap();
    std::fs::write(state.join("spool/acked"), "0 0\n").unwrap();
    let flapping = [
        FlappingDevice::start(Duration::from_millis(30)..Duration::from_millis(150)).await,
        FlappingDevice::start(Duration::from_millis(30)..Duration::from_millis(150)).await,
    ];
    let config = write_config(
        dir.path(),
        id,
        county,
        &fixture.broker.url,
        &[&flapping[0], &flapping[1]],
    );
    let log = dir.path().join("agent.log");

    // Kill it at random moments: while starting, connecting, replaying, publishing.
    let mut produced_before_last_kill = 0;
    for kill in 1..=KILLS {
        let mut agent = spawn_agent(&config, &log);
        let lives = Duration::from_millis(rand::random_range(80..1200));
        tokio::time::sleep(lives).await;
        agent.kill().await.expect("SIGKILL the agent");
        let (watermark, dropped, _) = spool_state(&state);
        assert_eq!(dropped, 0, "the spool never filled up");
        produced_before_last_kill = produced_before_last_kill.max(watermark);
        println!("kill {kill} after {lives:?}: acknowledged up to event {watermark}");
    }
    assert!(
        produced_before_last_kill > 0,
        "events were delivered between kills; agent log: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // The devices settle up; one last life, left running until everything is through.
    let mut settled = Vec::new();
    for f in flapping {
        settled.push(f.settle_up().await);
    }
    let mut agent = spawn_agent(&config, &log);
    let last = wait_for("every spooled event at the server", WAIT, || async {
        let (watermark, _, empty) = spool_state(&state);
        let v = campus(&fixture.server, id).await;
        let devices = v["device_list"].as_array()?;
        let all_up = devices.len() == 2 && devices.iter().all(|d| d["reported_state"] == "up");
        (empty && watermark > 0 && v["gateway"]["last_event_id"] == watermark && all_up)
            .then_some(watermark)
    })
    .await;
    agent.kill().await.expect("stop the agent");

    // Exactly once: ids 1..=last, each stored once.
    let events = all_events(&fixture.server, id).await;
    let mut by_id: BTreeMap<u64, &serde_json::Value> = BTreeMap::new();
    for e in &events {
        let eid = e["event_id"].as_u64().unwrap();
        assert!(by_id.insert(eid, e).is_none(), "event {eid} stored twice");
    }
    let ids: Vec<u64> = by_id.keys().copied().collect();
    assert_eq!(
        ids,
        (1..=last).collect::<Vec<_>>(),
        "every event from 1 to {last}, none missing"
    );
    println!("{KILLS} kills: {last} events, all delivered once");

    // In order: the server stored them in the order they were produced...
    let rows: Vec<i64> = by_id.values().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        rows.windows(2).all(|w| w[0] < w[1]),
        "stored out of order: {rows:?}"
    );
    // ... and each device's events form one unbroken chain (each starts where the
    // previous one ended, except the first after an agent start, which starts from
    // unknown), in time order.
    let mut last_of: BTreeMap<String, &serde_json::Value> = BTreeMap::new();
    let mut starts = 0;
    for e in by_id.values() {
        let device = e["device"].as_str().unwrap().to_string();
        if let Some(prev) = last_of.get(&device) {
            assert!(
                e["from"] == prev["to"] || e["from"] == "unknown",
                "{device}: {prev} then {e}"
            );
            let (a, b): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = (
                prev["at"].as_str().unwrap().parse().unwrap(),
                e["at"].as_str().unwrap().parse().unwrap(),
            );
            assert!(a <= b, "{device}: time went back: {prev} then {e}");
        }
        if e["from"] == "unknown" {
            starts += 1;
        }
        last_of.insert(device, e);
    }
    assert!(starts <= 2 * (KILLS + 1), "{starts} starts from unknown");
    // The server's view is the last event of each device.
    let v = campus(&fixture.server, id).await;
    for d in v["device_list"].as_array().unwrap() {
        let name = d["id"].as_str().unwrap();
        assert_eq!(d["reported_state"], last_of[name]["to"], "{name}");
    }
    drop(settled);
    fixture.server.stop().await;
}

fn spooled_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("spool/events.log"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_beyond_the_spool_bound_is_a_counted_gap_at_the_server() {
    let (county, id) = ("150222", "t150222-gw");
    let fixture = Fixture::start(
        county,
        vec![registry_entry(id, county, SchoolType::Primary, 1, 0)],
    )
    .await;
    let link = LinkProxy::start(fixture.broker.addr()).await;
    let mut device = TcpDevice::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = agent_config(id, county, &link.url(), dir.path(), device.addr);
    let alarm = &mut cfg.devices[0];
    alarm.interval = Some(Duration::from_millis(50));
    alarm.down_after = Some(1);
    alarm.up_after = Some(1);
    cfg.spool.max_events = 3;
    let token = CancellationToken::new();
    let agent = tokio::spawn(campuswatch_agent::run(cfg, token.clone()));
    wait_for("the alarm up at the server", WAIT, || async {
        let v = campus(&fixture.server, id).await;
        (v["gateway_state"] == "online" && v["device_list"][0]["reported_state"] == "up")
            .then_some(())
    })
    .await;

    // Eight transitions while the gateway is cut off, with room for three. The server
    // may apply the first event before the agent has the broker's acknowledgement of it
    // (Mosquitto delivers first): wait for that too, or it would count among the eight.
    wait_for("the first event acknowledged", WAIT, || async {
        (spooled_lines(dir.path()) == 0).then_some(())
    })
    .await;
    link.set(LinkMode::Cut);
    let before = spooled_lines(dir.path());
    for i in 1..=4 {
        device.down().await;
        wait_for("a down event in the spool", WAIT, || async {
            (spooled_lines(dir.path()) >= before + 2 * i - 1).then_some(())
        })
        .await;
        device.up().await;
        wait_for("an up event in the spool", WAIT, || async {
            (spooled_lines(dir.path()) >= before + 2 * i).then_some(())
        })
        .await;
    }
    link.set(LinkMode::Pass);
    let v = wait_for("the drops reported at the server", WAIT, || async {
        let v = campus(&fixture.server, id).await;
        (v["gateway"]["dropped_events"] == 5).then_some(v)
    })
    .await;
    assert_eq!(v["device_list"][0]["reported_state"], "up");
    let last = v["gateway"]["last_event_id"].as_u64().unwrap();
    // The three kept events arrive; the five dropped ones are the gap the count explains.
    let ids = wait_for("the kept events", WAIT, || async {
        let ids: Vec<u64> = all_events(&fixture.server, id)
            .await
            .iter()
            .map(|e| e["event_id"].as_u64().unwrap())
            .collect();
        ids.contains(&last).then_some(ids)
    })
    .await;
    let (lo, hi) = (*ids.iter().min().unwrap(), *ids.iter().max().unwrap());
    let missing: Vec<u64> = (lo..=hi).filter(|i| !ids.contains(i)).collect();
    assert_eq!(missing.len(), 5, "ids {ids:?}");
    assert_eq!(hi, last);
    assert_eq!(
        metric(&fixture.server, "cw_gateway_dropped_events_total").await,
        Some(5.0)
    );
    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), agent).await;
    fixture.server.stop().await;
}
