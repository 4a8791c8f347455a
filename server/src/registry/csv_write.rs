//! Writing a registry CSV file, in the format the reader reads.

use super::{RegistryEntry, COLUMNS, OPTIONAL_COLUMNS};

/// Writes entries in the format [`parse_csv`](super::parse_csv) reads, header first, in the
/// given order. Fields are quoted (RFC 4180) only where needed, so the file stays
/// readable: only a name can need it. A name that begins like a spreadsheet formula is
/// written with a leading apostrophe ([`crate::csv_cell`]), which the reader removes.
pub fn to_csv(entries: &[RegistryEntry]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail, and every record has the header's fields. The
    // optional GB/T 28181 column is written only when a campus lists codes, so a registry
    // without them reads as before.
    let gb = entries.iter().any(|e| !e.gb_device_ids.is_empty());
    let header = COLUMNS.iter().chain(OPTIONAL_COLUMNS.iter().filter(|_| gb));
    let _ = w.write_record(header);
    for e in entries {
        let codes: Vec<&str> = e.gb_device_ids.iter().map(|c| c.as_str()).collect();
        let codes = codes.join(";");
        let optional = gb.then_some(codes.as_str());
        let (name, region) = (crate::csv_cell::text(&e.name), e.region.to_string());
        let (alarms, cameras) = (
            e.expected_alarms.to_string(),
            e.expected_cameras.to_string(),
        );
        let fields = [
            e.campus.as_str(),
            &name,
            &region,
            e.school_type.as_str(),
            &alarms,
            &cameras,
        ];
        let _ = w.write_record(fields.into_iter().chain(optional));
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use campuswatch_protocol::SchoolType;

    use super::*;
    use crate::registry::parse_csv;
    use crate::registry::test_util::HEADER;
    use crate::testing::entry;

    #[test]
    fn to_csv_writes_the_header_first_and_reads_back_the_same() {
        let entries = vec![
            entry("150102-K-0001", "150102", SchoolType::Kindergarten, 1, 8)
                .named("新城区第一幼儿园"),
            entry("150102-S-0001", "150102", SchoolType::Secondary, 2, 40).named("a, \"b\" c"),
            entry("150102-X-0001", "150102", SchoolType::Other, 0, 0).named("其他"),
        ];
        let text = to_csv(&entries);
        assert!(text.starts_with(HEADER), "{text}");
        assert!(text.contains("\"a, \"\"b\"\" c\""), "{text}");
        assert_eq!(parse_csv(text.as_bytes()).unwrap(), entries);
        assert_eq!(to_csv(&[]), HEADER);
    }
}
