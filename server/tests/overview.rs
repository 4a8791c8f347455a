//! What the console's overview asks for, against a running server with sign-in on: every
//! county below a node with its city (`coverage?level=`), the campuses not networked
//! worst first (`campuses?networked=false&sort=worst`), the server's time zone, and the
//! province's tile map; each as an administrator, a viewer scoped to one city, and
//! nobody.

mod common;

use campuswatch_protocol::{DeviceKind, DeviceState, SchoolType};
use campuswatch_server::auth::Role;
use campuswatch_server::testing::entry;
use campuswatch_testkit::{device, wait_until};
use serde_json::{json, Value};

struct Session {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Session {
    async fn sign_in(base: &str, name: &str) -> Session {
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"name": name, "password": format!("{name} password")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name} signs in");
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_string);
        Session {
            base: base.to_string(),
            http,
            cookie,
        }
    }

    fn nobody(base: &str) -> Session {
        Session {
            base: base.to_string(),
            http: reqwest::Client::new(),
            cookie: None,
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `(code, parent code)` of each child of a coverage answer.
    async fn regions(&self, path: &str) -> Vec<(String, String)> {
        let (status, v) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {v}");
        v["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (s(&c["code"]), s(&c["parent"]["code"]))
            })
            .collect()
    }

    async fn campus_ids(&self, path: &str) -> Vec<String> {
        let (status, v) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {v}");
        v["campuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_ranks_every_county_and_the_worst_campuses_within_the_callers_scope() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in_with(
        dir.path(),
        vec![
            entry("a-full", "150102", SchoolType::Primary, 1, 1),
            entry("a-noalarm", "150102", SchoolType::Primary, 1, 1),
            entry("a-never", "150105", SchoolType::Kindergarten, 1, 1),
            entry("b-novideo", "150203", SchoolType::Secondary, 1, 1),
        ],
        &[
            ("admin", Role::Admin, None),
            ("hohhot", Role::Viewer, Some("150100")),
        ],
    )
    .await;
    let broker = common::broker_addr(&server);
    let alarm = |s| device("alarm-1", DeviceKind::Alarm, s);
    let camera = |s| device("cam-1", DeviceKind::Camera, s);
    let mut gateways = Vec::new();
    for (id, county, devices) in [
        (
            "a-full",
            "150102",
            vec![alarm(DeviceState::Up), camera(DeviceState::Up)],
        ),
        (
            "a-noalarm",
            "150102",
            vec![alarm(DeviceState::Down), camera(DeviceState::Up)],
        ),
        (
            "b-novideo",
            "150203",
            vec![alarm(DeviceState::Up), camera(DeviceState::Down)],
        ),
    ] {
        gateways.push(common::gateway(broker, id, county, devices).await);
    }
    let base = format!("http://{}", server.http_addr());
    let admin = Session::sign_in(&base, "admin").await;
    wait_until(
        "three gateways reporting",
        std::time::Duration::from_secs(20),
        async || admin.get("/api/v1/coverage").await.1["reporting"] == 3,
    )
    .await;

    // Every county of the whole area, and every city, each with the region above it.
    assert_eq!(
        admin.regions("/api/v1/coverage?level=county").await,
        pairs(&[
            ("150102", "150100"),
            ("150105", "150100"),
            ("150203", "150200")
        ])
    );
    assert_eq!(
        admin.regions("/api/v1/coverage?level=city").await,
        pairs(&[("150100", "150000"), ("150200", "150000")])
    );
    assert_eq!(
        admin
            .regions("/api/v1/coverage?level=county&region=150100")
            .await,
        pairs(&[("150102", "150100"), ("150105", "150100")])
    );
    let (_, counties) = admin.get("/api/v1/coverage?level=county").await;
    let xincheng = &counties["children"][0];
    assert_eq!(
        (
            xincheng["registered"].as_u64(),
            xincheng["fully_networked"].as_u64()
        ),
        (Some(2), Some(1)),
        "{xincheng}"
    );
    for bad in [
        "/api/v1/coverage?level=street",
        "/api/v1/coverage?level=county&region=150102",
        "/api/v1/coverage?level=city&region=150100",
    ] {
        let (status, body) = admin.get(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("level")),
            "{body}"
        );
    }

    // Not networked, worst first: no alarm, no video, then never seen.
    assert_eq!(
        admin
            .campus_ids("/api/v1/campuses?networked=false&sort=worst")
            .await,
        ["a-noalarm", "b-novideo", "a-never"]
    );
    assert_eq!(
        admin.campus_ids("/api/v1/campuses?networked=true").await,
        ["a-full"]
    );
    assert_eq!(
        admin.get("/api/v1/campuses?sort=longest").await.0,
        400,
        "an unknown order"
    );
    // Found by id or registered name, whatever the case.
    assert_eq!(
        admin.campus_ids("/api/v1/campuses?q=NOALARM").await,
        ["a-noalarm"]
    );
    assert_eq!(
        admin.campus_ids("/api/v1/campuses?q=campus%20b-").await,
        ["b-novideo"]
    );
    let long = "x".repeat(201);
    assert_eq!(
        admin.get(&format!("/api/v1/campuses?q={long}")).await.0,
        400
    );

    // A viewer of Hohhot: its counties and campuses only, and nothing above or beside.
    let viewer = Session::sign_in(&base, "hohhot").await;
    assert_eq!(
        viewer.regions("/api/v1/coverage?level=county").await,
        pairs(&[("150102", "150100"), ("150105", "150100")])
    );
    assert_eq!(
        viewer
            .campus_ids("/api/v1/campuses?networked=false&sort=worst")
            .await,
        ["a-noalarm", "a-never"]
    );
    assert_eq!(
        viewer.campus_ids("/api/v1/campuses?q=campus").await,
        ["a-full", "a-never", "a-noalarm"],
        "found within Hohhot only"
    );
    for other in [
        "/api/v1/coverage?level=county&region=150000",
        "/api/v1/coverage?level=county&region=150200",
        "/api/v1/campuses?networked=false&sort=worst&region=150203",
    ] {
        assert_eq!(viewer.get(other).await.0, 403, "{other}");
    }

    // The alarm centre's filters and its CSV: a-noalarm's alarm device (a warning) and
    // its campus out of alarm coverage (critical), nothing of another city for a viewer.
    let kinds = |v: &Value| -> Vec<String> {
        v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["kind"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, critical) = admin
        .get("/api/v1/alerts?state=open&severity=critical")
        .await;
    assert_eq!(kinds(&critical), ["alarm_networking"], "{critical}");
    assert_eq!(critical["alerts"][0]["region_name"], "新城区");
    assert_eq!(critical["alerts"][0]["city_name"], "呼和浩特市");
    let (_, unacked) = admin
        .get("/api/v1/alerts?state=open&acknowledged=false")
        .await;
    assert_eq!(unacked["alerts"].as_array().unwrap().len(), 2, "{unacked}");
    let (_, acked) = admin
        .get("/api/v1/alerts?state=open&acknowledged=true")
        .await;
    assert_eq!(kinds(&acked), Vec::<String>::new());
    for bad in [
        "/api/v1/alerts?severity=loud",
        "/api/v1/alerts?format=xml",
        "/api/v1/events?severity=critical",
        "/api/v1/events?format=csv",
    ] {
        assert_eq!(admin.get(bad).await.0, 400, "{bad}");
    }
    let csv = |who: &Session| {
        let mut req = who
            .http
            .get(format!("{}/api/v1/alerts?state=open&format=csv", who.base));
        if let Some(c) = &who.cookie {
            req = req.header("cookie", c);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let kind = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            (status, kind, resp.text().await.unwrap_or_default())
        }
    };
    let (status, kind, text) = csv(&admin).await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert!(
        lines[0].starts_with("id,severity,state,kind,campus,campus_name,region,region_name"),
        "{text}"
    );
    assert_eq!(lines.len(), 3, "a header and two alerts: {text}");
    assert!(
        text.contains("a-noalarm") && text.contains("新城区"),
        "{text}"
    );
    // Times in the server's zone, as the console writes them: `2026-12-05 08:22:23`.
    let since = lines[1].split(',').nth(9).unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(since, "%Y-%m-%d %H:%M:%S").is_ok(),
        "{since}"
    );
    let (_, _, theirs) = csv(&viewer).await;
    assert!(
        theirs.contains("a-noalarm") && !theirs.contains("b-novideo"),
        "{theirs}"
    );
    assert_eq!(csv(&Session::nobody(&base)).await.0, 401);

    // Every page shows times in the server's zone, which the session says.
    let (_, me) = viewer.get("/api/v1/session").await;
    assert_eq!(me["time_zone"], "Asia/Shanghai", "{me}");

    // Nobody signed in: none of it, but the console's own assets, the map among them.
    let nobody = Session::nobody(&base);
    assert_eq!(nobody.get("/api/v1/coverage?level=county").await.0, 401);
    assert_eq!(
        nobody
            .get("/api/v1/campuses?networked=false&sort=worst")
            .await
            .0,
        401
    );
    let (status, tiles) = nobody.get("/console/assets/tiles-150000.json").await;
    assert_eq!(status, 200);
    let tiles = tiles.as_array().unwrap();
    assert_eq!(tiles.len(), 103, "one tile per county of Inner Mongolia");
    let xincheng = tiles.iter().find(|t| t["code"] == "150102").unwrap();
    assert_eq!(
        (xincheng["name"].as_str(), xincheng["city"].as_str()),
        (Some("新城区"), Some("呼和浩特市"))
    );
    assert_eq!(nobody.get("/console/assets/tiles-110000.json").await.0, 404);
    drop(gateways);
    server.stop().await;
}

