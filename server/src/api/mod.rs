//! The HTTP API: `/api/v1/…` (JSON), `/metrics`, `/healthz`.
//!
//! Handlers read the monitor under a short read lock (never across an `.await`) or query
//! the store for history. Every error leaves through [`ApiError`], which speaks JSON and
//! hides internals.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use campuswatch_protocol::{
    CampusId, DeviceInfo, DeviceKind, DeviceState, GatewayState, HostHealth, Measurements,
    RegionCode, RegionLevel, SchoolType, Timestamp,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::auth::{Principal, Role};
use crate::ingest::{Clock, Inbound, MaintenanceOp};
use crate::metrics::Metrics;
use crate::monitor::coverage::CoverageBlock;
use crate::monitor::maintenance::{Maintenance, MaintenanceError, Schedule, Scope};
use crate::monitor::{
    AckError, Alert, AlertKind, AlertState, CampusView, Incident, IncidentState, Monitor,
};
use crate::regions::RegionNames;
use crate::registry::{self, LineError, RegistryEntry};
use crate::store::{Filter, Store, StoredTransition};

mod reports;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub monitor: Arc<RwLock<Monitor>>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub inbound: mpsc::Sender<Inbound>,
    pub auth: crate::config::AuthConfig,
    /// Stored changes, for the consoles' live updates.
    pub live: tokio::sync::broadcast::Sender<crate::live::LiveEvent>,
    /// Cancelled when the server stops: live streams end then, so that consoles see the
    /// server go (and reconnect to its successor) and a graceful stop is not held up.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The servers of the other partitions (coverage of the whole area).
    pub peers: crate::peers::Peers,
}

impl AppState {
    fn monitor(&self) -> std::sync::RwLockReadGuard<'_, Monitor> {
        self.monitor.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// Largest registry CSV accepted over HTTP.
const MAX_REGISTRY_BYTES: usize = 64 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/coverage", get(coverage))
        .route("/api/v1/campuses", get(campuses))
        .route("/api/v1/campuses/{id}", get(campus))
        .route(
            "/api/v1/session",
            post(sign_in).get(who_am_i).delete(sign_out),
        )
        .route("/api/v1/tokens", post(create_token))
        .route("/api/v1/live", get(live_updates))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/{id}/ack", post(acknowledge))
        .route("/api/v1/incidents", get(incidents))
        .route(
            "/api/v1/maintenance",
            get(list_maintenance).post(add_maintenance),
        )
        .route("/api/v1/maintenance/{id}", delete(remove_maintenance))
        .route("/api/v1/events", get(events))
        .route(
            "/api/v1/registry",
            post(import_registry)
                .get(get_registry)
                .layer(DefaultBodyLimit::max(MAX_REGISTRY_BYTES)),
        )
        // Reports (availability, coverage, daily history): see api/reports.rs.
        .route("/api/v1/reports/availability", get(reports::availability))
        .route("/api/v1/reports/coverage", get(reports::coverage))
        .route(
            "/api/v1/reports/coverage/daily",
            get(reports::coverage_daily),
        )
        .merge(crate::console::routes())
        .fallback(not_found)
        .with_state(state)
}

// ---- who is asking ------------------------------------------------------------------

/// The session cookie of the console.
const SESSION_COOKIE: &str = "cw_session";

/// The signed-in user of a request: from `Authorization: Bearer <token>` or the session
/// cookie. With `auth.enabled = false`, everyone is an administrator of everything.
pub struct Caller(pub Principal);

impl axum::extract::FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &AppState,
    ) -> Result<Self, ApiError> {
        if !s.auth.enabled {
            return Ok(Caller(Principal {
                user_id: 0,
                name: "anonymous".into(),
                role: Role::Admin,
                scope: None,
            }));
        }
        let secret = bearer(&parts.headers).or_else(|| cookie(&parts.headers, SESSION_COOKIE));
        let Some(secret) = secret else {
            return Err(ApiError::Unauthorized(
                "sign in (POST /api/v1/session) or send Authorization: Bearer <API token>".into(),
            ));
        };
        match s.store.principal_for(&secret, s.clock.now()).await? {
            Some(p) => Ok(Caller(p)),
            None => Err(ApiError::Unauthorized(
                "the session has expired or the token is not valid; sign in again".into(),
            )),
        }
    }
}

fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

impl Caller {
    /// Refuses a caller whose role is below `needed`.
    fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.0.may(needed) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {} role; {} is {}",
                needed.as_str(),
                self.0.name,
                self.0.role.as_str()
            )))
        }
    }

    /// The region a request is about: the one asked for, which must be within the
    /// caller's scope, or else the scope itself.
    fn region(&self, asked: Option<RegionCode>) -> Result<Option<RegionCode>, ApiError> {
        match (asked, self.0.scope) {
            (Some(r), _) if self.0.sees(&r) => Ok(Some(r)),
            (Some(r), Some(scope)) => Err(ApiError::Forbidden(format!(
                "region {r} is outside your scope ({scope})"
            ))),
            (asked, scope) => Ok(asked.or(scope)),
        }
    }

    fn sees(&self, region: &RegionCode) -> bool {
        self.0.sees(region)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    name: String,
    password: String,
}

