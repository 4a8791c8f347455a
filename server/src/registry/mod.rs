//! The registry of campuses: the denominator of coverage.
//!
//! Every campus that should be networked is listed here with its county, school type and
//! the alarm devices and cameras it is expected to have. Operators keep it as a CSV file
//! (usually exported from a spreadsheet) and import it; [`parse_csv`] checks the whole file
//! and either accepts every row or reports every bad row with the line number an editor
//! shows, so a file is never half-imported. [`to_csv`] writes the same format back.
//!
//! [`demo_registry`] builds a plausible registry over the counties of Inner Mongolia for the
//! demo and for tests; `config/demo-registry.csv` is its output for 300 campuses.

mod csv_read;
mod csv_write;
mod demo;

pub use csv_read::{
    parse_csv, LineError, Reason, MAX_DEVICE_COUNT, MAX_NAME_CHARS, MAX_REPORTED_ERRORS, MAX_ROWS,
};
pub use csv_write::to_csv;
pub use demo::demo_registry;

use campuswatch_protocol::{CampusId, RegionCode, SchoolType};

/// The columns, in the order [`to_csv`] writes them.
pub const COLUMNS: [&str; 6] = [
    "id",
    "name",
    "region",
    "school_type",
    "expected_alarms",
    "expected_cameras",
];

/// One campus that should be networked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistryEntry {
    pub campus: CampusId,
    pub name: String,
    /// The county-level division the campus is in.
    pub region: RegionCode,
    pub school_type: SchoolType,
    pub expected_alarms: u32,
    pub expected_cameras: u32,
}

/// What the tests of the reader and the writer share.
#[cfg(test)]
mod test_util {
    pub(super) const HEADER: &str = "id,name,region,school_type,expected_alarms,expected_cameras\n";
}
