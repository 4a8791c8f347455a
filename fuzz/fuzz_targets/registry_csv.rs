//! The registry CSV reader (an operator's file, imported over the API), and the text
//! cells of the CSV files the server writes.
//!
//! Properties: errors are values, never a panic; an accepted file has no more campuses
//! than lines, each fit for the registry, and writing them back reads back the same; a
//! refused file has 1 to `MAX_REPORTED_ERRORS` + 1 errors, each on a line of the file,
//! in file order. Any text survives a cell's spreadsheet protection and no protected
//! cell starts a formula.

#![no_main]

use campuswatch_server::csv_cell;
use campuswatch_server::registry::{parse_csv, to_csv, MAX_NAME_CHARS, MAX_REPORTED_ERRORS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A lone CR ends a line for the reader, as LF and CRLF do.
    let lines = 1 + data
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n')))
        .count();
    match parse_csv(data) {
        Ok(entries) => {
            assert!(
                entries.len() < lines,
                "{} campuses in {lines} lines",
                entries.len()
            );
            for e in &entries {
                let chars = e.name.chars().count();
                assert!((1..=MAX_NAME_CHARS).contains(&chars), "{e:?}");
                assert!(!e.name.chars().any(char::is_control), "{e:?}");
            }
            let written = to_csv(&entries);
            assert_eq!(parse_csv(written.as_bytes()), Ok(entries), "{written}");
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            assert!(
                errors.len() <= MAX_REPORTED_ERRORS + 1,
                "{} errors",
                errors.len()
            );
            for e in &errors {
                assert!(
                    (1..=lines as u64).contains(&e.line),
                    "{e:?} in {lines} lines"
                );
                assert!(!e.message.is_empty() && !e.code.is_empty(), "{e:?}");
            }
            assert!(
                errors.windows(2).all(|w| w[0].line <= w[1].line),
                "{errors:?}"
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let cell = csv_cell::text(text);
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "{cell:?}"
        );
        assert_eq!(csv_cell::read_text(&cell), text);
    }
});
