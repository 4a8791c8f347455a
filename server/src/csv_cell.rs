//! Text cells of the CSV files the server writes (registry, reports, alerts), safe to
//! open in a spreadsheet.

/// What makes a spreadsheet (Excel, WPS, LibreOffice) read a cell as a formula.
fn formula_start(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// A cell written with a leading apostrophe: a formula start after any apostrophes.
fn protected(s: &str) -> bool {
    formula_start(s) || s.strip_prefix('\'').is_some_and(protected)
}

/// `s` as a text cell: one beginning like a formula (`=HYPERLINK(…)`, `+`, `-`, `@`, a
/// tab or a carriage return) gets a leading apostrophe, so a spreadsheet shows it as text
/// instead of running it (CSV injection); so does one that begins with an apostrophe
/// and a formula, to come back whole. Anything else is written as it is.
pub fn text(s: &str) -> String {
    // A cell that already looks protected is protected once more, to read back whole.
    if protected(s) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// The reverse for a file read back (the registry): a cell [`text`] protected comes back
/// as it was.
pub fn read_text(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if protected(rest) => rest,
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_become_text_and_read_back_as_they_were() {
        for (cell, written) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("新城区第一幼儿园", "新城区第一幼儿园"),
            ("'quoted", "'quoted"),
            ("", ""),
        ] {
            assert_eq!(text(cell), written);
            assert_eq!(read_text(&text(cell)), cell);
        }
        // Generated: every text survives the round trip, and nothing written starts a
        // formula.
        let starts = ["", "=", "+", "-", "@", "\t", "\r", "'", "''=", "a", "中"];
        for a in starts {
            for b in starts {
                let cell = format!("{a}{b}x");
                let w = text(&cell);
                assert!(!formula_start(&w), "{w:?}");
                assert_eq!(read_text(&w), cell);
            }
        }
    }
}
