//! Coverage now: a region's (or the whole area's) campuses and how many are networked,
//! by school type and by child region, with the other partitions' figures added.

use axum::extract::State;
use axum::Json;
use campuswatch_protocol::{RegionCode, RegionLevel, SchoolType, Timestamp};
use serde::{Deserialize, Serialize};

use super::caller::Caller;
use super::error::{parse_region, parse_school_type, ApiError};
use super::extract::ApiQuery;
use super::AppState;
use crate::monitor::coverage::CoverageBlock;
use crate::regions::RegionNames;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CoverageQuery {
    region: Option<String>,
    school_type: Option<String>,
    /// This server's campuses only, without the other partitions' (`cluster.peers`).
    #[serde(default)]
    local: bool,
}

#[derive(Serialize)]
pub(super) struct RegionInfo {
    pub(super) code: String,
    pub(super) name: String,
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

#[derive(Serialize)]
pub(super) struct CoverageResponse {
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

pub(super) async fn coverage(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CoverageQuery>,
) -> Result<Json<CoverageResponse>, ApiError> {
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
