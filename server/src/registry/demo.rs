//! The demo registry: a plausible registry over the counties of Inner Mongolia, for the
//! demo and for tests.

use campuswatch_protocol::{CampusId, SchoolType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::RegistryEntry;
use crate::regions::{Region, RegionNames};

/// A plausible registry of `campuses` campuses over all 103 counties of Inner Mongolia.
///
/// Deterministic for a given `seed`. With at least 103 campuses every county gets one; the
/// rest go more often to city districts, where most schools are. About 45% kindergartens,
/// 35% primary and 20% secondary schools, named the way local schools are
/// (`土默特左旗第二小学`, `赤峰市红山区第一中学`), with ids `{county}-{K|P|S}-{nnnn}`.
/// Sorted by id.
pub fn demo_registry(campuses: usize, seed: u64) -> Vec<RegistryEntry> {
    let regions = RegionNames::builtin();
    let counties: Vec<&Region> = regions.counties().collect();
    if counties.is_empty() {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(seed);

    let weights: Vec<u32> = counties.iter().map(|c| county_weight(c)).collect();
    let total: u32 = weights.iter().sum();
    let mut per_county = vec![0usize; counties.len()];
    if campuses >= counties.len() {
        per_county.fill(1);
    }
    for _ in per_county.iter().sum::<usize>()..campuses {
        let mut ticket = rng.random_range(0..total);
        // Walk the cumulative weights; the last county takes any remainder.
        let mut pick = counties.len() - 1;
        for (i, w) in weights.iter().enumerate() {
            if ticket < *w {
                pick = i;
                break;
            }
            ticket -= w;
        }
        per_county[pick] += 1;
    }

    let mut entries = Vec::with_capacity(campuses);
    for (county, &count) in counties.iter().zip(&per_county) {
        let city_name = county
            .code
            .city()
            .and_then(|c| regions.get(&c))
            .map_or("", |c| c.name.as_str());
        // Per school type: the last id number used, the last ordinal name used (第一, 第二…)
        // and the special names already given in this county.
        let mut next_id = [0usize; 3];
        let mut next_ordinal = [0usize; 3];
        let mut specials_used: Vec<&str> = Vec::new();
        for _ in 0..count {
            let t = match rng.random_range(0..100) {
                0..45 => 0,
                45..80 => 1,
                _ => 2,
            };
            let (school_type, letter, suffix, specials, cameras) = DEMO_TYPES[t];
            next_id[t] += 1;

            // City districts share names across China (青山区, 新城区), so schools there
            // often carry the city's name too.
            let prefix = if county.name.ends_with('区') && rng.random_bool(0.5) {
                format!("{city_name}{}", county.name)
            } else {
                county.name.clone()
            };
            let special = specials
                .iter()
                .find(|s| !specials_used.contains(s))
                .filter(|_| rng.random_bool(0.15));
            let name = match special {
                Some(s) => {
                    specials_used.push(s);
                    format!("{prefix}{s}")
                }
                None => {
                    next_ordinal[t] += 1;
                    format!("{prefix}第{}{suffix}", chinese_number(next_ordinal[t]))
                }
            };
            let id = format!("{}-{letter}-{:04}", county.code, next_id[t]);
            let Ok(campus) = CampusId::parse(&id) else {
                continue; // cannot happen: a six-digit code, a letter and digits
            };
            let expected_alarms = if t == 2 && rng.random_bool(0.3) { 2 } else { 1 };
            entries.push(RegistryEntry {
                campus,
                name,
                region: county.code,
                school_type,
                expected_alarms,
                expected_cameras: rng.random_range(cameras.0..=cameras.1),
                gb_device_ids: Vec::new(),
            });
        }
    }
    entries.sort_by(|a, b| a.campus.cmp(&b.campus));
    entries
}

/// Per demo school type: type, id letter, name suffix, special names (used at most once
/// per county), range of expected cameras.
type DemoType = (
    SchoolType,
    char,
    &'static str,
    [&'static str; 3],
    (u32, u32),
);
const DEMO_TYPES: [DemoType; 3] = [
    (
        SchoolType::Kindergarten,
        'K',
        "幼儿园",
        ["实验幼儿园", "机关幼儿园", "蒙古族幼儿园"],
        (6, 16),
    ),
    (
        SchoolType::Primary,
        'P',
        "小学",
        ["实验小学", "蒙古族小学", "民族小学"],
        (12, 32),
    ),
    (
        SchoolType::Secondary,
        'S',
        "中学",
        ["实验中学", "蒙古族中学", "民族中学"],
        (24, 60),
    ),
];

/// Rough share of a county in the demo: city districts hold most pupils, county-level
/// cities more than rural counties and banners.
fn county_weight(county: &Region) -> u32 {
    if county.name.ends_with('区') {
        3
    } else if county.name.ends_with('市') {
        2
    } else {
        1
    }
}

/// `3` → 三, `12` → 十二, `105` → 一百零五; Arabic digits from 10 000 on.
fn chinese_number(n: usize) -> String {
    const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    if n == 0 || n >= 10_000 {
        return n.to_string();
    }
    let mut out = String::new();
    let mut zero_pending = false;
    for (digit, unit) in [
        (n / 1000, "千"),
        (n / 100 % 10, "百"),
        (n / 10 % 10, "十"),
        (n % 10, ""),
    ] {
        if digit == 0 {
            zero_pending = !out.is_empty();
            continue;
        }
        if zero_pending {
            out.push_str(DIGITS[0]);
            zero_pending = false;
        }
        // 十二, not 一十二, when the tens lead.
        if !(digit == 1 && unit == "十" && out.is_empty()) {
            out.push_str(DIGITS[digit]);
        }
        out.push_str(unit);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use campuswatch_protocol::RegionCode;

    use super::*;
    use crate::registry::{parse_csv, to_csv};

    #[test]
    fn demo_registry_is_the_same_for_the_same_seed_and_differs_for_another() {
        assert_eq!(demo_registry(300, 1), demo_registry(300, 1));
        assert_ne!(demo_registry(300, 1), demo_registry(300, 2));
    }

    #[test]
    fn demo_registry_has_the_asked_number_of_campuses_with_unique_ids() {
        for n in [0, 1, 50, 103, 300, 2000] {
            let r = demo_registry(n, 9);
            assert_eq!(r.len(), n);
            let ids: HashSet<_> = r.iter().map(|e| &e.campus).collect();
            assert_eq!(ids.len(), n);
        }
    }

    #[test]
    fn demo_registry_puts_a_campus_in_every_county_and_more_in_city_districts() {
        let regions = RegionNames::builtin();
        let r = demo_registry(1030, 4);
        let mut per_county: HashMap<RegionCode, usize> = HashMap::new();
        for e in &r {
            *per_county.entry(e.region).or_default() += 1;
        }
        assert_eq!(per_county.len(), 103);
        assert!(regions.counties().all(|c| per_county.contains_key(&c.code)));
        let mean = |district: bool| {
            let counts: Vec<usize> = regions
                .counties()
                .filter(|c| c.name.ends_with('区') == district)
                .map(|c| per_county[&c.code])
                .collect();
            counts.iter().sum::<usize>() as f64 / counts.len() as f64
        };
        assert!(
            mean(true) > 1.5 * mean(false),
            "{} vs {}",
            mean(true),
            mean(false)
        );
    }

    #[test]
    fn demo_registry_mixes_school_types_in_roughly_the_intended_shares() {
        let r = demo_registry(5000, 5);
        let share = |t: SchoolType| r.iter().filter(|e| e.school_type == t).count() as f64 / 5000.0;
        assert!((share(SchoolType::Kindergarten) - 0.45).abs() < 0.03);
        assert!((share(SchoolType::Primary) - 0.35).abs() < 0.03);
        assert!((share(SchoolType::Secondary) - 0.20).abs() < 0.03);
        assert_eq!(share(SchoolType::Other), 0.0);
    }

    #[test]
    fn demo_registry_ids_names_and_device_counts_look_real() {
        let regions = RegionNames::builtin();
        for e in demo_registry(1000, 6) {
            let (letter, suffix, cameras) = match e.school_type {
                SchoolType::Kindergarten => ('K', "幼儿园", 6..=16),
                SchoolType::Primary => ('P', "小学", 12..=32),
                SchoolType::Secondary => ('S', "中学", 24..=60),
                SchoolType::Other => panic!("the demo has no other schools"),
            };
            let id = e.campus.as_str();
            let (code, rest) = id.split_at(6);
            assert_eq!(code, e.region.as_str());
            assert!(
                rest.len() == 7 && rest.starts_with(&format!("-{letter}-")),
                "{id}"
            );
            assert!(rest[3..].bytes().all(|b| b.is_ascii_digit()), "{id}");
            let county = &regions.get(&e.region).unwrap().name;
            assert!(
                e.name.contains(county.as_str()) && e.name.ends_with(suffix),
                "{}",
                e.name
            );
            assert!(cameras.contains(&e.expected_cameras), "{e:?}");
            let alarms = if e.school_type == SchoolType::Secondary {
                1..=2
            } else {
                1..=1
            };
            assert!(alarms.contains(&e.expected_alarms), "{e:?}");
        }
    }

    #[test]
    fn demo_registry_survives_its_own_csv() {
        let r = demo_registry(500, 8);
        assert_eq!(parse_csv(to_csv(&r).as_bytes()).unwrap(), r);
    }

    /// `config/demo-registry.csv` is `to_csv(&demo_registry(300, 1))`. To rewrite it after
    /// changing the generator: `UPDATE_DEMO_REGISTRY=1 cargo test -p campuswatch-server
    /// demo_registry_csv`.
    #[test]
    fn demo_registry_csv_in_config_matches_the_generator() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/demo-registry.csv");
        let want = demo_registry(300, 1);
        if std::env::var_os("UPDATE_DEMO_REGISTRY").is_some() {
            std::fs::write(path, to_csv(&want)).unwrap();
        }
        let file = std::fs::read(path).unwrap();
        assert_eq!(
            parse_csv(&file).unwrap(),
            want,
            "{path} is stale; rerun with UPDATE_DEMO_REGISTRY=1"
        );
    }

    #[test]
    fn chinese_numbers_read_as_in_school_names() {
        for (n, want) in [
            (1, "一"),
            (3, "三"),
            (10, "十"),
            (12, "十二"),
            (20, "二十"),
            (35, "三十五"),
            (100, "一百"),
            (105, "一百零五"),
            (110, "一百一十"),
            (1001, "一千零一"),
            (1100, "一千一百"),
            (10_000, "10000"),
        ] {
            assert_eq!(chinese_number(n), want, "{n}");
        }
    }
}
