//! Reading a registry CSV file: every row checked, all or nothing, with every bad row
//! reported by the line number an editor shows.

use std::collections::HashMap;
use std::fmt;

use campuswatch_protocol::{CampusId, RegionCode, RegionLevel, SchoolType};

use super::{RegistryEntry, COLUMNS};

/// Most data rows accepted in one file. Far above any province's number of schools; it
/// bounds the memory a single import can take.
pub const MAX_ROWS: usize = 1_000_000;

/// Most errors listed for one file; the rest are summed up in a final entry. Nobody reads
/// more, and an HTTP error body must stay small.
pub const MAX_REPORTED_ERRORS: usize = 1_000;

/// Largest expected count of alarm devices or cameras on one campus. Generous (a big
/// secondary school has some hundred cameras); it catches a column mix-up such as a phone
/// number or a year pasted into a count.
pub const MAX_DEVICE_COUNT: u32 = 1024;

/// Longest campus name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// What is wrong with one line of a registry file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    /// 1-based, as an editor shows it; the header is line 1 unless blank lines precede it.
    /// For a field spanning lines (a quoted line break) it is the line the row starts on.
    pub line: u64,
    /// The column (as named in [`COLUMNS`], or as written for an unknown header column).
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        if let Some(c) = &self.column {
            write!(f, "{c}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Parses a registry CSV file: all or nothing.
///
/// Returns every entry when every row is valid, else the errors of every bad row (at most
/// [`MAX_REPORTED_ERRORS`], then one entry saying how many more there were). Never panics,
/// whatever the bytes.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<RegistryEntry>, Vec<LineError>> {
    parse_with_limit(bytes, MAX_ROWS)
}

fn parse_with_limit(bytes: &[u8], max_rows: usize) -> Result<Vec<RegistryEntry>, Vec<LineError>> {
    // Excel's "CSV UTF-8" puts a byte order mark first; it would otherwise glue itself to
    // the first column name.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Rows of the wrong width are counted and reported here with a better message than the
    // csv crate's, so it is told to accept them.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let mut lines = LineCounter::new(bytes);

    let header = loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => {
                return Err(vec![LineError {
                    line: 1,
                    column: None,
                    message: format!(
                        "the file is empty; the first row must be the header {}",
                        COLUMNS.join(",")
                    ),
                }])
            }
            Ok(true) if is_blank(&record) => continue,
            Ok(true) => break Header::parse(&record, lines.line_of(&record))?,
            Err(e) => return Err(vec![lines.reader_error(&e)]),
        }
    };

    let mut errors = Errors::default();
    let mut entries = Vec::new();
    let mut first_line_of: HashMap<CampusId, u64> = HashMap::new();
    let mut rows = 0usize;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Reading a byte slice with flexible rows cannot fail today; if a future
                // csv version does, the rest of the file cannot be trusted either.
                let e = lines.reader_error(&e);
                errors.push(e.line, None, e.message);
                break;
            }
        }
        // A spreadsheet saves emptied rows as ",,,,,"; they are as blank as an empty line.
        if is_blank(&record) {
            continue;
        }
        let line = lines.line_of(&record);
        rows += 1;
        if rows > max_rows {
            errors.push(
                line,
                None,
                format!("more than {max_rows} rows; split the registry into several files"),
            );
            break;
        }
        if record.len() != header.width {
            let message = if record.len() > header.width {
                format!(
                    "{} fields but the header has {} columns (a name containing a comma must be in double quotes)",
                    record.len(),
                    header.width
                )
            } else {
                format!(
                    "only {} field(s) but the header has {} columns",
                    record.len(),
                    header.width
                )
            };
            errors.push(line, None, message);
            continue;
        }
        let row = parse_row(&record, &header, line, &mut errors);
        if let Some(id) = &row.campus {
            if let Some(first) = first_line_of.get(id) {
                errors.push(
                    line,
                    Some("id"),
                    format!("duplicate id {id}: already used on line {first}"),
                );
                continue;
            }
            first_line_of.insert(id.clone(), line);
        }
        // Once the file is known to be refused the entries are not needed, only the errors.
        if errors.is_empty() {
            if let Some(entry) = row.into_entry() {
                entries.push(entry);
            }
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors.finish())
    }
}

/// Where each known column sits in the file.
struct Header {
    /// Index into the row of each of [`COLUMNS`].
    at: [usize; 6],
    width: usize,
}

