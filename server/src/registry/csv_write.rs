//! Writing a registry CSV file, in the format the reader reads.

use super::{RegistryEntry, COLUMNS};

/// Writes entries in the format [`parse_csv`](super::parse_csv) reads, header first, in the
/// given order.
pub fn to_csv(entries: &[RegistryEntry]) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for e in entries {
        let fields = [
            e.campus.as_str().to_string(),
            quote(&e.name),
            e.region.to_string(),
            e.school_type.as_str().to_string(),
            e.expected_alarms.to_string(),
            e.expected_cameras.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// RFC 4180 quoting, only where needed so that the file stays readable. Only the name can
/// need it: every other field is an id, a code, a keyword or a number.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use campuswatch_protocol::SchoolType;

    use super::*;
    use crate::registry::parse_csv;
    use crate::registry::test_util::{entry, HEADER};

    #[test]
    fn to_csv_writes_the_header_first_and_reads_back_the_same() {
        let entries = vec![
            entry(
                "150102-K-0001",
                "新城区第一幼儿园",
                "150102",
                SchoolType::Kindergarten,
                1,
                8,
            ),
            entry(
                "150102-S-0001",
                "a, \"b\" c",
                "150102",
                SchoolType::Secondary,
                2,
                40,
            ),
            entry("150102-X-0001", "其他", "150102", SchoolType::Other, 0, 0),
        ];
        let text = to_csv(&entries);
        assert!(text.starts_with(HEADER), "{text}");
        assert!(text.contains("\"a, \"\"b\"\" c\""), "{text}");
        assert_eq!(parse_csv(text.as_bytes()).unwrap(), entries);
        assert_eq!(to_csv(&[]), HEADER);
    }
}
