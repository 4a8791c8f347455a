//! The wire contract: a topic and the payload that arrived on it, as the server (campus
//! messages) and the agent (commands) read them off the broker.
//!
//! Input: the topic, a line break, the payload. Properties: a topic that parses prints
//! back as itself; a payload that decodes re-encodes to one that decodes to the same
//! message, on the topic the message names; a refusal has a metrics label.

#![no_main]

use std::fmt::{Debug, Display};

use campuswatch_protocol::{
    decode, decode_command, CampusTopic, CommandTopic, DecodeError, Message,
};
use libfuzzer_sys::fuzz_target;

/// One kind of topic and its payloads: how each is parsed, and how a message names and
/// writes them again.
struct Kind<T, M> {
    parse: fn(&str) -> Option<T>,
    decode: fn(&T, &[u8]) -> Result<M, DecodeError>,
    topic: fn(&M) -> T,
    encode: fn(&M) -> Vec<u8>,
}

fn check<T: PartialEq + Debug + Display, M: PartialEq + Debug>(
    kind: Kind<T, M>,
    topic: &str,
    payload: &[u8],
) {
    let Some(t) = (kind.parse)(topic) else {
        return;
    };
    assert_eq!(t.to_string(), topic);
    match (kind.decode)(&t, payload) {
        Ok(msg) => {
            assert_eq!((kind.topic)(&msg), t);
            let again = (kind.decode)(&t, &(kind.encode)(&msg))
                .unwrap_or_else(|e| panic!("{msg:?} re-encoded does not decode: {e}"));
            assert_eq!(again, msg);
        }
        Err(e) => assert!(!e.reason().is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    let (topic, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(topic) = std::str::from_utf8(topic) else {
        return;
    };
    let campus = Kind {
        parse: |t| CampusTopic::parse(t).ok(),
        decode,
        topic: Message::topic,
        encode: Message::encode,
    };
    check(campus, topic, payload);
    let command = Kind {
        parse: |t| CommandTopic::parse(t).ok(),
        decode: decode_command,
        topic: |c| c.topic(),
        encode: |c| c.encode(),
    };
    check(command, topic, payload);
});
