//! Reading a registry CSV file: every row checked, all or nothing, with every bad row
//! reported by the line number an editor shows.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use campuswatch_protocol::{CampusId, RegionCode, RegionLevel, SchoolType};

use super::{RegistryEntry, COLUMNS, MAX_GB_CODES, OPTIONAL_COLUMNS};
use crate::gb28181::GbCode;

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
    /// The reason in English words, with how to fix it.
    pub message: String,
    /// The reason's stable code ([`Reason::code`]), which the console says in its own
    /// language with `params`.
    pub code: &'static str,
    /// The values the reason speaks of, by name (see docs/api.md).
    pub params: BTreeMap<&'static str, String>,
}

impl LineError {
    fn new(line: u64, column: Option<String>, reason: Reason) -> LineError {
        LineError {
            line,
            column,
            message: reason.to_string(),
            code: reason.code(),
            params: reason.params(),
        }
    }
}

/// Why a line of a registry file is refused. Each has a stable code and named parameters,
/// so that a console can say it in its own language; `Display` says it in English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The file has no row at all.
    EmptyFile,
    /// The first row names none of the columns: the header was left out.
    NoHeader,
    /// A header column (1-based `position`) is not UTF-8.
    HeaderNotUtf8 {
        position: usize,
    },
    /// A column appears twice in the header.
    DuplicateColumn {
        column: String,
    },
    /// A header column (1-based `position`) is empty.
    UnnamedColumn {
        position: usize,
    },
    /// A header column that is not one of [`COLUMNS`].
    UnknownColumn {
        name: String,
    },
    /// Columns missing from the header.
    MissingColumns {
        columns: Vec<&'static str>,
    },
    /// The CSV reader could not read on (`detail` in its words).
    Unreadable {
        detail: String,
    },
    /// More data rows than [`MAX_ROWS`].
    TooManyRows {
        max: usize,
    },
    /// More fields than the header has columns.
    TooManyFields {
        fields: usize,
        columns: usize,
    },
    /// Fewer fields than the header has columns.
    TooFewFields {
        fields: usize,
        columns: usize,
    },
    /// A campus id used on an earlier line.
    DuplicateId {
        id: String,
        first_line: u64,
    },
    /// A field that is not UTF-8.
    NotUtf8,
    /// A campus id with characters or a length that are not allowed.
    BadId {
        value: String,
    },
    EmptyName,
    NameTooLong {
        chars: usize,
        max: usize,
    },
    NameControlCharacter,
    /// Not a six-digit division code.
    BadRegion {
        value: String,
    },
    /// The code of a city or province, not of a county-level division.
    NotCounty {
        code: String,
        level: &'static str,
    },
    UnknownSchoolType {
        value: String,
    },
    /// A device count that is not a whole number from 0 to `max`.
    BadCount {
        value: String,
        max: u32,
    },
    /// A `gb_device_ids` value that is not a 20-digit GB/T 28181 code.
    BadGbCode {
        value: String,
    },
    /// A GB/T 28181 code whose division (its first six digits) is neither the campus's
    /// county nor a division above it.
    GbCodeOutsideRegion {
        code: String,
        region: String,
    },
    /// A GB/T 28181 code listed for another campus (or twice), on an earlier line.
    DuplicateGbCode {
        code: String,
        first_line: u64,
    },
    /// More codes than [`MAX_GB_CODES`] for one campus.
    TooManyGbCodes {
        count: usize,
        max: usize,
    },
    /// The errors beyond [`MAX_REPORTED_ERRORS`], summed up.
    MoreErrors {
        count: u64,
    },
}

