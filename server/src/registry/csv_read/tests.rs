//! The registry reader's tests: every rule, line by line, and generated bad input.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::registry::test_util::HEADER;
use crate::registry::{demo_registry, to_csv};
use crate::testing::entry;

fn csv(rows: &[&str]) -> Vec<u8> {
    let mut s = HEADER.to_string();
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s.into_bytes()
}

fn errors(bytes: &[u8]) -> Vec<LineError> {
    parse_csv(bytes).expect_err("the file should be refused")
}

/// The only error of a file with one bad thing in it.
fn only_error(bytes: &[u8]) -> LineError {
    let errs = errors(bytes);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.into_iter().next().unwrap()
}

// ---- accepted files ----------------------------------------------------------------

#[test]
fn valid_file_gives_every_entry_in_file_order() {
    let got = parse_csv(&csv(&[
        "150102-K-0001,新城区第一幼儿园,150102,kindergarten,1,8",
        "150121-P-0002,土默特左旗第二小学,150121,primary,1,20",
    ]))
    .unwrap();
    assert_eq!(
        got,
        [
            entry("150102-K-0001", "150102", SchoolType::Kindergarten, 1, 8)
                .named("新城区第一幼儿园"),
            entry("150121-P-0002", "150121", SchoolType::Primary, 1, 20)
                .named("土默特左旗第二小学"),
        ]
    );
}

#[test]
fn header_columns_may_come_in_any_order_case_and_padding() {
    let file = " Expected_Cameras ,SCHOOL_TYPE,Region, name ,expected_alarms,ID\n\
                8,kindergarten,150102,新城区第一幼儿园,1,150102-K-0001\n";
    assert_eq!(
        parse_csv(file.as_bytes()).unwrap(),
        [
            entry("150102-K-0001", "150102", SchoolType::Kindergarten, 1, 8)
                .named("新城区第一幼儿园")
        ]
    );
}

#[test]
fn header_alone_is_an_empty_registry() {
    assert_eq!(parse_csv(HEADER.as_bytes()).unwrap(), []);
}

#[test]
fn byte_order_mark_is_stripped() {
    let mut file = b"\xEF\xBB\xBF".to_vec();
    file.extend(csv(&["150102-K-0001,a,150102,primary,1,8"]));
    assert_eq!(parse_csv(&file).unwrap().len(), 1);
}

#[test]
fn blank_lines_are_skipped_but_still_counted_in_line_numbers() {
    let file = format!("\n{HEADER}\n150102-K-0001,a,150102,primary,1,8\n  \n,,,,,\r\n\n150102-K-0002,b,150102,primary,1,x\n\n");
    let e = only_error(file.as_bytes());
    assert_eq!((e.line, e.column.as_deref()), (8, Some("expected_cameras")));
}

#[test]
fn fields_are_trimmed() {
    let got = parse_csv(&csv(&[
        " 150102-K-0001 , 新城区第一幼儿园\u{3000}, 150102 ,\tprimary , 1 , 8 ",
    ]))
    .unwrap();
    assert_eq!(
        got[0],
        entry("150102-K-0001", "150102", SchoolType::Primary, 1, 8).named("新城区第一幼儿园")
    );
}

#[test]
fn line_numbers_count_line_breaks_inside_quoted_names_and_lone_carriage_returns() {
    let file = format!(
        "{HEADER}150102-K-0001,\"a\nb\",150102,primary,1,8\n150102-K-0002,b,150102,primary,1,8\r150102-K-0003,c,150102,primary,1,x\n"
    );
    let got: Vec<_> = errors(file.as_bytes()).iter().map(|e| e.line).collect();
    assert_eq!(got, [2, 5]);
}

#[test]
fn crlf_line_endings_are_accepted() {
    let file = HEADER.replace('\n', "\r\n")
        + "150102-K-0001,a,150102,primary,1,8\r\n150102-K-0002,b,150102,primary,1,x\r\n";
    assert_eq!(only_error(file.as_bytes()).line, 3);
}

