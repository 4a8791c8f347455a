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

/// Optional columns, after [`COLUMNS`]: a file without them is read as if they were
/// empty.
pub const OPTIONAL_COLUMNS: [&str; 1] = ["gb_device_ids"];

/// Most GB/T 28181 codes one campus lists.
pub const MAX_GB_CODES: usize = 1024;

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
    /// GB/T 28181 device and channel codes of the campus (the `gb_device_ids` column):
    /// a device's channels belong to the campus, a channel's code alone only that
    /// channel. Each code's division is the campus's county or above it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gb_device_ids: Vec<crate::gb28181::GbCode>,
}

/// What the tests of the reader and the writer share.
#[cfg(test)]
mod test_util {
    pub(super) const HEADER: &str = "id,name,region,school_type,expected_alarms,expected_cameras\n";
}
