//! Coverage now: a region's (or the whole area's) campuses and how many are networked,
//! by school type and by child region, with the other partitions' figures added.

use std::sync::Mutex;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use campuswatch_protocol::{RegionCode, RegionLevel, SchoolType, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::{parse_school_type, ApiError};
use super::extract::ApiQuery;
use super::schemas;
use super::AppState;
use crate::monitor::coverage::CoverageBlock;
use crate::regions::RegionNames;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct CoverageQuery {
    /// Only this region node and what lies below it: a province, city (prefecture or
    /// league) or county code.
    #[param(value_type = Option<schemas::RegionCode>, example = "150100")]
    region: Option<String>,
    /// Only campuses of this school type.
    #[param(value_type = Option<schemas::SchoolType>)]
    school_type: Option<String>,
    /// This server's campuses only. Without it, a server with `cluster.peers` adds the
    /// other partitions' figures (asking them with `local=true`).
    #[serde(default)]
    #[param(default = false)]
    local: bool,
    /// `city` or `county`: `children` lists every region of that level below the node
    /// (every county of a province, to rank them or draw them on a map), each with its
    /// `parent`, instead of the node's direct children.
    #[param(value_type = Option<String>, example = "county")]
    level: Option<String>,
}

/// A region node.
#[derive(Serialize, ToSchema)]
pub(super) struct RegionInfo {
    #[schema(value_type = schemas::RegionCode)]
    pub(super) code: String,
    /// The region's name (built-in names; the code itself when unknown).
    pub(super) name: String,
    #[schema(value_type = schemas::RegionLevel)]
    pub(super) level: &'static str,
}

pub(super) fn level_name(l: RegionLevel) -> &'static str {
    match l {
        RegionLevel::Province => "province",
        RegionLevel::City => "city",
        RegionLevel::County => "county",
    }
}

pub(super) fn region_info(code: RegionCode) -> RegionInfo {
    RegionInfo {
        code: code.to_string(),
        name: RegionNames::builtin().name(&code),
        level: level_name(code.level()),
    }
}

/// A region's coverage as a child block; with `parent`, the region above it too.
fn child_block(code: RegionCode, block: CoverageBlock, parent: bool) -> ChildBlock {
    let info = region_info(code);
    ChildBlock {
        code: info.code,
        name: info.name,
        level: info.level,
        parent: code.parent().filter(|_| parent).map(region_info),
        block,
    }
}

/// Coverage of a node of the region tree (or the whole area watched), with its split by
/// school type and by child.
#[derive(Serialize, ToSchema)]
pub(super) struct CoverageResponse {
    /// When the figures were taken.
    #[schema(value_type = String, format = DateTime)]
    at: Timestamp,
    /// The node asked for; null for the whole area.
    #[schema(required)]
    region: Option<RegionInfo>,
    /// The regions above the node that the caller may see, from the top down (the
    /// console's breadcrumbs); empty for the whole area.
    path: Vec<RegionInfo>,
    /// The school type asked for; null for all.
    #[schema(required, value_type = Option<schemas::SchoolType>)]
    school_type: Option<SchoolType>,
    #[serde(flatten)]
    totals: CoverageBlock,
    /// One block per school type (only the one asked for, if any), in the order
    /// kindergarten, primary, secondary, other.
    school_types: Vec<SchoolTypeBlock>,
    /// One block per child node holding registered campuses: provinces of the whole area,
    /// cities of a province, counties of a city, campuses of a county.
    children: Vec<ChildBlock>,
}

/// Coverage of one school type within the node asked for.
#[derive(Serialize, ToSchema)]
#[schema(as = SchoolTypeCoverage)]
struct SchoolTypeBlock {
    #[schema(value_type = schemas::SchoolType)]
    school_type: SchoolType,
    #[serde(flatten)]
    block: CoverageBlock,
}

/// Coverage of one child of the node asked for: its regions with registered campuses,
/// or, below a county, its registered campuses.
#[derive(Serialize, ToSchema)]
#[schema(as = CoverageChild)]
struct ChildBlock {
    /// A region code, or a campus id for the campuses of a county.
    code: String,
    /// The region's name, or the campus's registered name.
    name: String,
    /// `province` (children of the whole area), `city`, `county`, or `campus`.
    #[schema(schema_with = child_level)]
    level: &'static str,
    /// The region above it, when asked for with `level`.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<RegionInfo>,
    #[serde(flatten)]
    block: CoverageBlock,
}