#[test]
fn school_type_accepts_english_and_chinese_names_in_any_case() {
    for (word, want) in [
        ("kindergarten", SchoolType::Kindergarten),
        ("Kindergarten", SchoolType::Kindergarten),
        ("幼儿园", SchoolType::Kindergarten),
        ("PRIMARY", SchoolType::Primary),
        ("小学", SchoolType::Primary),
        ("secondary", SchoolType::Secondary),
        ("中学", SchoolType::Secondary),
        ("初中", SchoolType::Secondary),
        ("高中", SchoolType::Secondary),
        ("完全中学", SchoolType::Secondary),
        ("other", SchoolType::Other),
        ("其他", SchoolType::Other),
    ] {
        let row = format!("150102-K-0001,a,150102,{word},1,8");
        assert_eq!(
            parse_csv(&csv(&[&row])).unwrap()[0].school_type,
            want,
            "{word}"
        );
    }
}

#[test]
fn counts_from_0_to_1024_are_accepted() {
    let got = parse_csv(&csv(&["150102-K-0001,a,150102,primary,0,1024"])).unwrap();
    assert_eq!((got[0].expected_alarms, got[0].expected_cameras), (0, 1024));
}

#[test]
fn quoted_name_with_comma_quote_and_non_ascii_is_read_back() {
    let got = parse_csv(&csv(&[
        r#"150102-K-0001,"新城区""阳光"",幼儿园",150102,幼儿园,1,8"#,
    ]))
    .unwrap();
    assert_eq!(got[0].name, "新城区\"阳光\",幼儿园");
}

// ---- refused files -----------------------------------------------------------------

#[test]
fn empty_file_asks_for_the_header() {
    for file in [&b""[..], b"\n\n", b"\xEF\xBB\xBF"] {
        let e = only_error(file);
        assert_eq!(e.line, 1);
        assert!(e.message.contains("header"), "{}", e.message);
    }
}

#[test]
fn file_without_a_header_row_is_told_to_add_one() {
    let e = only_error(b"150102-K-0001,a,150102,primary,1,8\n");
    assert_eq!(e.line, 1);
    assert!(
        e.message.contains("first row must be the header"),
        "{}",
        e.message
    );
    assert!(e.message.contains("expected_cameras"), "{}", e.message);
}

#[test]
fn unknown_column_is_named_with_the_expected_columns() {
    let e = only_error(b"id,name,region,school_type,expected_alarms,expected_cameras,phone\n");
    assert_eq!((e.line, e.column.as_deref()), (1, Some("phone")));
    assert!(
        e.message.contains("unknown column \"phone\""),
        "{}",
        e.message
    );
    assert!(e.message.contains(&COLUMNS.join(", ")), "{}", e.message);
}

#[test]
fn header_column_without_a_name_is_an_error() {
    let e = only_error(b"id,name,region,school_type,expected_alarms,expected_cameras,\n");
    assert!(e.message.contains("column 7 has no name"), "{}", e.message);
}

#[test]
fn missing_column_is_named() {
    let e = only_error(b"id,name,region,school_type,expected_alarms\n");
    assert!(
        e.message.contains("missing column(s) expected_cameras"),
        "{}",
        e.message
    );
}

#[test]
fn repeated_column_is_an_error() {
    let e = only_error(b"id,name,region,school_type,expected_alarms,expected_cameras,Name\n");
    assert_eq!(e.column.as_deref(), Some("name"));
    assert!(e.message.contains("twice"), "{}", e.message);
}

#[test]
fn region_must_be_a_county_not_a_city_or_province() {
    for (code, level) in [
        ("150100", "city"),
        ("152900", "city"),
        ("150000", "province"),
    ] {
        let row = format!("150102-K-0001,a,{code},primary,1,8");
        let e = only_error(&csv(&[&row]));
        assert_eq!((e.line, e.column.as_deref()), (2, Some("region")));
        assert!(
            e.message.contains(level) && e.message.contains("county"),
            "{}",
            e.message
        );
    }
}