impl Header {
    fn parse(record: &csv::ByteRecord, line: u64) -> Result<Header, Vec<LineError>> {
        let expected = format!("expected columns are {} (in any order)", COLUMNS.join(", "));
        let mut at: [Option<usize>; 6] = [None; 6];
        let mut errors = Vec::new();
        let mut unknown = Vec::new();
        let mut undecodable = false;
        for (i, raw) in record.iter().enumerate() {
            let Ok(text) = std::str::from_utf8(raw) else {
                undecodable = true;
                errors.push(LineError {
                    line,
                    column: None,
                    message: format!("header column {} is not valid UTF-8; {expected}", i + 1),
                });
                continue;
            };
            let name = text.trim().to_lowercase();
            match COLUMNS.iter().position(|c| *c == name) {
                Some(k) if at[k].is_some() => errors.push(LineError {
                    line,
                    column: Some(name.clone()),
                    message: format!("column {name:?} appears twice in the header"),
                }),
                Some(k) => at[k] = Some(i),
                None => unknown.push((i, text.trim().to_string())),
            }
        }
        if at.iter().all(Option::is_none) {
            // Nothing recognised: most likely the header row was left out and this is data.
            return Err(vec![LineError {
                line,
                column: None,
                message: format!("the first row must be the header; {expected}"),
            }]);
        }
        for (i, name) in unknown {
            let message = if name.is_empty() {
                format!("header column {} has no name; {expected}", i + 1)
            } else {
                format!("unknown column {name:?}; {expected}")
            };
            errors.push(LineError {
                line,
                column: Some(name),
                message,
            });
        }
        let missing: Vec<&str> = COLUMNS
            .iter()
            .zip(at)
            .filter(|(_, at)| at.is_none())
            .map(|(c, _)| *c)
            .collect();
        // A column that could not be decoded is likely one of the missing ones; saying it
        // is missing as well would only repeat the problem.
        if !missing.is_empty() && !undecodable {
            errors.push(LineError {
                line,
                column: None,
                message: format!("missing column(s) {}; {expected}", missing.join(", ")),
            });
        }
        match at {
            [Some(a), Some(b), Some(c), Some(d), Some(e), Some(f)] if errors.is_empty() => {
                Ok(Header {
                    at: [a, b, c, d, e, f],
                    width: record.len(),
                })
            }
            _ => Err(errors),
        }
    }
}

/// The fields of one row that parsed; a `None` field has had its error reported.
#[derive(Default)]
struct Row {
    campus: Option<CampusId>,
    name: Option<String>,
    region: Option<RegionCode>,
    school_type: Option<SchoolType>,
    expected_alarms: Option<u32>,
    expected_cameras: Option<u32>,
}

impl Row {
    fn into_entry(self) -> Option<RegistryEntry> {
        Some(RegistryEntry {
            campus: self.campus?,
            name: self.name?,
            region: self.region?,
            school_type: self.school_type?,
            expected_alarms: self.expected_alarms?,
            expected_cameras: self.expected_cameras?,
        })
    }
}

/// Checks every field of a row of the right width, reporting each bad one.
fn parse_row(record: &csv::ByteRecord, header: &Header, line: u64, errors: &mut Errors) -> Row {
    let mut row = Row::default();
    for (k, column) in COLUMNS.iter().enumerate() {
        let raw = record.get(header.at[k]).unwrap_or_default();
        let Ok(text) = std::str::from_utf8(raw) else {
            errors.push(
                line,
                Some(column),
                "not valid UTF-8; save the file as UTF-8 (in Excel: \"CSV UTF-8\")".to_string(),
            );
            continue;
        };
        let value = text.trim();
        let result = match k {
            0 => CampusId::parse(value)
                .map(|v| row.campus = Some(v))
                .map_err(|e| e.to_string()),
            1 => check_name(value).map(|()| row.name = Some(value.to_string())),
            2 => parse_county(value).map(|v| row.region = Some(v)),
            3 => parse_school_type(value)
                .map(|v| row.school_type = Some(v))
                .ok_or_else(|| {
                    format!(
                        "unknown school type {value:?}; use kindergarten, primary, secondary or other (or 幼儿园, 小学, 中学, 其他)"
                    )
                }),
            _ => parse_count(value).map(|v| {
                if k == 4 {
                    row.expected_alarms = Some(v)
                } else {
                    row.expected_cameras = Some(v)
                }
            }),
        };
        if let Err(message) = result {
            errors.push(line, Some(column), message);
        }
    }
    row
}

fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 {
        Err("the name is empty".to_string())
    } else if chars > MAX_NAME_CHARS {
        Err(format!(
            "the name is {chars} characters long; at most {MAX_NAME_CHARS} are allowed"
        ))
    } else if name.chars().any(char::is_control) {
        // A line break or tab inside a quoted name would break every list it is shown in.
        Err("the name contains a control character such as a line break".to_string())
    } else {
        Ok(())
    }
}

