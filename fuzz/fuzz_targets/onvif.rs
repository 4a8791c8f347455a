//! What cameras say in SOAP: the ONVIF probe's reading of GetSystemDateAndTime and
//! GetDeviceInformation answers and of faults, and WS-Discovery's ProbeMatches, on the
//! lenient XML reader of `wire/`.
//!
//! Properties: never a panic; the identity read from an answer is one a birth or an event
//! can carry (the server refuses the message otherwise); every text escaped for XML reads
//! back as it was.

#![no_main]

use std::net::{Ipv4Addr, SocketAddr};

use campuswatch_agent::discover::Collector;
use campuswatch_agent::fuzzing::onvif_fault;
use campuswatch_agent::probe::onvif::{device_information, utc_time};
use campuswatch_protocol::{
    CampusId, DeviceId, DeviceKind, DeviceState, Event, Message, RegionCode, SCHEMA_VERSION,
};
use campuswatch_wire::xml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = utc_time(&text);
    if let Ok(info) = device_information(&text) {
        let event = Message::Event(Event {
            v: SCHEMA_VERSION,
            campus: CampusId::parse("150102-K-0001").unwrap(),
            region: RegionCode::parse("150102").unwrap(),
            id: 1,
            epoch: 1,
            at: chrono::DateTime::UNIX_EPOCH,
            device: DeviceId::parse("cam-1").unwrap(),
            kind: DeviceKind::Camera,
            from: DeviceState::Unknown,
            to: DeviceState::Up,
            cause: None,
            cause_code: None,
            measurements: Default::default(),
            info: Some(info),
        });
        event
            .validate()
            .unwrap_or_else(|e| panic!("{event:?}: {e}"));
    }
    if let Some(fault) = onvif_fault(&text) {
        assert!(!fault.is_empty());
    }
    let mut collector = Collector::new("urn:uuid:0b1f0f4e-52d4-4f7e-9d55-1c2ad0c2a4b7");
    let from = SocketAddr::from((Ipv4Addr::LOCALHOST, 3702));
    let new = collector.receive(data, from);
    // The same answer again brings no camera it already brought.
    assert_eq!(collector.receive(data, from), 0);
    assert_eq!(collector.cameras().len(), new);
    assert_eq!(xml::unescape(&xml::escape(&text)), text);
});