#[derive(Serialize)]
struct SessionInfo {
    name: String,
    role: Role,
    /// The region subtree the user sees; null = everything.
    scope: Option<RegionCode>,
}

impl From<&Principal> for SessionInfo {
    fn from(p: &Principal) -> Self {
        Self {
            name: p.name.clone(),
            role: p.role,
            scope: p.scope,
        }
    }
}

/// Signs in: a session cookie (HttpOnly, SameSite=Strict) for the console.
async fn sign_in(
    State(s): State<AppState>,
    body: Result<Json<SignIn>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if !s.auth.enabled {
        return Err(ApiError::BadRequest(
            "sign-in is off on this server (auth.enabled = false)".into(),
        ));
    }
    let found = s.store.login_user(body.name.trim()).await?;
    // The same work whether or not the user exists, so timing tells nothing.
    let hash = found
        .as_ref()
        .map_or_else(|| dummy_hash().to_string(), |(_, h)| h.clone());
    let ok = crate::auth::verify_password(&body.password, &hash);
    let Some((principal, _)) = found.filter(|_| ok) else {
        return Err(ApiError::Unauthorized("wrong name or password".into()));
    };
    let now = s.clock.now();
    let ttl =
        chrono::TimeDelta::from_std(s.auth.session_ttl).unwrap_or(chrono::TimeDelta::hours(12));
    let (secret, stored) = crate::auth::new_secret("cws_");
    s.store
        .create_session(&stored, principal.user_id, now, now + ttl)
        .await?;
    tracing::info!(user = %principal.name, "Signed in.");
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        ttl.num_seconds(),
        if s.auth.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(SessionInfo::from(&principal)),
    )
        .into_response())
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        crate::auth::hash_password("no such user, no such password").unwrap_or_default()
    })
}

async fn who_am_i(caller: Caller) -> Json<SessionInfo> {
    Json(SessionInfo::from(&caller.0))
}

/// Signs out: the session ends and the cookie is cleared.
async fn sign_out(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        s.store.delete_session(&secret).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    /// What the token is for ("nightly coverage export").
    name: String,
}

#[derive(Serialize)]
struct TokenCreated {
    id: i64,
    name: String,
    /// The token itself: shown this once, kept by the server only as a hash.
    token: String,
}

/// An API token for scripts, acting as the signed-in user with their role and scope.
async fn create_token(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<TokenRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if !s.auth.enabled {
        return Err(ApiError::BadRequest(
            "tokens need sign-in to be on (auth.enabled = true)".into(),
        ));
    }
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "name the token (1 to 100 characters)".into(),
        ));
    }
    let (token, stored) = crate::auth::new_secret("cwt_");
    let id = s
        .store
        .create_token(&stored, caller.0.user_id, &name, s.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json(TokenCreated { id, name, token })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveQuery {
    /// Only changes within this region node (and the caller's scope).
    region: Option<String>,
}

/// Server-sent events: every stored transition, alert and incident within the caller's
/// scope, as it happens (`event:` is the kind, `data:` the JSON). A console that falls
/// behind gets `resync` and should reload what it shows.
async fn live_updates(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<LiveQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let Query(q) = q?;
    let region = caller.region(q.region.as_deref().map(parse_region).transpose()?)?;
    let rx = s.live.subscribe();
    let stopping = s.shutdown.clone();
    let stream = futures_util::stream::unfold(rx, move |mut rx| {
        let stopping = stopping.clone();
        async move {
            loop {
                let received = tokio::select! {
                    r = rx.recv() => r,
                    () = stopping.cancelled() => return None,
                };
                let event = match received {
                    Ok(e)
                        if e.region
                            .is_none_or(|r| region.is_none_or(|want| r.is_within(&want))) =>
                    {
                        Event::default()
                            .event(e.kind)
                            .json_data(&e)
                            .unwrap_or_else(|_| Event::default().event("resync").data("{}"))
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => Event::default()
                        .event("resync")
                        .data(format!("{{\"missed\":{missed}}}")),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok::<_, std::convert::Infallible>(event), rx));
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response())
}

// ---- errors -------------------------------------------------------------------------

/// Every error the API returns.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    /// A registry import with bad rows: nothing was imported.
    BadRegistry(Vec<LineError>),
    Unavailable(String),
    /// Not signed in, or the session or token is not valid.
    Unauthorized(String),
    /// Signed in, but the role or the region scope does not allow it.
    Forbidden(String),
    /// Logged in full, shown to the client as a generic message.
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    lines: Option<&'a [LineError]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, msg, lines) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone(), None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone(), None),
            ApiError::BadRegistry(lines) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the registry file has {} bad row(s); nothing was imported",
                    lines.len()
                ),
                Some(lines.as_slice()),
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m.clone(), None),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.clone(), None),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone(), None),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "API request failed.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log".to_string(),
                    None,
                )
            }
        };
        (status, Json(ErrorBody { error: &msg, lines })).into_response()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            // The request's period, not the server, is at fault: it says what to ask.
            crate::store::StoreError::BeforeHistory { .. } => ApiError::BadRequest(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see /api/v1/openapi.json".into())
}