impl Reason {
    /// The stable code (documented in docs/api.md).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::EmptyFile => "empty_file",
            Reason::NoHeader => "no_header",
            Reason::HeaderNotUtf8 { .. } => "header_not_utf8",
            Reason::DuplicateColumn { .. } => "duplicate_column",
            Reason::UnnamedColumn { .. } => "unnamed_column",
            Reason::UnknownColumn { .. } => "unknown_column",
            Reason::MissingColumns { .. } => "missing_columns",
            Reason::Unreadable { .. } => "unreadable",
            Reason::TooManyRows { .. } => "too_many_rows",
            Reason::TooManyFields { .. } => "too_many_fields",
            Reason::TooFewFields { .. } => "too_few_fields",
            Reason::DuplicateId { .. } => "duplicate_id",
            Reason::NotUtf8 => "not_utf8",
            Reason::BadId { .. } => "bad_id",
            Reason::EmptyName => "empty_name",
            Reason::NameTooLong { .. } => "name_too_long",
            Reason::NameControlCharacter => "name_control_character",
            Reason::BadRegion { .. } => "bad_region",
            Reason::NotCounty { .. } => "not_county",
            Reason::UnknownSchoolType { .. } => "unknown_school_type",
            Reason::BadCount { .. } => "bad_count",
            Reason::BadGbCode { .. } => "bad_gb_code",
            Reason::GbCodeOutsideRegion { .. } => "gb_code_outside_region",
            Reason::DuplicateGbCode { .. } => "duplicate_gb_code",
            Reason::TooManyGbCodes { .. } => "too_many_gb_codes",
            Reason::MoreErrors { .. } => "more_errors",
        }
    }

    /// The values the reason speaks of, by name. Every reason of a header row also has
    /// `expected`: the column names, comma-separated.
    pub fn params(&self) -> BTreeMap<&'static str, String> {
        let expected = || ("expected", COLUMNS.join(","));
        let p: Vec<(&'static str, String)> = match self {
            Reason::EmptyFile | Reason::NoHeader => vec![expected()],
            Reason::HeaderNotUtf8 { position } | Reason::UnnamedColumn { position } => {
                vec![("position", position.to_string()), expected()]
            }
            Reason::DuplicateColumn { column } => vec![("column", column.clone())],
            Reason::UnknownColumn { name } => vec![("name", name.clone()), expected()],
            Reason::MissingColumns { columns } => {
                vec![("columns", columns.join(",")), expected()]
            }
            Reason::Unreadable { detail } => vec![("detail", detail.clone())],
            Reason::TooManyRows { max } => vec![("max", max.to_string())],
            Reason::TooManyFields { fields, columns }
            | Reason::TooFewFields { fields, columns } => {
                vec![
                    ("fields", fields.to_string()),
                    ("columns", columns.to_string()),
                ]
            }
            Reason::DuplicateId { id, first_line } => {
                vec![("id", id.clone()), ("first_line", first_line.to_string())]
            }
            Reason::NotUtf8 | Reason::EmptyName | Reason::NameControlCharacter => vec![],
            Reason::BadId { value }
            | Reason::BadRegion { value }
            | Reason::UnknownSchoolType { value } => vec![("value", value.clone())],
            Reason::NameTooLong { chars, max } => {
                vec![("chars", chars.to_string()), ("max", max.to_string())]
            }
            Reason::NotCounty { code, level } => {
                vec![("value", code.clone()), ("level", level.to_string())]
            }
            Reason::BadCount { value, max } => {
                vec![("value", value.clone()), ("max", max.to_string())]
            }
            Reason::BadGbCode { value } => vec![("value", value.clone())],
            Reason::GbCodeOutsideRegion { code, region } => {
                vec![("value", code.clone()), ("region", region.clone())]
            }
            Reason::DuplicateGbCode { code, first_line } => {
                vec![
                    ("value", code.clone()),
                    ("first_line", first_line.to_string()),
                ]
            }
            Reason::TooManyGbCodes { count, max } => {
                vec![("count", count.to_string()), ("max", max.to_string())]
            }
            Reason::MoreErrors { count } => vec![("count", count.to_string())],
        };
        p.into_iter().collect()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expected = format!("expected columns are {} (in any order)", COLUMNS.join(", "));
        match self {
            Reason::EmptyFile => write!(
                f,
                "the file is empty; the first row must be the header {}",
                COLUMNS.join(",")
            ),
            Reason::NoHeader => write!(f, "the first row must be the header; {expected}"),
            Reason::HeaderNotUtf8 { position } => {
                write!(f, "header column {position} is not valid UTF-8; {expected}")
            }
            Reason::DuplicateColumn { column } => {
                write!(f, "column {column:?} appears twice in the header")
            }
            Reason::UnnamedColumn { position } => {
                write!(f, "header column {position} has no name; {expected}")
            }
            Reason::UnknownColumn { name } => write!(f, "unknown column {name:?}; {expected}"),
            Reason::MissingColumns { columns } => {
                write!(f, "missing column(s) {}; {expected}", columns.join(", "))
            }
            Reason::Unreadable { detail } => f.write_str(detail),
            Reason::TooManyRows { max } => {
                write!(f, "more than {max} rows; split the registry into several files")
            }
            Reason::TooManyFields { fields, columns } => write!(
                f,
                "{fields} fields but the header has {columns} columns (a name containing a comma must be in double quotes)"
            ),
            Reason::TooFewFields { fields, columns } => write!(
                f,
                "only {fields} field(s) but the header has {columns} columns"
            ),
            Reason::DuplicateId { id, first_line } => {
                write!(f, "duplicate id {id}: already used on line {first_line}")
            }
            Reason::NotUtf8 => f.write_str(
                "not valid UTF-8; save the file as UTF-8 (in Excel: \"CSV UTF-8\")",
            ),
            Reason::BadId { value } => write!(
                f,
                "campus id {value:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' or '.', not starting with '.'"
            ),
            Reason::EmptyName => f.write_str("the name is empty"),
            Reason::NameTooLong { chars, max } => write!(
                f,
                "the name is {chars} characters long; at most {max} are allowed"
            ),
            Reason::NameControlCharacter => {
                f.write_str("the name contains a control character such as a line break")
            }
            Reason::BadRegion { value } => write!(
                f,
                "region code {value:?} is not six digits (an administrative division code such as 150102)"
            ),
            Reason::NotCounty { code, level } => write!(
                f,
                "{code} is the code of {}; a campus is registered in its county-level division (district, county, banner or county-level city), such as 150102",
                if *level == "city" { "a city (prefecture or league)" } else { "a province" }
            ),
            Reason::UnknownSchoolType { value } => write!(
                f,
                "unknown school type {value:?}; use kindergarten, primary, secondary or other (or 幼儿园, 小学, 中学, 其他)"
            ),
            Reason::BadCount { value, max } => {
                write!(f, "must be a whole number from 0 to {max}, not {value:?}")
            }
            Reason::BadGbCode { value } => write!(
                f,
                "{value:?} is not a GB/T 28181 code (20 digits, such as 15010200001180000001); separate several with ';'"
            ),
            Reason::GbCodeOutsideRegion { code, region } => write!(
                f,
                "GB/T 28181 code {code} is of division {}, not of the campus's county {region} or a division above it",
                &code[..6.min(code.len())]
            ),
            Reason::DuplicateGbCode { code, first_line } => {
                write!(f, "GB/T 28181 code {code} is already listed on line {first_line}")
            }
            Reason::TooManyGbCodes { count, max } => write!(
                f,
                "{count} GB/T 28181 codes; at most {max} per campus (list the NVR's code, not each channel's)"
            ),
            Reason::MoreErrors { count } => {
                write!(f, "and {count} more error(s) from this line on, not listed")
            }
        }
    }
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
            Ok(false) => return Err(vec![LineError::new(1, None, Reason::EmptyFile)]),
            Ok(true) if is_blank(&record) => continue,
            Ok(true) => break Header::parse(&record, lines.line_of(&record))?,
            Err(e) => return Err(vec![lines.reader_error(&e)]),
        }
    };

    let mut errors = Errors::default();
    let mut entries = Vec::new();
    let mut first_line_of: HashMap<CampusId, u64> = HashMap::new();
    let mut gb_line_of: HashMap<GbCode, u64> = HashMap::new();
    let mut rows = 0usize;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Reading a byte slice with flexible rows cannot fail today; if a future
                // csv version does, the rest of the file cannot be trusted either.
                let e = lines.reader_error(&e);
                errors.push(e.line, None, Reason::Unreadable { detail: e.message });
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
            errors.push(line, None, Reason::TooManyRows { max: max_rows });
            break;
        }
        if record.len() != header.width {
            let (fields, columns) = (record.len(), header.width);
            let reason = if fields > columns {
                Reason::TooManyFields { fields, columns }
            } else {
                Reason::TooFewFields { fields, columns }
            };
            errors.push(line, None, reason);
            continue;
        }
        let row = parse_row(&record, &header, line, &mut errors);
        if let Some(id) = &row.campus {
            if let Some(first) = first_line_of.get(id) {
                errors.push(
                    line,
                    Some("id"),
                    Reason::DuplicateId {
                        id: id.to_string(),
                        first_line: *first,
                    },
                );
                continue;
            }
            first_line_of.insert(id.clone(), line);
        }
        for code in &row.gb_device_ids {
            match gb_line_of.get(code) {
                Some(first) => errors.push(
                    line,
                    Some("gb_device_ids"),
                    Reason::DuplicateGbCode {
                        code: code.to_string(),
                        first_line: *first,
                    },
                ),
                None => {
                    gb_line_of.insert(*code, line);
                }
            }
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
    /// Index of each of [`OPTIONAL_COLUMNS`] present.
    optional: [Option<usize>; 1],
    width: usize,
}

