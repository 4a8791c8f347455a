//! Names of administrative divisions, for the console, the API and reports.
//!
//! Region codes carry the tree by themselves (see [`RegionCode`]), so coverage never needs
//! this table; it only turns `150102` into 新城区 / Xincheng District for people. The
//! built-in table is Inner Mongolia (150000): the province, its 12 cities and leagues and
//! its 103 county-level divisions, with GB/T 2260 codes. It lives in
//! `server/data/regions-150000.csv` and is compiled into the binary so that a fresh server
//! shows names without any setup. A code missing from the table is shown as the code itself.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use campuswatch_protocol::ids::{RegionCode, RegionLevel};

/// The embedded table: `code,name,name_en`, one division per row.
const BUILTIN_CSV: &str = include_str!("../data/regions-150000.csv");

/// One administrative division.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Region {
    pub code: RegionCode,
    /// The Chinese name, as in GB/T 2260 (`土默特左旗`).
    pub name: String,
    /// The English name (`Tumed Left Banner`).
    pub name_en: String,
}

impl Region {
    pub fn level(&self) -> RegionLevel {
        self.code.level()
    }
}

/// Why a region table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("region table line {line}: {message}")]
pub struct RegionTableError {
    pub line: u64,
    pub message: String,
}

/// A lookup table from region code to names.
#[derive(Debug, Clone, Default)]
pub struct RegionNames {
    // Ordered by code, so children of a node come out in the order officials list them.
    by_code: BTreeMap<RegionCode, Region>,
}

impl RegionNames {
    /// The table compiled into the binary, parsed on first use.
    pub fn builtin() -> &'static RegionNames {
        static TABLE: OnceLock<RegionNames> = OnceLock::new();
        TABLE.get_or_init(|| {
            // The text is part of the source tree and a unit test parses it, so a failure
            // here is a build defect, not bad input.
            RegionNames::from_csv(BUILTIN_CSV)
                .unwrap_or_else(|e| panic!("the built-in region table is broken: {e}"))
        })
    }

    /// Parses a `code,name,name_en` table with a header row. Every row must be valid and
    /// every code unique.
    pub fn from_csv(text: &str) -> Result<RegionNames, RegionTableError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| RegionTableError {
                line: 1,
                message: e.to_string(),
            })?
            .clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| RegionTableError {
                    line: 1,
                    message: format!("missing column {name:?}"),
                })
        };
        let (code_at, name_at, en_at) = (column("code")?, column("name")?, column("name_en")?);

        let mut by_code = BTreeMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| RegionTableError {
                line: e.position().map_or(0, |p| p.line()),
                message: e.to_string(),
            })?;
            let line = record.position().map_or(0, |p| p.line());
            let err = |message: String| RegionTableError { line, message };
            let field = |i: usize| record.get(i).unwrap_or("");
            let code = RegionCode::parse(field(code_at)).map_err(|e| err(e.to_string()))?;
            let (name, name_en) = (field(name_at), field(en_at));
            if name.is_empty() || name_en.is_empty() {
                return Err(err(format!("{code} needs both a name and an English name")));
            }
            let region = Region {
                code,
                name: name.to_string(),
                name_en: name_en.to_string(),
            };
            if by_code.insert(code, region).is_some() {
                return Err(err(format!("{code} is listed twice")));
            }
        }
        Ok(RegionNames { by_code })
    }

    pub fn get(&self, code: &RegionCode) -> Option<&Region> {
        self.by_code.get(code)
    }

    /// The Chinese name, or the code itself when the table does not know it (a registry
    /// may well list counties of other provinces).
    pub fn name(&self, code: &RegionCode) -> String {
        self.get(code)
            .map_or_else(|| code.to_string(), |r| r.name.clone())
    }

    /// Every division in the table, ordered by code.
    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.by_code.values()
    }

    /// The county-level entries (districts, counties, banners, county-level cities):
    /// the level campuses are registered at.
    pub fn counties(&self) -> impl Iterator<Item = &Region> {
        self.iter().filter(|r| r.level() == RegionLevel::County)
    }

    /// The divisions directly below `code` (cities of a province, counties of a city),
    /// ordered by code; empty for a county or an unknown code.
    pub fn children(&self, code: &RegionCode) -> Vec<&Region> {
        self.iter()
            .filter(|r| r.code.parent().as_ref() == Some(code))
            .collect()
    }
}

/// Tile maps compiled in, by province: `code,row,col`, one equal tile per county in its
/// rough position (row 0 north, column 0 west), made by `server/data/tiles/make_tiles.py`
/// from GeoNames seat positions (CC BY 4.0; see `server/data/tiles/README.md`).
const BUILTIN_TILES: &[(&str, &str)] = &[("150000", include_str!("../data/tiles-150000.csv"))];

/// One county's tile, with the names the console shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Tile {
    pub code: String,
    pub name: String,
    pub name_en: String,
    /// The county's city (prefecture or league).
    pub city: String,
    pub city_en: String,
    pub row: u32,
    pub col: u32,
}