/// An id in a path (`/api/v1/alerts/{id}/…`).
fn parse_number(what: &str, s: &str) -> Result<u64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::BadRequest(format!("{what} {s:?} is not a number")))
}

fn parse_region(s: &str) -> Result<RegionCode, ApiError> {
    RegionCode::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn parse_school_type(s: &str) -> Result<SchoolType, ApiError> {
    SchoolType::parse(s).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "school_type {s:?}: use kindergarten, primary, secondary or other"
        ))
    })
}

// ---- health and metrics -------------------------------------------------------------

async fn healthz(State(s): State<AppState>) -> Response {
    let database = s.store.ping().await;
    let broker = s
        .metrics
        .broker_connected
        .load(std::sync::atomic::Ordering::Relaxed);
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if database && broker { "ok" } else { "degraded" },
        "database": database,
        "broker_connected": broker,
    });
    (status, Json(body)).into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    let text = s.metrics.render(&s.monitor());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../../docs/openapi.json"),
    )
        .into_response()
}

// ---- coverage -----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CoverageQuery {
    region: Option<String>,
    school_type: Option<String>,
    /// This server's campuses only, without the other partitions' (`cluster.peers`).
    #[serde(default)]
    local: bool,
}

#[derive(Serialize)]
struct RegionInfo {
    code: String,
    name: String,
    level: &'static str,
}

fn level_name(l: RegionLevel) -> &'static str {
    match l {
        RegionLevel::Province => "province",
        RegionLevel::City => "city",
        RegionLevel::County => "county",
    }
}

fn region_info(code: RegionCode) -> RegionInfo {
    RegionInfo {
        code: code.to_string(),
        name: RegionNames::builtin().name(&code),
        level: level_name(code.level()),
    }
}

#[derive(Serialize)]
struct CoverageResponse {
    at: Timestamp,
    /// The node asked for; null for the whole area.
    region: Option<RegionInfo>,
    /// The regions above it that the caller may see, from the top down (the console's
    /// breadcrumbs).
    path: Vec<RegionInfo>,
    school_type: Option<SchoolType>,
    #[serde(flatten)]
    totals: CoverageBlock,
    school_types: Vec<SchoolTypeBlock>,
    children: Vec<ChildBlock>,
}

#[derive(Serialize)]
struct SchoolTypeBlock {
    school_type: SchoolType,
    #[serde(flatten)]
    block: CoverageBlock,
}

#[derive(Serialize)]
struct ChildBlock {
    /// A region code, or a campus id for the campuses of a county.
    code: String,
    name: String,
    /// `city`, `county` or `campus`.
    level: &'static str,
    #[serde(flatten)]
    block: CoverageBlock,
}

async fn coverage(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<CoverageQuery>, QueryRejection>,
) -> Result<Json<CoverageResponse>, ApiError> {
    let Query(q) = q?;
    let region = caller.region(q.region.as_deref().map(parse_region).transpose()?)?;
    let school_type = q
        .school_type
        .as_deref()
        .map(parse_school_type)
        .transpose()?;
    let at = s.clock.now();
    let mut answer = {
        let m = s.monitor();
        let cov = m.coverage();
        let totals = cov.total(region, school_type).block();
        let school_types = SchoolType::ALL
            .into_iter()
            .filter(|t| school_type.is_none_or(|st| st == *t))
            .map(|t| SchoolTypeBlock {
                school_type: t,
                block: cov.total(region, Some(t)).block(),
            })
            .collect();
        let children = match region {
            Some(r) if r.level() == RegionLevel::County => m
                .county_campuses(&r)
                .into_iter()
                .filter(|c| {
                    school_type.is_none_or(|t| c.registry.is_some_and(|e| e.school_type == t))
                })
                .map(|c| ChildBlock {
                    code: c.id.to_string(),
                    name: c.registry.map(|e| e.name.clone()).unwrap_or_default(),
                    level: "campus",
                    block: c.contribution.block(),
                })
                .collect(),
            _ => cov
                .child_regions(region)
                .map(|child| {
                    let info = region_info(child);
                    ChildBlock {
                        code: info.code,
                        name: info.name,
                        level: info.level,
                        block: cov.total(Some(child), school_type).block(),
                    }
                })
                .collect(),
        };
        let mut path: Vec<RegionInfo> = region
            .iter()
            .flat_map(|r| r.lineage().skip(1))
            .filter(|r| caller.sees(r))
            .map(region_info)
            .collect();
        path.reverse();
        CoverageResponse {
            at,
            region: region.map(region_info),
            path,
            school_type,
            totals,
            school_types,
            children,
        }
    };
    if !q.local && !s.peers.is_empty() {
        let mut query = Vec::new();
        if let Some(r) = region {
            query.push(("region", r.to_string()));
        }
        if let Some(t) = school_type {
            query.push(("school_type", t.as_str().to_string()));
        }
        let others = s.peers.coverage(&query).await.map_err(|e| {
            ApiError::Unavailable(format!(
                "the whole area's coverage needs every partition's server, and {e}"
            ))
        })?;
        for other in others {
            answer.add(other);
        }
    }
    Ok(Json(answer))
}