impl Header {
    fn parse(record: &csv::ByteRecord, line: u64) -> Result<Header, Vec<LineError>> {
        let mut at: [Option<usize>; 6] = [None; 6];
        let mut optional: [Option<usize>; 1] = [None; 1];
        let mut errors = Vec::new();
        let mut unknown = Vec::new();
        let mut undecodable = false;
        for (i, raw) in record.iter().enumerate() {
            let Ok(text) = std::str::from_utf8(raw) else {
                undecodable = true;
                errors.push(LineError::new(
                    line,
                    None,
                    Reason::HeaderNotUtf8 { position: i + 1 },
                ));
                continue;
            };
            let name = text.trim().to_lowercase();
            match COLUMNS.iter().position(|c| *c == name) {
                Some(k) if at[k].is_some() => errors.push(LineError::new(
                    line,
                    Some(name.clone()),
                    Reason::DuplicateColumn { column: name },
                )),
                Some(k) => at[k] = Some(i),
                None => match OPTIONAL_COLUMNS.iter().position(|c| *c == name) {
                    Some(k) if optional[k].is_some() => errors.push(LineError::new(
                        line,
                        Some(name.clone()),
                        Reason::DuplicateColumn { column: name },
                    )),
                    Some(k) => optional[k] = Some(i),
                    None => unknown.push((i, text.trim().to_string())),
                },
            }
        }
        if at.iter().all(Option::is_none) {
            // Nothing recognised: most likely the header row was left out and this is data.
            return Err(vec![LineError::new(line, None, Reason::NoHeader)]);
        }
        for (i, name) in unknown {
            let reason = if name.is_empty() {
                Reason::UnnamedColumn { position: i + 1 }
            } else {
                Reason::UnknownColumn { name: name.clone() }
            };
            errors.push(LineError::new(line, Some(name), reason));
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
            errors.push(LineError::new(
                line,
                None,
                Reason::MissingColumns { columns: missing },
            ));
        }
        match at {
            [Some(a), Some(b), Some(c), Some(d), Some(e), Some(f)] if errors.is_empty() => {
                Ok(Header {
                    at: [a, b, c, d, e, f],
                    optional,
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
    gb_device_ids: Vec<GbCode>,
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
            gb_device_ids: self.gb_device_ids,
        })
    }
}

/// Checks every field of a row of the right width, reporting each bad one.
fn parse_row(record: &csv::ByteRecord, header: &Header, line: u64, errors: &mut Errors) -> Row {
    let mut row = Row::default();
    for (k, column) in COLUMNS.iter().enumerate() {
        let raw = record.get(header.at[k]).unwrap_or_default();
        let Ok(text) = std::str::from_utf8(raw) else {
            errors.push(line, Some(column), Reason::NotUtf8);
            continue;
        };
        let value = text.trim();
        let result = match k {
            0 => CampusId::parse(value)
                .map(|v| row.campus = Some(v))
                .map_err(|_| Reason::BadId {
                    value: value.to_string(),
                }),
            1 => {
                // A name written protected from spreadsheets comes back as it was.
                let value = crate::csv_cell::read_text(value);
                check_name(value).map(|()| row.name = Some(value.to_string()))
            }
            2 => parse_county(value).map(|v| row.region = Some(v)),
            3 => parse_school_type(value)
                .map(|v| row.school_type = Some(v))
                .ok_or_else(|| Reason::UnknownSchoolType {
                    value: value.to_string(),
                }),
            _ => parse_count(value).map(|v| {
                if k == 4 {
                    row.expected_alarms = Some(v)
                } else {
                    row.expected_cameras = Some(v)
                }
            }),
        };
        if let Err(reason) = result {
            errors.push(line, Some(column), reason);
        }
    }
    if let Some(at) = header.optional[0] {
        let raw = record.get(at).unwrap_or_default();
        match std::str::from_utf8(raw) {
            Err(_) => errors.push(line, Some("gb_device_ids"), Reason::NotUtf8),
            Ok(text) => match parse_gb_codes(text, row.region) {
                Ok(codes) => row.gb_device_ids = codes,
                Err(reasons) => {
                    for reason in reasons {
                        errors.push(line, Some("gb_device_ids"), reason);
                    }
                }
            },
        }
    }
    row
}

/// The codes of a `gb_device_ids` cell: separated by `;`, `,`, `|` or spaces, each of
/// the campus's county or a division above it (when the county is known).
fn parse_gb_codes(text: &str, county: Option<RegionCode>) -> Result<Vec<GbCode>, Vec<Reason>> {
    let mut codes: Vec<GbCode> = Vec::new();
    let mut reasons = Vec::new();
    let parts = text
        .split(|c: char| matches!(c, ';' | ',' | '|') || c.is_whitespace())
        .filter(|p| !p.is_empty());
    for part in parts {
        if codes.len() + reasons.len() >= MAX_GB_CODES {
            let count = text
                .split(|c: char| matches!(c, ';' | ',' | '|') || c.is_whitespace())
                .filter(|p| !p.is_empty())
                .count();
            return Err(vec![Reason::TooManyGbCodes {
                count,
                max: MAX_GB_CODES,
            }]);
        }
        let Ok(code) = GbCode::parse(part) else {
            reasons.push(Reason::BadGbCode {
                value: part.chars().take(40).collect(),
            });
            continue;
        };
        if let Some(county) = county {
            let within = code.division().is_some_and(|d| county.is_within(&d));
            if !within {
                reasons.push(Reason::GbCodeOutsideRegion {
                    code: code.to_string(),
                    region: county.to_string(),
                });
                continue;
            }
        }
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    if reasons.is_empty() {
        Ok(codes)
    } else {
        Err(reasons)
    }
}

fn check_name(name: &str) -> Result<(), Reason> {
    let chars = name.chars().count();
    if chars == 0 {
        Err(Reason::EmptyName)
    } else if chars > MAX_NAME_CHARS {
        Err(Reason::NameTooLong {
            chars,
            max: MAX_NAME_CHARS,
        })
    } else if name.chars().any(char::is_control) {
        // A line break or tab inside a quoted name would break every list it is shown in.
        Err(Reason::NameControlCharacter)
    } else {
        Ok(())
    }
}

fn parse_county(value: &str) -> Result<RegionCode, Reason> {
    let code = RegionCode::parse(value).map_err(|_| Reason::BadRegion {
        value: value.to_string(),
    })?;
    let level = match code.level() {
        RegionLevel::County => return Ok(code),
        RegionLevel::City => "city",
        RegionLevel::Province => "province",
    };
    Err(Reason::NotCounty {
        code: code.to_string(),
        level,
    })
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

fn parse_count(value: &str) -> Result<u32, Reason> {
    match value.parse::<u32>() {
        Ok(n) if n <= MAX_DEVICE_COUNT => Ok(n),
        _ => Err(Reason::BadCount {
            value: value.to_string(),
            max: MAX_DEVICE_COUNT,
        }),
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
        LineError::new(
            line,
            None,
            Reason::Unreadable {
                detail: e.to_string(),
            },
        )
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
    fn push(&mut self, line: u64, column: Option<&str>, reason: Reason) {
        if self.list.len() < MAX_REPORTED_ERRORS {
            self.list
                .push(LineError::new(line, column.map(str::to_string), reason));
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
            self.list.push(LineError::new(
                self.first_more_line,
                None,
                Reason::MoreErrors { count: self.more },
            ));
        }
        self.list
    }
}

#[cfg(test)]
mod tests;