#[test]
fn every_reason_has_its_code_and_the_values_it_names() {
    let params = |e: &LineError| {
        e.params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let e = only_error(&csv(&["150102-K-0001,a,150100,primary,1,8"]));
    assert_eq!(
        (e.code, params(&e).as_str()),
        ("not_county", "level=city value=150100")
    );
    let e = only_error(&csv(&["150102-K-0001,a,150102,university,1,8"]));
    assert_eq!(
        (e.code, params(&e).as_str()),
        ("unknown_school_type", "value=university")
    );
    let e = only_error(&csv(&["150102-K-0001,a,150102,primary,two,8"]));
    assert_eq!(
        (e.code, params(&e).as_str()),
        ("bad_count", "max=1024 value=two")
    );
    let e = only_error(&csv(&["a b,a,150102,primary,1,8"]));
    assert_eq!((e.code, params(&e).as_str()), ("bad_id", "value=a b"));
    let e = only_error(&csv(&["x,a,1501,primary,1,8"]));
    assert_eq!((e.code, params(&e).as_str()), ("bad_region", "value=1501"));
    let e = only_error(&csv(&["x,a,150102,primary,1"]));
    assert_eq!(
        (e.code, params(&e).as_str()),
        ("too_few_fields", "columns=6 fields=5")
    );
    let e = only_error(&csv(&["x,a,150102,primary,1,8", "x,b,150102,primary,1,8"]));
    assert_eq!(
        (e.code, params(&e).as_str()),
        ("duplicate_id", "first_line=2 id=x")
    );
    let e = only_error(b"id,name,region,school_type,expected_alarms\n");
    assert_eq!(e.code, "missing_columns");
    assert_eq!(e.params["columns"], "expected_cameras");
    let e = only_error(b"");
    assert_eq!(e.code, "empty_file");
    // The message is the same reason in words.
    assert_eq!(
        Reason::NotCounty {
            code: "150100".into(),
            level: "city"
        }
        .to_string(),
        only_error(&csv(&["150102-K-0001,a,150100,primary,1,8"])).message
    );
}

#[test]
fn malformed_region_code_is_reported() {
    for code in ["15010", "15010x", "000102", ""] {
        let row = format!("150102-K-0001,a,{code},primary,1,8");
        assert_eq!(
            only_error(&csv(&[&row])).column.as_deref(),
            Some("region"),
            "{code}"
        );
    }
}

#[test]
fn unknown_school_type_lists_the_accepted_ones() {
    let e = only_error(&csv(&["150102-K-0001,a,150102,university,1,8"]));
    assert_eq!(e.column.as_deref(), Some("school_type"));
    assert!(
        e.message
            .contains("kindergarten, primary, secondary or other"),
        "{}",
        e.message
    );
}

#[test]
fn counts_outside_0_to_1024_or_not_whole_numbers_are_refused() {
    for bad in ["1025", "-1", "1.5", "", "two", "4294967296"] {
        let row = format!("150102-K-0001,a,150102,primary,{bad},8");
        let e = only_error(&csv(&[&row]));
        assert_eq!(e.column.as_deref(), Some("expected_alarms"), "{bad}");
        assert!(e.message.contains("0 to 1024"), "{}", e.message);
        let row = format!("150102-K-0001,a,150102,primary,1,{bad}");
        assert_eq!(
            only_error(&csv(&[&row])).column.as_deref(),
            Some("expected_cameras")
        );
    }
}

#[test]
fn name_must_not_be_empty() {
    let e = only_error(&csv(&["150102-K-0001,  ,150102,primary,1,8"]));
    assert_eq!(e.column.as_deref(), Some("name"));
    assert!(e.message.contains("empty"), "{}", e.message);
}

#[test]
fn name_may_have_200_characters_but_not_201() {
    // Counted in characters, not bytes: 200 Chinese characters are 600 bytes.
    let ok = format!("150102-K-0001,{},150102,primary,1,8", "校".repeat(200));
    assert!(parse_csv(&csv(&[&ok])).is_ok());
    let long = format!("150102-K-0001,{},150102,primary,1,8", "校".repeat(201));
    let e = only_error(&csv(&[&long]));
    assert_eq!(e.column.as_deref(), Some("name"));
    assert!(e.message.contains("201"), "{}", e.message);
}

#[test]
fn name_with_a_line_break_is_refused() {
    let e = only_error(&csv(&["150102-K-0001,\"a\nb\",150102,primary,1,8"]));
    assert_eq!((e.line, e.column.as_deref()), (2, Some("name")));
}

#[test]
fn invalid_campus_id_is_reported() {
    for bad in ["", "a/b", "校园1", "150102 K 1"] {
        let row = format!("{bad},a,150102,primary,1,8");
        assert_eq!(
            only_error(&csv(&[&row])).column.as_deref(),
            Some("id"),
            "{bad}"
        );
    }
}

#[test]
fn duplicate_id_is_reported_on_the_later_line() {
    let e = only_error(&csv(&[
        "150102-K-0001,a,150102,primary,1,8",
        "150102-K-0002,b,150102,primary,1,8",
        "150102-K-0001,c,150102,primary,1,8",
    ]));
    assert_eq!((e.line, e.column.as_deref()), (4, Some("id")));
    assert!(e.message.contains("line 2"), "{}", e.message);
}

#[test]
fn non_utf8_bytes_are_reported_with_their_line_and_column() {
    // 新城区 in GBK, as Excel saves "CSV" on a Chinese Windows.
    let mut file = csv(&["150102-K-0001,a,150102,primary,1,8"]);
    file.extend(b"150102-K-0002,\xD0\xC2\xB3\xC7\xC7\xF8,150102,primary,1,8\n");
    let e = only_error(&file);
    assert_eq!((e.line, e.column.as_deref()), (3, Some("name")));
    assert!(e.message.contains("UTF-8"), "{}", e.message);
}

#[test]
fn non_utf8_header_is_reported() {
    let e = only_error(b"id,\xFFname,region,school_type,expected_alarms,expected_cameras\n");
    assert!(e.message.contains("UTF-8"), "{}", e.message);
}

#[test]
fn row_with_too_many_fields_is_reported_with_a_quoting_hint() {
    let e = only_error(&csv(&[
        "150102-K-0001,新城区,第一幼儿园,150102,primary,1,8",
    ]));
    assert_eq!((e.line, e.column), (2, None));
    assert!(
        e.message.contains("7 fields") && e.message.contains("double quotes"),
        "{}",
        e.message
    );
}

#[test]
fn row_with_too_few_fields_is_reported() {
    let e = only_error(&csv(&["150102-K-0001,a,150102,primary,1"]));
    assert_eq!(e.line, 2);
    assert!(e.message.contains("only 5 field(s)"), "{}", e.message);
}

#[test]
fn every_bad_row_and_field_is_reported_and_nothing_is_accepted() {
    let errs = errors(&csv(&[
        "150102-K-0001,a,150102,primary,1,8",
        "150102-K-0002,,150100,school,1,8",
        "150102-K-0003,c,150102,primary,1,8",
        "150102-K-0004,d,150102,primary,1",
    ]));
    let got: Vec<_> = errs.iter().map(|e| (e.line, e.column.as_deref())).collect();
    assert_eq!(
        got,
        [
            (3, Some("name")),
            (3, Some("region")),
            (3, Some("school_type")),
            (5, None)
        ]
    );
}

#[test]
fn errors_beyond_the_cap_are_summed_up_in_one_final_entry() {
    let rows: Vec<String> = (0..1500)
        .map(|i| format!("150102-K-{i:04},a,150102,primary,1,x"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let errs = errors(&csv(&rows));
    assert_eq!(errs.len(), MAX_REPORTED_ERRORS + 1);
    let last = errs.last().unwrap();
    assert!(last.message.contains("500 more"), "{}", last.message);
    // The first error not listed is on row 1001, line 1002.
    assert_eq!(last.line, 1002);
}

#[test]
fn rows_beyond_the_limit_are_refused() {
    let file = csv(&[
        "150102-K-0001,a,150102,primary,1,8",
        "150102-K-0002,a,150102,primary,1,8",
        "150102-K-0003,a,150102,primary,1,8",
    ]);
    assert!(parse_with_limit(&file, 3).is_ok());
    let errs = parse_with_limit(&file, 2).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, 4);
    assert!(
        errs[0].message.contains("more than 2 rows"),
        "{}",
        errs[0].message
    );
}

#[test]
fn line_error_displays_like_a_compiler_message() {
    let e = only_error(&csv(&["150102-K-0001,a,150102,primary,1,x"]));
    assert!(
        e.to_string()
            .starts_with("line 2: expected_cameras: must be"),
        "{e}"
    );
}

/// Random bytes, and valid files with random damage, never make the parser panic; a
/// file it accepts always survives a write and a read unchanged. Errors always point
/// at a line and stay within the cap.
#[test]
fn random_bytes_and_damaged_files_never_panic_and_accepted_files_round_trip() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    // Bytes that matter to a CSV parser or to UTF-8 decoding, plus plain text.
    let alphabet: Vec<u8> = b",\"\n\r \t0123456789abcK-P\xEF\xBB\xBF\xFF\xC0\xE4\xB8".to_vec();
    let base = to_csv(&demo_registry(12, 3)).into_bytes();
    let mut accepted = 0;
    for case in 0..3000 {
        let bytes: Vec<u8> = if case % 3 == 0 {
            let len = rng.random_range(0..300);
            (0..len)
                .map(|_| {
                    if rng.random_bool(0.5) {
                        alphabet[rng.random_range(0..alphabet.len())]
                    } else {
                        rng.random()
                    }
                })
                .collect()
        } else {
            let mut b = base.clone();
            for _ in 0..rng.random_range(1..4) {
                if b.is_empty() {
                    break;
                }
                let at = rng.random_range(0..b.len());
                match rng.random_range(0..5) {
                    0 => {
                        b.remove(at);
                    }
                    1 => b.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                    2 => b[at] = rng.random(),
                    3 => b.truncate(at),
                    _ => {
                        // Repeat a slice: duplicate ids, extra lines, doubled fields.
                        let end = (at + rng.random_range(1..80)).min(b.len());
                        let piece = b[at..end].to_vec();
                        b.splice(at..at, piece);
                    }
                }
            }
            b
        };
        match parse_csv(&bytes) {
            Ok(entries) => {
                accepted += 1;
                let again = parse_csv(to_csv(&entries).as_bytes());
                assert_eq!(
                    again.as_ref(),
                    Ok(&entries),
                    "input {:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
            Err(errs) => {
                assert!(!errs.is_empty() && errs.len() <= MAX_REPORTED_ERRORS + 1);
                assert!(
                    errs.iter().all(|e| e.line >= 1 && !e.message.is_empty()),
                    "{errs:?}"
                );
            }
        }
    }
    // Otherwise the round-trip check above would have checked nothing.
    assert!(
        accepted > 100,
        "only {accepted} damaged files were accepted"
    );
}

// ---- GB/T 28181 codes ---------------------------------------------------------------

fn gb_csv(rows: &[&str]) -> Vec<u8> {
    let mut s = format!("{},gb_device_ids\n", HEADER.trim_end());
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s.into_bytes()
}

#[test]
fn gb_device_ids_list_codes_of_the_campus_s_county_or_above() {
    let got = parse_csv(&gb_csv(&[
        "150102-P-0001,新城区第一小学,150102,primary,1,8,15010200001180000001; 15010000001320000007",
        "150102-P-0002,新城区第二小学,150102,primary,1,8,",
    ]))
    .unwrap();
    let codes: Vec<String> = got[0].gb_device_ids.iter().map(|c| c.to_string()).collect();
    assert_eq!(codes, ["15010200001180000001", "15010000001320000007"]);
    assert!(got[1].gb_device_ids.is_empty());
    // Written back and read again, the same.
    assert_eq!(parse_csv(to_csv(&got).as_bytes()).unwrap(), got);
    // A file without the column reads as before, and one without codes is written
    // without it.
    assert!(
        !to_csv(&[entry("150102-P-0003", "150102", SchoolType::Primary, 1, 1)])
            .contains("gb_device_ids")
    );
}

#[test]
fn a_gb_code_outside_the_campus_s_region_or_listed_twice_is_refused() {
    let e = only_error(&gb_csv(&[
        "150102-P-0001,a,150102,primary,1,8,15020300001180000001",
    ]));
    assert_eq!(
        (e.line, e.column.as_deref(), e.code),
        (2, Some("gb_device_ids"), "gb_code_outside_region")
    );
    assert!(e.message.contains("150203"), "{}", e.message);
    let e = only_error(&gb_csv(&[
        "150102-P-0001,a,150102,primary,1,8,15010200001180000001",
        "150102-P-0002,b,150102,primary,1,8,15010200001180000001",
    ]));
    assert_eq!((e.line, e.code), (3, "duplicate_gb_code"));
    assert_eq!(e.params["first_line"], "2");
    let e = only_error(&gb_csv(&[
        "150102-P-0001,a,150102,primary,1,8,1501020000118000000x",
    ]));
    assert_eq!(e.code, "bad_gb_code");
    let many: Vec<String> = (0..=MAX_GB_CODES)
        .map(|i| format!("1501020000132{i:07}"))
        .collect();
    let row = format!("150102-P-0001,a,150102,primary,1,8,{}", many.join(";"));
    let e = only_error(&gb_csv(&[&row]));
    assert_eq!(e.code, "too_many_gb_codes");
}