/// `(id, name, alarm networked, fully networked)` of each campus a county's coverage
/// lists.
fn listed(v: &Value) -> Vec<(String, String, u64, u64)> {
    v["children"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|c| {
            assert_eq!(c["level"], "campus", "{c}");
            (
                c["code"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
                c["alarm_networked"].as_u64().unwrap(),
                c["fully_networked"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn row(id: &str, name: &str, alarm: u64, full: u64) -> (String, String, u64, u64) {
    (id.to_string(), name.to_string(), alarm, full)
}

/// A county's campus listing is kept between asks (a county of 1,600 campuses is 800 KB
/// of JSON) and follows every change of its campuses at once: a device's state, a
/// rename, the school type asked for; within each caller's scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_countys_campus_listing_follows_every_change_of_its_campuses() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in_with(
        dir.path(),
        vec![
            entry("a-1", "150102", SchoolType::Primary, 1, 1),
            entry("a-2", "150102", SchoolType::Kindergarten, 1, 1),
            entry("b-1", "150203", SchoolType::Primary, 1, 1),
        ],
        &[
            ("admin", Role::Admin, None),
            ("operator", Role::Operator, None),
            ("hohhot", Role::Viewer, Some("150100")),
            ("baotou", Role::Viewer, Some("150200")),
        ],
    )
    .await;
    let broker = common::broker_addr(&server);
    let (campus, county) = (
        campuswatch_protocol::CampusId::parse("a-1").unwrap(),
        campuswatch_protocol::RegionCode::parse("150102").unwrap(),
    );
    let gateway = common::gateway(
        broker,
        "a-1",
        "150102",
        vec![
            device("alarm-1", DeviceKind::Alarm, DeviceState::Up),
            device("cam-1", DeviceKind::Camera, DeviceState::Up),
        ],
    )
    .await;
    let base = format!("http://{}", server.http_addr());
    let admin = Session::sign_in(&base, "admin").await;
    let county_path = "/api/v1/coverage?region=150102";
    let wait_for = async |path: &str, want: Vec<(String, String, u64, u64)>| {
        let mut last = Vec::new();
        let seen = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            loop {
                let (status, v) = admin.get(path).await;
                assert_eq!(status, 200, "{path}: {v}");
                last = listed(&v);
                if last == want {
                    return v;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await;
        seen.unwrap_or_else(|_| panic!("{path}: {last:?}, not {want:?}"))
    };

    let first = wait_for(
        county_path,
        vec![
            row("a-1", "Campus a-1", 1, 1),
            row("a-2", "Campus a-2", 0, 0),
        ],
    )
    .await;
    // Asked again unchanged: the same answer, but for its time.
    let (_, again) = admin.get(county_path).await;
    let without_at = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("at");
        v
    };
    assert_eq!(without_at(&again), without_at(&first));
    assert_eq!(first["region"]["code"], "150102");
    assert_eq!(
        (
            first["registered"].as_u64(),
            first["fully_networked"].as_u64()
        ),
        (Some(2), Some(1))
    );

    // The alarm link drops: listed at once.
    common::publish(
        &gateway,
        &campuswatch_testkit::event(
            &campus,
            county,
            1,
            1,
            "alarm-1",
            DeviceKind::Alarm,
            (DeviceState::Up, DeviceState::Down),
        ),
    )
    .await;
    wait_for(
        county_path,
        vec![
            row("a-1", "Campus a-1", 0, 0),
            row("a-2", "Campus a-2", 0, 0),
        ],
    )
    .await;
    // One school type, kept apart from the whole listing.
    let kindergartens = "/api/v1/coverage?region=150102&school_type=kindergarten";
    wait_for(kindergartens, vec![row("a-2", "Campus a-2", 0, 0)]).await;

    // A rename through the registry reaches both listings.
    let mut import = admin
        .http
        .post(format!("{base}/api/v1/registry"))
        .header("content-type", "text/csv")
        .body(
            "id,name,region,school_type,expected_alarms,expected_cameras\n\
             a-2,Xincheng kindergarten,150102,kindergarten,1,1\n",
        );
    if let Some(c) = &admin.cookie {
        import = import.header("cookie", c);
    }
    let resp = import.send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    wait_for(
        kindergartens,
        vec![row("a-2", "Xincheng kindergarten", 0, 0)],
    )
    .await;
    let renamed = vec![
        row("a-1", "Campus a-1", 0, 0),
        row("a-2", "Xincheng kindergarten", 0, 0),
    ];
    wait_for(county_path, renamed.clone()).await;

    // Within scope: an operator and Hohhot's viewer see the same listing, Baotou's
    // viewer none of it.
    let operator = Session::sign_in(&base, "operator").await;
    let (status, v) = operator.get(county_path).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(listed(&v), renamed);
    let hohhot = Session::sign_in(&base, "hohhot").await;
    let (status, v) = hohhot.get(county_path).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(listed(&v), renamed);
    assert_eq!(
        v["path"][0]["code"], "150100",
        "the city above the county; the province is out of scope: {v}"
    );
    assert_eq!(v["path"].as_array().map(Vec::len), Some(1), "{v}");
    let baotou = Session::sign_in(&base, "baotou").await;
    assert_eq!(baotou.get(county_path).await.0, 403);
    assert_eq!(baotou.get(kindergartens).await.0, 403);
    assert_eq!(Session::nobody(&base).get(county_path).await.0, 401);
    let (status, v) = baotou.get("/api/v1/coverage?region=150203").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(listed(&v), vec![row("b-1", "Campus b-1", 0, 0)]);
}
