//! The embedded broker's topic ACL: the rules of the Mosquitto recipe
//! (docs/broker-security.md, `tests/src/mosquitto.rs`), with the user name standing for
//! `%u`.
//!
//! ```text
//! campus user U   write cw/v1/+/U/birth, …/death, …/heartbeat, …/event
//!                 read  cw/v1/+/U/cmd/rebirth
//! server user     read  cw/v1/#
//!                 write cw/v1/server/+/state, cw/v1/+/+/cmd/rebirth
//! ```
//!
//! A Last Will is a write. A subscription is allowed only if every topic its filter can
//! match is readable: `cw/v1/+/U/cmd/rebirth` is, `cw/v1/#` or `cw/v1/+/+/cmd/rebirth` is
//! not for a campus. Nothing else is allowed.

use campuswatch_protocol::MessageKind;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A campus gateway: the user name is the campus id.
    Campus,
    /// A server (a standby, a reader): reads every campus.
    Server,
}

const SERVER_READS: [&str; 1] = ["cw/v1/#"];
const SERVER_WRITES: [&str; 2] = ["cw/v1/server/+/state", "cw/v1/+/+/cmd/rebirth"];

/// Whether `user` may publish to `topic` (or name it as its Will).
pub fn may_publish(role: Role, user: &str, topic: &str) -> bool {
    if topic.contains(['+', '#']) || topic.is_empty() {
        return false;
    }
    match role {
        Role::Campus => MessageKind::ALL
            .iter()
            .any(|kind| matches(&campus_pattern(user, kind.as_str()), topic)),
        Role::Server => SERVER_WRITES.iter().any(|p| matches(&levels(p), topic)),
    }
}

/// Whether `user` may subscribe to `filter`.
pub fn may_subscribe(role: Role, user: &str, filter: &str) -> bool {
    if !valid_filter(filter) {
        return false;
    }
    match role {
        Role::Campus => covers(&campus_pattern(user, "cmd/rebirth"), filter),
        Role::Server => SERVER_READS.iter().any(|p| covers(&levels(p), filter)),
    }
}

/// `cw/v1/+/{user}/{tail}` as levels; the user name is one literal level.
fn campus_pattern<'a>(user: &'a str, tail: &'a str) -> Vec<&'a str> {
    let mut p = vec!["cw", "v1", "+", user];
    p.extend(tail.split('/'));
    p
}

fn levels(s: &str) -> Vec<&str> {
    s.split('/').collect()
}

/// Whether the topic name `topic` matches the ACL pattern `pattern` (`+` one level, `#`
/// the rest).
fn matches(pattern: &[&str], topic: &str) -> bool {
    let topic: Vec<&str> = topic.split('/').collect();
    let mut i = 0;
    for p in pattern {
        match *p {
            "#" => return true,
            "+" if i < topic.len() => {}
            lit if i < topic.len() && topic[i] == lit => {}
            _ => return false,
        }
        i += 1;
    }
    i == topic.len()
}

/// Whether every topic the filter `filter` can match also matches `pattern`: a pattern
/// `+` covers a filter level that is anything but `#`, a pattern `#` covers the rest, a
/// literal covers only itself.
fn covers(pattern: &[&str], filter: &str) -> bool {
    let filter: Vec<&str> = filter.split('/').collect();
    let mut i = 0;
    for p in pattern {
        let Some(f) = filter.get(i) else {
            return false;
        };
        match (*p, *f) {
            ("#", _) => return true,
            (_, "#") => return false,
            ("+", _) => {}
            (lit, f) if lit == f => {}
            _ => return false,
        }
        i += 1;
    }
    i == filter.len()
}

/// MQTT 3.1.1 §4.7: `#` only as the last level, `+` and `#` only as whole levels.
fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, l)| match *l {
        "#" => i == levels.len() - 1,
        "+" => true,
        l => !l.contains(['+', '#']),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_campus_writes_its_four_kinds_in_any_region_and_nothing_else() {
        let a = "150102-K-0001";
        for kind in MessageKind::ALL.map(MessageKind::as_str) {
            assert!(may_publish(
                Role::Campus,
                a,
                &format!("cw/v1/150102/{a}/{kind}")
            ));
            assert!(may_publish(
                Role::Campus,
                a,
                &format!("cw/v1/159999/{a}/{kind}")
            ));
            assert!(!may_publish(
                Role::Campus,
                a,
                &format!("cw/v1/150102/150102-K-0002/{kind}")
            ));
        }
        for topic in [
            format!("cw/v1/150102/{a}/status"),
            format!("cw/v1/150102/{a}/birth/x"),
            format!("cw/v1/150102/{a}/cmd/rebirth"),
            format!("cw/v1/150102/{a}"),
            format!("cw/v2/150102/{a}/birth"),
            format!("cw/v1/+/{a}/birth"),
            "cw/v1/#".to_string(),
            "cw/v1/server/main/state".to_string(),
            String::new(),
        ] {
            assert!(!may_publish(Role::Campus, a, &topic), "{topic}");
        }
        // A campus named like a server cannot write its state.
        assert!(!may_publish(
            Role::Campus,
            "main",
            "cw/v1/server/main/state"
        ));
    }

    #[test]
    fn a_campus_reads_only_its_rebirth_requests() {
        let a = "150102-K-0001";
        assert!(may_subscribe(
            Role::Campus,
            a,
            &format!("cw/v1/150102/{a}/cmd/rebirth")
        ));
        assert!(may_subscribe(
            Role::Campus,
            a,
            &format!("cw/v1/+/{a}/cmd/rebirth")
        ));
        for filter in [
            "cw/v1/#".to_string(),
            "#".to_string(),
            "cw/v1/+/+/cmd/rebirth".to_string(),
            format!("cw/v1/150102/{a}/#"),
            format!("cw/v1/150102/{a}/+/rebirth"),
            format!("cw/v1/150102/{a}/birth"),
            format!("$share/g/cw/v1/+/{a}/cmd/rebirth"),
            format!("cw/v1/150102/{a}/cmd/rebirth/#"),
            "cw/v1/#/x".to_string(),
            "cw/v1/a+/x".to_string(),
        ] {
            assert!(!may_subscribe(Role::Campus, a, &filter), "{filter}");
        }
    }

    #[test]
    fn a_server_reads_everything_and_writes_its_state_and_rebirths() {
        for filter in [
            "cw/v1/#",
            "cw/v1/+/+/birth",
            "cw/v1/150102/#",
            "cw/v1/server/+/state",
        ] {
            assert!(may_subscribe(Role::Server, "server", filter), "{filter}");
        }
        for filter in ["#", "cw/#", "$SYS/#", "cw/+/x"] {
            assert!(!may_subscribe(Role::Server, "server", filter), "{filter}");
        }
        assert!(may_publish(
            Role::Server,
            "server",
            "cw/v1/server/main/state"
        ));
        assert!(may_publish(
            Role::Server,
            "server",
            "cw/v1/150102/150102-K-0001/cmd/rebirth"
        ));
        assert!(!may_publish(
            Role::Server,
            "server",
            "cw/v1/150102/150102-K-0001/birth"
        ));
        assert!(!may_publish(
            Role::Server,
            "server",
            "cw/v1/server/main/state/x"
        ));
    }
}
