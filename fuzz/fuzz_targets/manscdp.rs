//! GB/T 28181 MANSCDP bodies as the server reads them from devices' `MESSAGE`s
//! (keepalives, catalog answers, alarms, any other command), in any charset, and the
//! catalog query it writes.
//!
//! Properties: never a panic; every code read is 20 digits; a catalog body holds no more
//! channels (read and left out) than `Item` tags, nor more than the bound; texts are
//! within their bound, not empty, without control characters; another command is named
//! by one of MANSCDP's roots; an error is a short line; the catalog query for a number
//! and a device taken from the input reads back as that device's query with that number.

#![no_main]

use campuswatch_server::gb28181::manscdp::{self, Body, MAX_ITEMS, MAX_TEXT_CHARS};
use campuswatch_server::gb28181::GbCode;
use campuswatch_wire::xml;
use chrono_tz::Asia::Shanghai;
use libfuzzer_sys::fuzz_target;

fn check_code(code: &GbCode) {
    let s = code.as_str();
    assert!(
        s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()),
        "{s}"
    );
}

fn check_text(text: &Option<String>) {
    if let Some(text) = text {
        let chars = text.chars().count();
        assert!((1..=MAX_TEXT_CHARS).contains(&chars), "{text:?}");
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert_eq!(text.trim(), text);
    }
}

fuzz_target!(|data: &[u8]| {
    let read = manscdp::parse(data, Shanghai);
    match &read {
        Ok(Body::Keepalive { device, .. }) => check_code(device),
        Ok(Body::Catalog(part)) => {
            check_code(&part.device);
            // Every item read or left out has a start tag of its own: its name is ASCII,
            // which each charset read here writes as it is.
            let tags = data.windows(4).filter(|w| w == b"Item").count();
            let listed = part.items.len() + part.skipped as usize;
            assert!(listed <= tags.min(MAX_ITEMS), "{listed} items, {tags} tags");
            for channel in &part.items {
                check_code(&channel.id);
                if let Some(parent) = &channel.parent {
                    check_code(parent);
                }
                check_text(&channel.name);
                check_text(&channel.manufacturer);
                check_text(&channel.model);
            }
        }
        Ok(Body::Alarm { alarm, .. }) => {
            check_code(&alarm.source);
            check_text(&alarm.description);
        }
        Ok(Body::Other {
            root,
            cmd_type,
            device,
        }) => {
            assert!(["Query", "Control", "Notify", "Response"].contains(&root.as_str()));
            assert!((1..=40).contains(&cmd_type.chars().count()), "{cmd_type:?}");
            if let Some(device) = device {
                check_code(device);
            }
        }
        // At most 40 characters of the device's value, each at most 10 bytes escaped.
        Err(e) => assert!((1..600).contains(&e.to_string().len()), "{e}"),
    }
    // The same bytes read the same.
    assert_eq!(manscdp::parse(data, Shanghai), read);

    let sn = u32::from_le_bytes(std::array::from_fn(|i| data.get(i).copied().unwrap_or(0)));
    let digits: String = (0..20)
        .map(|i| char::from(b'0' + data.get(4 + i).copied().unwrap_or(0) % 10))
        .collect();
    let device = GbCode::parse(&digits).unwrap();
    let query = manscdp::catalog_query(sn, &device);
    assert_eq!(
        manscdp::parse(query.as_bytes(), Shanghai),
        Ok(Body::Other {
            root: "Query".into(),
            cmd_type: "Catalog".into(),
            device: Some(device),
        })
    );
    assert_eq!(xml::element(&query, "SN"), Some(sn.to_string().as_str()));
});