impl CoverageResponse {
    /// Adds another partition's figures (its campuses are not ours).
    fn add(&mut self, other: crate::peers::PeerCoverage) {
        use crate::peers::add;
        self.totals = add(&self.totals, &other.totals);
        for theirs in other.school_types {
            if let Some(ours) = self
                .school_types
                .iter_mut()
                .find(|b| b.school_type == theirs.school_type)
            {
                ours.block = add(&ours.block, &theirs.block);
            }
        }
        let mut appended = false;
        for theirs in other.children {
            match self.children.iter_mut().find(|c| c.code == theirs.code) {
                Some(ours) => ours.block = add(&ours.block, &theirs.block),
                None => {
                    let level = match theirs.level.as_str() {
                        "province" => "province",
                        "city" => "city",
                        "county" => "county",
                        _ => "campus",
                    };
                    self.children.push(ChildBlock {
                        code: theirs.code,
                        name: theirs.name,
                        level,
                        block: theirs.block,
                    });
                    appended = true;
                }
            }
        }
        if appended {
            self.children.sort_by(|a, b| a.code.cmp(&b.code));
        }
    }
}

// ---- campuses -----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CampusesQuery {
    region: Option<String>,
    state: Option<String>,
    registered: Option<bool>,
    school_type: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Serialize)]
struct KindCount {
    up: usize,
    down: usize,
    total: usize,
}

#[derive(Serialize)]
struct CampusSummary {
    id: String,
    name: Option<String>,
    region: String,
    school_type: Option<SchoolType>,
    registered: bool,
    expected_alarms: Option<u32>,
    expected_cameras: Option<u32>,
    gateway_state: GatewayState,
    since: Option<Timestamp>,
    last_heartbeat: Option<Timestamp>,
    /// When the gateway first reported (the console's review of unregistered campuses).
    first_seen: Option<Timestamp>,
    alarm_networked: bool,
    video_networked: bool,
    devices: BTreeMap<DeviceKind, KindCount>,
}

fn summary(c: &CampusView<'_>) -> CampusSummary {
    let mut devices: BTreeMap<DeviceKind, KindCount> = DeviceKind::ALL
        .into_iter()
        .map(|k| {
            (
                k,
                KindCount {
                    up: 0,
                    down: 0,
                    total: 0,
                },
            )
        })
        .collect();
    for d in c.devices {
        if let Some(k) = devices.get_mut(&d.kind) {
            k.total += 1;
            match c.device_state(d) {
                s if s.is_reachable() => k.up += 1,
                DeviceState::Down => k.down += 1,
                _ => {}
            }
        }
    }
    CampusSummary {
        id: c.id.to_string(),
        name: c.registry.map(|r| r.name.clone()),
        region: c.region.to_string(),
        school_type: c.registry.map(|r| r.school_type),
        registered: c.registry.is_some(),
        expected_alarms: c.registry.map(|r| r.expected_alarms),
        expected_cameras: c.registry.map(|r| r.expected_cameras),
        gateway_state: c.gateway.state,
        since: c.gateway.since,
        last_heartbeat: c.gateway.last_heartbeat,
        first_seen: c.gateway.first_seen,
        alarm_networked: c.alarm_networked,
        video_networked: c.video_networked,
        devices,
    }
}

#[derive(Serialize)]
struct CampusList {
    total: usize,
    campuses: Vec<CampusSummary>,
}

async fn campuses(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<CampusesQuery>, QueryRejection>,
) -> Result<Json<CampusList>, ApiError> {
    let Query(q) = q?;
    let region = caller.region(q.region.as_deref().map(parse_region).transpose()?)?;
    let school_type = q
        .school_type
        .as_deref()
        .map(parse_school_type)
        .transpose()?;
    let state = q
        .state
        .as_deref()
        .map(|st| {
            GatewayState::parse(st).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "state {st:?}: use online, stale, offline or never_seen"
                ))
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100).min(10_000) as usize;
    let offset = q.offset.unwrap_or(0) as usize;
    let m = s.monitor();
    let matching: Vec<_> = m
        .campuses()
        .into_iter()
        .filter(|c| region.is_none_or(|r| c.region.is_within(&r)))
        .filter(|c| state.is_none_or(|st| c.gateway.state == st))
        .filter(|c| q.registered.is_none_or(|r| c.registry.is_some() == r))
        .filter(|c| school_type.is_none_or(|t| c.registry.is_some_and(|e| e.school_type == t)))
        .collect();
    Ok(Json(CampusList {
        total: matching.len(),
        campuses: matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(summary)
            .collect(),
    }))
}