fn child_level() -> utoipa::openapi::schema::ObjectBuilder {
    schemas::string_enum(
        ["province", "city", "county", "campus"],
        "`province` (children of the whole area), `city`, `county`, or `campus`.",
    )
}

/// Coverage of a region
///
/// How many registered campuses of a region (or of the whole area watched) are
/// reporting and have networked alarm and video links, with device-level alarm and
/// camera figures, split by school type and by child region (or, for a county, by
/// campus). Only registered campuses count.
#[utoipa::path(
    get,
    path = "/api/v1/coverage",
    operation_id = "getCoverage",
    tag = "coverage",
    params(CoverageQuery),
    responses(
        (status = 200, description = "Coverage figures.", body = CoverageResponse),
        (status = 400, response = super::openapi::BadRequest),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 403, response = super::openapi::Forbidden),
        (status = 503, description = "A partition's server (`cluster.peers`) did not answer: the whole area's figure cannot be given (ask with `local=true` for this server's own).", body = super::openapi::ErrorDoc),
    ),
)]
pub(super) async fn coverage(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CoverageQuery>,
) -> Result<Response, ApiError> {
    let region = caller.region_param(q.region.as_deref())?;
    let school_type = q
        .school_type
        .as_deref()
        .map(parse_school_type)
        .transpose()?;
    let level = match q.level.as_deref() {
        None => None,
        Some("city") => Some(RegionLevel::City),
        Some("county") => Some(RegionLevel::County),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "level {other:?}: use city or county"
            )))
        }
    };
    if let (Some(l), Some(r)) = (level, region) {
        if r.level() == RegionLevel::County
            || (l == RegionLevel::City && r.level() != RegionLevel::Province)
        {
            return Err(ApiError::BadRequest(format!(
                "level {}: there is no such level below region {r}",
                level_name(l)
            )));
        }
    }
    let at = s.clock.now();
    // Another partition's campuses never share a county with ours, but its answer is
    // added to the listing; only this server's own listing is kept.
    let keep_listing = q.local || s.peers.is_empty();
    let mut listing = None;
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
        let children = match (level, region) {
            (Some(level), _) => cov
                .regions_at(region, level)
                .into_iter()
                .map(|code| child_block(code, cov.total(Some(code), school_type).block(), true))
                .collect(),
            (None, Some(r)) if r.level() == RegionLevel::County => {
                let campuses = || {
                    m.county_campuses(&r)
                        .into_iter()
                        .filter(|c| {
                            school_type
                                .is_none_or(|t| c.registry.is_some_and(|e| e.school_type == t))
                        })
                        .map(|c| ChildBlock {
                            code: c.id.to_string(),
                            name: c.registry.map(|e| e.name.clone()).unwrap_or_default(),
                            level: "campus",
                            parent: None,
                            block: c.contribution.block(),
                        })
                        .collect()
                };
                match cov.version(r).filter(|_| keep_listing) {
                    Some(version) => {
                        listing = Some(
                            s.county_listings
                                .get_or_make((r, school_type, version), campuses)?,
                        );
                        Vec::new()
                    }
                    None => campuses(),
                }
            }
            _ => cov
                .child_regions(region)
                .map(|child| child_block(child, cov.total(Some(child), school_type).block(), false))
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
        if let Some(l) = level {
            query.push(("level", level_name(l).to_string()));
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
    match listing {
        None => Ok(Json(answer).into_response()),
        Some(children) => Ok(with_children(&answer, &children)?),
    }
}

/// The answer, whose `children` is empty, as JSON with `children` in its place.
fn with_children(answer: &CoverageResponse, children: &[u8]) -> Result<Response, ApiError> {
    const EMPTY: &[u8] = b"[]}";
    let mut body = serde_json::to_vec(answer).map_err(|e| ApiError::Internal(e.to_string()))?;
    // `children` is the last field, so the answer ends `"children":[]}`.
    if !body.ends_with(b"\"children\":[]}") {
        return Err(ApiError::Internal(
            "the coverage answer does not end with its children".into(),
        ));
    }
    body.truncate(body.len() - EMPTY.len());
    body.reserve_exact(children.len() + 1);
    body.extend_from_slice(children);
    body.push(b'}');
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// The most the kept county listings take together.
const LISTINGS_BYTES: usize = 16 << 20;

/// Which listing: the county, the school type asked for, and the county's mark
/// ([`crate::monitor::coverage::CoverageIndex::version`]) when it was made.
type ListingKey = (RegionCode, Option<SchoolType>, u64);

/// The campuses of counties (`children` of a county's coverage) as JSON, each kept until
/// a campus of its county changes. A county of 1,600 campuses is 800 KB of JSON, which
/// took milliseconds to build at every ask; a county wall or console asks over and over
/// while most counties change far less often. At most [`LISTINGS_BYTES`] are kept, the
/// least recently asked for going first.
#[derive(Default)]
pub struct CountyListings {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    listings: Vec<KeptListing>,
    /// Asks so far: a listing's `last_asked` is the count at its last ask.
    asks: u64,
}

struct KeptListing {
    key: ListingKey,
    json: Bytes,
    last_asked: u64,
}

impl CountyListings {
    fn get_or_make(
        &self,
        key: ListingKey,
        make: impl FnOnce() -> Vec<ChildBlock>,
    ) -> Result<Bytes, ApiError> {
        let lock = || self.kept.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut kept = lock();
            kept.asks += 1;
            let asks = kept.asks;
            if let Some(k) = kept.listings.iter_mut().find(|k| k.key == key) {
                k.last_asked = asks;
                return Ok(k.json.clone());
            }
        }
        let json = Bytes::from(
            serde_json::to_vec(&make()).map_err(|e| ApiError::Internal(e.to_string()))?,
        );
        let mut kept = lock();
        kept.asks += 1;
        let asks = kept.asks;
        let listings = &mut kept.listings;
        // An older listing of the same county and school type is out of date.
        listings.retain(|k| (k.key.0, k.key.1) != (key.0, key.1));
        listings.push(KeptListing {
            key,
            json: json.clone(),
            last_asked: asks,
        });
        let mut total: usize = listings.iter().map(|k| k.json.len()).sum();
        while total > LISTINGS_BYTES {
            let Some((oldest, _)) = listings
                .iter()
                .enumerate()
                .min_by_key(|(_, k)| k.last_asked)
            else {
                break;
            };
            total -= listings.swap_remove(oldest).json.len();
        }
        Ok(json)
    }
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
                    let parent = theirs
                        .parent
                        .then(|| RegionCode::parse(&theirs.code).ok())
                        .flatten()
                        .and_then(|c| c.parent())
                        .map(region_info);
                    self.children.push(ChildBlock {
                        code: theirs.code,
                        name: theirs.name,
                        level,
                        parent,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::coverage::Contribution;

    /// A listing of `n` campuses (about 500 bytes of JSON each).
    fn campuses(n: usize) -> Vec<ChildBlock> {
        (0..n)
            .map(|i| ChildBlock {
                code: format!("150102-P-{i:05}"),
                name: format!("Campus {i}"),
                level: "campus",
                parent: None,
                block: Contribution::default().block(),
            })
            .collect()
    }

    #[test]
    fn listings_are_kept_until_their_mark_changes_and_the_least_recently_asked_go_first() {
        let listings = CountyListings::default();
        let county = |c: &str| RegionCode::parse(c).unwrap();
        let made = std::cell::Cell::new(0);
        let ask = |code: &str, mark: u64| {
            listings
                .get_or_make((county(code), None, mark), || {
                    made.set(made.get() + 1);
                    // 6 MB or more: three of them are over the 16 MB kept.
                    campuses(14_000)
                })
                .unwrap()
        };
        let a = ask("150102", 1);
        assert!(a.len() >= 6 << 20, "{}", a.len());
        assert_eq!(ask("150102", 1), a);
        assert_eq!(made.get(), 1, "asked again under the same mark: kept");
        ask("150102", 2);
        assert_eq!(made.get(), 2, "a new mark: made again");
        ask("150103", 1);
        ask("150102", 2);
        ask("150104", 1);
        assert_eq!(made.get(), 4);
        // Three listings are over the bound: 150103, asked least recently, went.
        ask("150102", 2);
        ask("150104", 1);
        assert_eq!(made.get(), 4);
        ask("150103", 1);
        assert_eq!(made.get(), 5);
    }
}