/// The tile map of `province` (a province code), if one is compiled in.
pub fn tiles(province: &str) -> Option<Vec<Tile>> {
    let (_, text) = BUILTIN_TILES.iter().find(|(p, _)| *p == province)?;
    let names = RegionNames::builtin();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut out = Vec::new();
    for row in reader.records() {
        // Part of the source tree, checked by a unit test: a bad row is skipped, not fatal.
        let Ok(row) = row else { continue };
        let (Some(code), Some(r), Some(c)) = (row.get(0), row.get(1), row.get(2)) else {
            continue;
        };
        let (Ok(code), Ok(r), Ok(c)) = (RegionCode::parse(code), r.parse(), c.parse()) else {
            continue;
        };
        let region = names.get(&code);
        let city = code.city().and_then(|c| names.get(&c));
        out.push(Tile {
            code: code.to_string(),
            name: region.map_or_else(|| code.to_string(), |r| r.name.clone()),
            name_en: region.map_or_else(|| code.to_string(), |r| r.name_en.clone()),
            city: city.map(|r| r.name.clone()).unwrap_or_default(),
            city_en: city.map(|r| r.name_en.clone()).unwrap_or_default(),
            row: r,
            col: c,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn code(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }

    #[test]
    fn builtin_table_has_inner_mongolia_with_12_cities_and_103_counties() {
        let t = RegionNames::builtin();
        let im = code("150000");
        assert_eq!(t.get(&im).unwrap().name, "内蒙古自治区");
        assert_eq!(t.children(&im).len(), 12);
        let counties: Vec<_> = t.counties().collect();
        assert_eq!(counties.len(), 103);
        assert!(counties.iter().all(|c| c.code.is_within(&im)));
        let per_city: usize = t
            .children(&im)
            .iter()
            .map(|c| t.children(&c.code).len())
            .sum();
        assert_eq!(per_city, 103);
        assert_eq!(t.iter().count(), 1 + 12 + 103);
    }

    #[test]
    fn every_county_has_its_city_in_the_table() {
        let t = RegionNames::builtin();
        for county in t.counties() {
            let city = county.code.city().unwrap();
            let found = t.get(&city);
            assert!(found.is_some(), "{} has no city {city}", county.code);
            assert_eq!(found.unwrap().level(), RegionLevel::City);
        }
    }

    #[test]
    fn names_are_unique_within_a_city() {
        let t = RegionNames::builtin();
        for city in t.children(&code("150000")) {
            let counties = t.children(&city.code);
            let zh: HashSet<_> = counties.iter().map(|c| &c.name).collect();
            let en: HashSet<_> = counties.iter().map(|c| &c.name_en).collect();
            assert_eq!(
                zh.len(),
                counties.len(),
                "Chinese names repeat in {}",
                city.name
            );
            assert_eq!(
                en.len(),
                counties.len(),
                "English names repeat in {}",
                city.name
            );
        }
    }

    #[test]
    fn well_known_codes_have_their_names() {
        let t = RegionNames::builtin();
        for (c, zh, en) in [
            ("150102", "新城区", "Xincheng District"),
            ("150121", "土默特左旗", "Tumed Left Banner"),
            ("150402", "红山区", "Hongshan District"),
            ("150781", "满洲里市", "Manzhouli City"),
            ("152200", "兴安盟", "Hinggan League"),
            ("152923", "额济纳旗", "Ejin Banner"),
        ] {
            let r = t.get(&code(c)).unwrap();
            assert_eq!((r.name.as_str(), r.name_en.as_str()), (zh, en));
        }
    }

    #[test]
    fn unknown_code_is_named_by_the_code_itself() {
        let t = RegionNames::builtin();
        assert_eq!(t.name(&code("110101")), "110101");
        assert_eq!(t.name(&code("150300")), "乌海市");
        assert!(t.children(&code("110000")).is_empty());
        assert!(t.children(&code("150102")).is_empty());
    }

    #[test]
    fn children_of_a_city_are_its_counties_in_code_order() {
        let t = RegionNames::builtin();
        let wuhai: Vec<_> = t
            .children(&code("150300"))
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(wuhai, ["海勃湾区", "海南区", "乌达区"]);
    }

    #[test]
    fn table_with_a_repeated_code_or_bad_row_is_refused() {
        let twice = "code,name,name_en\n150100,a,A\n150100,b,B\n";
        assert_eq!(RegionNames::from_csv(twice).unwrap_err().line, 3);
        let bad = "code,name,name_en\n15x100,a,A\n";
        assert!(RegionNames::from_csv(bad).is_err());
        let missing = "code,name\n150100,a\n";
        assert!(RegionNames::from_csv(missing).is_err());
        let empty_name = "code,name,name_en\n150100,,A\n";
        assert!(RegionNames::from_csv(empty_name).is_err());
    }

    #[test]
    fn every_county_of_the_table_has_one_tile_of_its_own_and_no_other_does() {
        for (province, _) in BUILTIN_TILES {
            let tiles = tiles(province).unwrap();
            let counties: Vec<String> = RegionNames::builtin()
                .iter()
                .filter(|r| {
                    r.level() == RegionLevel::County && r.code.province().to_string() == *province
                })
                .map(|r| r.code.to_string())
                .collect();
            let mut codes: Vec<String> = tiles.iter().map(|t| t.code.clone()).collect();
            codes.sort();
            assert_eq!(codes, counties, "one tile per county of {province}");
            let cells: std::collections::BTreeSet<(u32, u32)> =
                tiles.iter().map(|t| (t.row, t.col)).collect();
            assert_eq!(cells.len(), tiles.len(), "two counties on one cell");
            assert!(tiles.iter().all(|t| !t.city.is_empty() && t.name != t.code));
        }
        assert_eq!(tiles("110000"), None);
    }
}