#[derive(Serialize)]
struct GatewayDetail {
    state: GatewayState,
    since: Option<Timestamp>,
    cause: Option<String>,
    epoch: u64,
    last_heartbeat: Option<Timestamp>,
    health: Option<HostHealth>,
    agent_version: Option<String>,
    config_digest: Option<String>,
    heartbeat_interval_ms: u64,
    first_seen: Option<Timestamp>,
    /// Newest agent event id the device states reflect.
    last_event_id: u64,
    /// Events the gateway's spool dropped (full during a broker outage).
    dropped_events: u64,
}

#[derive(Serialize)]
struct DeviceDetail {
    id: String,
    kind: DeviceKind,
    probe: String,
    target: String,
    required: bool,
    /// What users see: `unknown` while the gateway is not online.
    state: DeviceState,
    /// What the agent last reported.
    reported_state: DeviceState,
    since: Option<Timestamp>,
    cause: Option<String>,
    measurements: Measurements,
    info: Option<DeviceInfo>,
}

#[derive(Serialize)]
struct CampusDetail {
    #[serde(flatten)]
    summary: CampusSummary,
    gateway: GatewayDetail,
    device_list: Vec<DeviceDetail>,
    alerts: Vec<Alert>,
}

async fn campus(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CampusDetail>, ApiError> {
    let id = CampusId::parse(&id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let m = s.monitor();
    let c = m
        .campus(id.as_str())
        .filter(|c| caller.sees(&c.region))
        .ok_or_else(|| ApiError::NotFound(format!("campus {id} is neither registered nor seen")))?;
    let g = c.gateway;
    Ok(Json(CampusDetail {
        summary: summary(&c),
        gateway: GatewayDetail {
            state: g.state,
            since: g.since,
            cause: g.cause.clone(),
            epoch: g.epoch,
            last_heartbeat: g.last_heartbeat,
            health: g.health,
            agent_version: g.agent_version.clone(),
            config_digest: g.config_digest.clone(),
            heartbeat_interval_ms: g.heartbeat_interval_ms,
            first_seen: g.first_seen,
            last_event_id: g.last_event_id,
            dropped_events: g.dropped_events,
        },
        device_list: c
            .devices
            .iter()
            .map(|d| DeviceDetail {
                id: d.id.to_string(),
                kind: d.kind,
                probe: d.probe.to_string(),
                target: d.target.to_string(),
                required: d.required,
                state: c.device_state(d),
                reported_state: d.state,
                since: d.since,
                cause: d.cause.clone(),
                measurements: d.measurements.clone(),
                info: d.info.as_deref().cloned(),
            })
            .collect(),
        alerts: m
            .active_alerts()
            .filter(|a| a.campus == id)
            .cloned()
            .collect(),
    }))
}

// ---- alerts and events ----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    state: Option<String>,
    campus: Option<String>,
    region: Option<String>,
    kind: Option<String>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    limit: Option<u32>,
    offset: Option<u32>,
}

impl HistoryQuery {
    fn filter(&self) -> Result<Filter, ApiError> {
        Ok(Filter {
            campus: self
                .campus
                .as_deref()
                .map(|c| CampusId::parse(c).map_err(|e| ApiError::BadRequest(e.to_string())))
                .transpose()?,
            region: self.region.as_deref().map(parse_region).transpose()?,
            kind: self
                .kind
                .as_deref()
                .map(|k| {
                    AlertKind::parse(k).ok_or_else(|| {
                        ApiError::BadRequest(format!("kind {k:?}: use {}", AlertKind::choices()))
                    })
                })
                .transpose()?,
            state: None,
            since: self.since,
            until: self.until,
            limit: self.limit.unwrap_or(100).min(1000),
            offset: self.offset.unwrap_or(0),
        })
    }
}

#[derive(Serialize)]
struct AlertList {
    alerts: Vec<AlertItem>,
}

#[derive(Serialize)]
struct AlertItem {
    #[serde(flatten)]
    alert: Alert,
    campus_name: Option<String>,
}

async fn alerts(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<AlertList>, ApiError> {
    let Query(q) = q?;
    let mut f = q.filter()?;
    f.region = caller.region(f.region)?;
    f.state = match q.state.as_deref() {
        None | Some("all") => None,
        Some(st) => Some(AlertState::parse(st).ok_or_else(|| {
            ApiError::BadRequest(format!("state {st:?}: use all, {}", AlertState::choices()))
        })?),
    };
    // Alerts not yet resolved come from the live state, so they always agree with the
    // campus and coverage endpoints; history (resolved, all) comes from the store.
    let rows = match f.state {
        Some(AlertState::Open | AlertState::Suppressed) => active_alerts(&s.monitor(), &f),
        _ => s.store.alerts(&f).await?,
    };
    let m = s.monitor();
    let alerts = rows
        .into_iter()
        .map(|a| AlertItem {
            campus_name: m
                .campus(a.campus.as_str())
                .and_then(|c| c.registry.map(|r| r.name.clone())),
            alert: a,
        })
        .collect();
    Ok(Json(AlertList { alerts }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    /// Who acknowledges; with sign-in, the signed-in user instead.
    by: Option<String>,
    comment: Option<String>,
}

/// Acknowledges an alert (who, when, a comment); answered once it is stored.
async fn acknowledge(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<AckBody>, JsonRejection>,
) -> Result<Json<AlertItem>, ApiError> {
    let id = parse_number("alert id", &id)?;
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    caller.require(Role::Operator)?;
    // Signed in: the acknowledgement is the user's, whatever the body says.
    let by = if s.auth.enabled {
        caller.0.name.clone()
    } else {
        body.by
            .clone()
            .ok_or_else(|| ApiError::BadRequest("say who acknowledges (\"by\")".into()))?
    };
    let visible = s
        .monitor()
        .active_alerts()
        .any(|a| a.id == id && caller.sees(&a.region));
    if !visible {
        return Err(ApiError::NotFound(format!(
            "alert {id} is not open (unknown, or already resolved)"
        )));
    }
    let comment = body.comment;
    let alert = ask_engine(&s.inbound, |reply| Inbound::Acknowledge {
        alert: id,
        by,
        comment,
        reply,
    })
    .await?
    .map_err(|e| match e {
        AckError::NotActive(_) => ApiError::NotFound(e.to_string()),
        AckError::NoName | AckError::CommentTooLong => ApiError::BadRequest(e.to_string()),
    })?;
    let campus_name = s
        .monitor()
        .campus(alert.campus.as_str())
        .and_then(|c| c.registry.map(|r| r.name.clone()));
    Ok(Json(AlertItem { alert, campus_name }))
}

#[derive(Deserialize)]
struct MaintenanceRequest {
    #[serde(flatten)]
    scope: Scope,
    schedule: Schedule,
    #[serde(default = "china_standard_time")]
    utc_offset_minutes: i32,
    comment: Option<String>,
    created_by: String,
}

fn china_standard_time() -> i32 {
    480
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceQuery {
    /// Include withdrawn windows.
    withdrawn: Option<bool>,
}

/// A window as the API shows it: every key present, `null` where it does not apply.
#[derive(Serialize)]
struct MaintenanceItem {
    id: u64,
    scope: &'static str,
    region: Option<RegionCode>,
    campus: Option<CampusId>,
    device: Option<campuswatch_protocol::DeviceId>,
    schedule: ScheduleView,
    utc_offset_minutes: i32,
    comment: Option<String>,
    created_by: String,
    created_at: Timestamp,
    /// When the current occurrence ends, if the window applies now.
    active_until: Option<Timestamp>,
    /// Whether it was withdrawn (only listed with `withdrawn=true`).
    withdrawn: bool,
}

#[derive(Serialize)]
struct ScheduleView {
    repeat: &'static str,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    at: Option<chrono::NaiveTime>,
    minutes: Option<u32>,
    weekdays: Option<Vec<chrono::Weekday>>,
    from: Option<chrono::NaiveDate>,
    until: Option<chrono::NaiveDate>,
}

impl MaintenanceItem {
    fn new(w: Maintenance, now: Timestamp, withdrawn: bool) -> Self {
        let (scope, region, campus, device) = match w.scope.clone() {
            Scope::Region { region } => ("region", Some(region), None, None),
            Scope::Campus { campus } => ("campus", None, Some(campus), None),
            Scope::Device { campus, device } => ("device", None, Some(campus), Some(device)),
        };
        let schedule = match w.schedule.clone() {
            Schedule::Once { start, end } => ScheduleView {
                repeat: "once",
                start: Some(start),
                end: Some(end),
                at: None,
                minutes: None,
                weekdays: None,
                from: None,
                until: None,
            },
            Schedule::Daily {
                at,
                minutes,
                weekdays,
                from,
                until,
            } => ScheduleView {
                repeat: "daily",
                start: None,
                end: None,
                at: Some(at),
                minutes: Some(minutes),
                weekdays: (!weekdays.is_empty()).then_some(weekdays),
                from,
                until,
            },
        };
        Self {
            id: w.id,
            scope,
            region,
            campus,
            device,
            schedule,
            utc_offset_minutes: w.utc_offset_minutes,
            active_until: w.active_until(now),
            comment: w.comment,
            created_by: w.created_by,
            created_at: w.created_at,
            withdrawn,
        }
    }
}

#[derive(Serialize)]
struct MaintenanceList {
    maintenance: Vec<MaintenanceItem>,
}

async fn list_maintenance(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<MaintenanceQuery>, QueryRejection>,
) -> Result<Json<MaintenanceList>, ApiError> {
    let Query(q) = q?;
    let now = s.clock.now();
    let live: BTreeMap<u64, Maintenance> = s
        .monitor()
        .maintenance_windows()
        .map(|w| (w.id, w.clone()))
        .collect();
    let windows = if q.withdrawn.unwrap_or(false) {
        s.store.maintenance(true).await?
    } else {
        live.values().cloned().collect()
    };
    let maintenance = windows
        .into_iter()
        .filter(|w| window_visible(&s, &caller, w))
        .map(|w| {
            let withdrawn = !live.contains_key(&w.id);
            MaintenanceItem::new(w, now, withdrawn)
        })
        .collect();
    Ok(Json(MaintenanceList { maintenance }))
}

async fn submit_maintenance(
    s: &AppState,
    op: MaintenanceOp,
) -> Result<Option<Maintenance>, ApiError> {
    ask_engine(&s.inbound, |reply| Inbound::Maintenance { op, reply })
        .await?
        .map_err(|e| match e {
            MaintenanceError::NotFound(_) => ApiError::NotFound(e.to_string()),
            _ => ApiError::BadRequest(e.to_string()),
        })
}

/// The region a campus is registered (or reports) in.
fn campus_region(s: &AppState, campus: &CampusId) -> Option<RegionCode> {
    s.monitor().campus(campus.as_str()).map(|c| c.region)
}

/// Whether a window concerns campuses the caller sees: one of theirs, or a region that
/// contains their scope.
fn window_visible(s: &AppState, caller: &Caller, w: &Maintenance) -> bool {
    match &w.scope {
        Scope::Region { region } => {
            caller.sees(region) || caller.0.scope.is_some_and(|own| own.is_within(region))
        }
        Scope::Campus { campus } | Scope::Device { campus, .. } => {
            campus_region(s, campus).is_some_and(|r| caller.sees(&r))
        }
    }
}

/// Plans a maintenance window; answered with it (and its id) once stored.
async fn add_maintenance(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<MaintenanceRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<MaintenanceItem>), ApiError> {
    let Json(r) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    caller.require(Role::Operator)?;
    let now = s.clock.now();
    let allowed = match &r.scope {
        Scope::Region { region } => caller.sees(region),
        Scope::Campus { campus } | Scope::Device { campus, .. } => {
            campus_region(&s, campus).is_some_and(|r| caller.sees(&r))
        }
    };
    if !allowed {
        return Err(ApiError::Forbidden(
            "the window covers campuses outside your scope".into(),
        ));
    }
    let window = Maintenance {
        id: 0,
        scope: r.scope,
        schedule: r.schedule,
        utc_offset_minutes: r.utc_offset_minutes,
        comment: r
            .comment
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
        created_by: r.created_by.trim().to_string(),
        created_at: now,
    };
    let window = submit_maintenance(&s, MaintenanceOp::Add(window))
        .await?
        .ok_or_else(|| ApiError::Internal("the window was not stored".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(MaintenanceItem::new(window, now, false)),
    ))
}

/// Withdraws a maintenance window; what it kept quiet is told now.
async fn remove_maintenance(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_number("window id", &id)?;
    caller.require(Role::Operator)?;
    let visible = s
        .monitor()
        .maintenance_windows()
        .find(|w| w.id == id)
        .cloned()
        .is_some_and(|w| window_visible(&s, &caller, &w));
    if !visible {
        return Err(ApiError::NotFound(format!(
            "maintenance window {id} does not exist"
        )));
    }
    submit_maintenance(&s, MaintenanceOp::Remove(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentQuery {
    state: Option<String>,
    /// Only incidents in this region (a county, or any county below a city or province).
    region: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

#[derive(Serialize)]
struct IncidentCampus {
    id: CampusId,
    name: Option<String>,
}

#[derive(Serialize)]
struct IncidentItem {
    id: u64,
    region: RegionCode,
    region_name: String,
    state: IncidentState,
    since: Timestamp,
    opened_at: Timestamp,
    resolved_at: Option<Timestamp>,
    campuses: Vec<IncidentCampus>,
    /// Campuses still offline.
    open_alerts: usize,
}

#[derive(Serialize)]
struct IncidentList {
    incidents: Vec<IncidentItem>,
}

/// Regional incidents: open ones from the live state, the rest from history.
async fn incidents(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<IncidentQuery>, QueryRejection>,
) -> Result<Json<IncidentList>, ApiError> {
    let Query(q) = q?;
    let state = match q.state.as_deref() {
        None | Some("all") => None,
        Some(st) => Some(IncidentState::parse(st).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "state {st:?}: use all, {}",
                IncidentState::choices()
            ))
        })?),
    };
    let region = caller.region(q.region.as_deref().map(parse_region).transpose()?)?;
    let limit = q.limit.unwrap_or(100).min(1000);
    let offset = q.offset.unwrap_or(0);
    let rows: Vec<Incident> = match state {
        Some(IncidentState::Open) => {
            let m = s.monitor();
            let mut v: Vec<Incident> = m
                .open_incidents()
                .filter(|i| region.is_none_or(|r| i.region.is_within(&r)))
                .cloned()
                .collect();
            v.sort_by_key(|i| std::cmp::Reverse(i.id));
            v.into_iter()
                .skip(offset.min(usize::MAX as u64) as usize)
                .take(limit as usize)
                .collect()
        }
        // The region (or the caller's scope) is filtered in the query, before paging.
        _ => s.store.incidents(state, region, limit, offset).await?,
    };
    let m = s.monitor();
    let names = RegionNames::builtin();
    let incidents = rows
        .into_iter()
        .filter(|i| caller.sees(&i.region) && region.is_none_or(|r| i.region.is_within(&r)))
        .map(|i| IncidentItem {
            id: i.id,
            region: i.region,
            region_name: names.name(&i.region),
            state: i.state,
            since: i.since,
            opened_at: i.opened_at,
            resolved_at: i.resolved_at,
            open_alerts: i.open_alerts.len(),
            campuses: i
                .campuses
                .iter()
                .map(|c| IncidentCampus {
                    id: c.clone(),
                    name: m
                        .campus(c.as_str())
                        .and_then(|v| v.registry.map(|r| r.name.clone())),
                })
                .collect(),
        })
        .collect();
    Ok(Json(IncidentList { incidents }))
}

/// The live alerts matching `f`, in the store's order (newest first).
fn active_alerts(m: &Monitor, f: &Filter) -> Vec<Alert> {
    let mut v: Vec<Alert> = m
        .active_alerts()
        .filter(|a| f.state.is_none_or(|st| a.state == st))
        .filter(|a| f.campus.as_ref().is_none_or(|c| &a.campus == c))
        .filter(|a| f.region.is_none_or(|r| a.region.is_within(&r)))
        .filter(|a| f.kind.is_none_or(|k| a.kind == k))
        .filter(|a| f.since.is_none_or(|t| a.since >= t))
        .filter(|a| f.until.is_none_or(|t| a.since < t))
        .cloned()
        .collect();
    v.sort_by(|a, b| b.since.cmp(&a.since).then(b.id.cmp(&a.id)));
    v.into_iter()
        .skip(f.offset as usize)
        .take(f.limit as usize)
        .collect()
}

#[derive(Serialize)]
struct EventList {
    events: Vec<StoredTransition>,
}

async fn events(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<EventList>, ApiError> {
    let Query(q) = q?;
    if q.state.is_some() {
        return Err(ApiError::BadRequest(
            "events take campus, region, kind, since, until, limit, offset".into(),
        ));
    }
    let mut f = q.filter()?;
    f.region = caller.region(f.region)?;
    let events = s.store.transitions(&f).await?;
    Ok(Json(EventList { events }))
}

// ---- registry -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    /// `upsert` (default) or `replace`.
    mode: Option<String>,
}

#[derive(Serialize)]
struct ImportResult {
    imported: usize,
    mode: &'static str,
    registered: u64,
}

/// Validates the whole file, then hands it to the engine, which stores it in one
/// transaction and updates coverage, in order with the message stream.
pub async fn submit_registry(
    inbound: &mpsc::Sender<Inbound>,
    entries: Vec<RegistryEntry>,
    replace: bool,
) -> Result<(), ApiError> {
    ask_engine(inbound, |reply| Inbound::Registry {
        entries,
        replace,
        reply,
    })
    .await?
    .map_err(ApiError::from)
}

/// Hands a request to the engine, which applies it in order with the message stream,
/// and waits for its answer (given once what it changed is stored).
async fn ask_engine<T>(
    inbound: &mpsc::Sender<Inbound>,
    request: impl FnOnce(oneshot::Sender<T>) -> Inbound,
) -> Result<T, ApiError> {
    let gone = || ApiError::Unavailable("the server is shutting down".into());
    let (reply, rx) = oneshot::channel();
    inbound.send(request(reply)).await.map_err(|_| gone())?;
    rx.await.map_err(|_| gone())
}

async fn import_registry(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<ImportQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Json<ImportResult>, ApiError> {
    let Query(q) = q?;
    let (replace, mode) = match q.mode.as_deref() {
        None | Some("upsert") => (false, "upsert"),
        Some("replace") => (true, "replace"),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "mode {other:?}: use upsert or replace"
            )))
        }
    };
    caller.require(Role::Admin)?;
    let entries = registry::parse_csv(&body).map_err(ApiError::BadRegistry)?;
    if let Some(outside) = entries.iter().find(|e| !caller.sees(&e.region)) {
        return Err(ApiError::Forbidden(format!(
            "campus {} is in region {}, outside your scope; nothing was imported",
            outside.campus, outside.region
        )));
    }
    if replace && caller.0.scope.is_some() {
        return Err(ApiError::Forbidden(
            "replacing the whole registry needs an administrator of every region".into(),
        ));
    }
    let imported = entries.len();
    submit_registry(&s.inbound, entries, replace).await?;
    let registered = s.monitor().coverage().total(None, None).registered;
    Ok(Json(ImportResult {
        imported,
        mode,
        registered,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryQuery {
    format: Option<String>,
}

async fn get_registry(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<RegistryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let mut entries = s.store.registry().await?;
    entries.retain(|e| caller.sees(&e.region));
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(entries).into_response()),
        // A download to edit in a spreadsheet and import again: with a byte order mark, as
        // the reports' CSV, so that Excel shows Chinese names (the import skips the mark).
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"registry.csv\"",
                ),
            ],
            format!("\u{feff}{}", registry::to_csv(&entries)),
        )
            .into_response()),
        Some(other) => Err(ApiError::BadRequest(format!(
            "format {other:?}: use json or csv"
        ))),
    }
}