fn parse_county(value: &str) -> Result<RegionCode, String> {
    let code = RegionCode::parse(value).map_err(|e| e.to_string())?;
    let level = match code.level() {
        RegionLevel::County => return Ok(code),
        RegionLevel::City => "a city (prefecture or league)",
        RegionLevel::Province => "a province",
    };
    Err(format!(
        "{code} is the code of {level}; a campus is registered in its county-level division (district, county, banner or county-level city), such as 150102"
    ))
}

/// Accepts the English names and the Chinese ones a school office would type.
fn parse_school_type(value: &str) -> Option<SchoolType> {
    Some(match value.to_lowercase().as_str() {
        "kindergarten" | "幼儿园" => SchoolType::Kindergarten,
        "primary" | "小学" => SchoolType::Primary,
        "secondary" | "中学" | "初中" | "高中" | "完全中学" => SchoolType::Secondary,
        "other" | "其他" => SchoolType::Other,
        _ => return None,
    })
}

fn parse_count(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if n <= MAX_DEVICE_COUNT => Ok(n),
        _ => Err(format!(
            "must be a whole number from 0 to {MAX_DEVICE_COUNT}, not {value:?}"
        )),
    }
}

fn is_blank(record: &csv::ByteRecord) -> bool {
    record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

/// Turns a record's position into the line an editor shows.
///
/// The csv crate's own line numbers run from where the previous record ended, so they miss
/// skipped blank lines and miscount CRLF files; counting line breaks in the bytes is exact.
struct LineCounter<'a> {
    bytes: &'a [u8],
    /// Offset up to which line breaks have been counted.
    at: usize,
    /// The line `at` is on.
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            at: 0,
            line: 1,
        }
    }

    /// The line `record` starts on. Records must be asked about in file order.
    fn line_of(&mut self, record: &csv::ByteRecord) -> u64 {
        match record.position() {
            Some(p) => self.line_at(p.byte()),
            None => self.line,
        }
    }

    fn reader_error(&mut self, e: &csv::Error) -> LineError {
        let line = match e.position() {
            Some(p) => self.line_at(p.byte()),
            None => self.line,
        };
        LineError {
            line,
            column: None,
            message: e.to_string(),
        }
    }

    /// The line of the first byte at or after `from` that is not a line break: where the
    /// csv reader says a record starts, it has not yet skipped the blank lines before it.
    fn line_at(&mut self, from: u64) -> u64 {
        let len = self.bytes.len();
        let mut start = usize::try_from(from).unwrap_or(len).clamp(self.at, len);
        while start < len && matches!(self.bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        for i in self.at..start {
            // LF and CRLF end a line; so does a lone CR, as the csv reader also takes it.
            let ends_line = match self.bytes[i] {
                b'\n' => true,
                b'\r' => self.bytes.get(i + 1) != Some(&b'\n'),
                _ => false,
            };
            self.line += u64::from(ends_line);
        }
        self.at = start;
        self.line
    }
}

/// Collects errors up to [`MAX_REPORTED_ERRORS`] and counts the rest.
#[derive(Default)]
struct Errors {
    list: Vec<LineError>,
    more: u64,
    first_more_line: u64,
}

impl Errors {
    fn push(&mut self, line: u64, column: Option<&str>, message: String) {
        if self.list.len() < MAX_REPORTED_ERRORS {
            self.list.push(LineError {
                line,
                column: column.map(str::to_string),
                message,
            });
        } else {
            if self.more == 0 {
                self.first_more_line = line;
            }
            self.more += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn finish(mut self) -> Vec<LineError> {
        if self.more > 0 {
            self.list.push(LineError {
                line: self.first_more_line,
                column: None,
                message: format!(
                    "and {} more error(s) from this line on, not listed",
                    self.more
                ),
            });
        }
        self.list
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::registry::test_util::{entry, HEADER};
    use crate::registry::{demo_registry, to_csv};

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
                entry(
                    "150102-K-0001",
                    "新城区第一幼儿园",
                    "150102",
                    SchoolType::Kindergarten,
                    1,
                    8
                ),
                entry(
                    "150121-P-0002",
                    "土默特左旗第二小学",
                    "150121",
                    SchoolType::Primary,
                    1,
                    20
                ),
            ]
        );
    }

    #[test]
    fn header_columns_may_come_in_any_order_case_and_padding() {
        let file = " Expected_Cameras ,SCHOOL_TYPE,Region, name ,expected_alarms,ID\n\
                    8,kindergarten,150102,新城区第一幼儿园,1,150102-K-0001\n";
        assert_eq!(
            parse_csv(file.as_bytes()).unwrap(),
            [entry(
                "150102-K-0001",
                "新城区第一幼儿园",
                "150102",
                SchoolType::Kindergarten,
                1,
                8
            )]
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
            entry(
                "150102-K-0001",
                "新城区第一幼儿园",
                "150102",
                SchoolType::Primary,
                1,
                8
            )
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
}
