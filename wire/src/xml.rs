//! Just enough XML for the SOAP that cameras speak (ONVIF answers, WS-Discovery): elements
//! are found by local name whatever their namespace prefix, because cameras pick prefixes
//! freely. Garbage never panics; it just finds nothing.
//!
//! Hand-written on purpose: a conforming parser such as roxmltree refuses the whole answer
//! when one prefix is undeclared or the answer is cut short; this reader still finds the
//! element that matters.

/// The text of the first element with this local name, whatever its namespace prefix.
pub fn element<'a>(xml: &'a str, local: &str) -> Option<&'a str> {
    elements(xml, local).next()
}

/// The texts of the elements with this local name, in document order (not nested in one
/// another). Stops at the first one that is not closed.
pub fn elements<'a, 'b>(
    xml: &'a str,
    local: &'b str,
) -> impl Iterator<Item = &'a str> + use<'a, 'b> {
    let mut from = 0;
    std::iter::from_fn(move || loop {
        let start = from + xml.get(from..)?.find('<')? + 1;
        let end = start + xml[start..].find('>')?;
        let tag = &xml[start..end];
        from = end + 1;
        if tag.starts_with('/') || tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        let name = tag
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('/');
        let name_local = name.rsplit(':').next().unwrap_or(name);
        if name_local != local {
            continue;
        }
        if tag.ends_with('/') {
            return Some("");
        }
        let close = format!("</{name}>");
        let body_start = from;
        let body_end = body_start + xml[body_start..].find(&close)?;
        from = body_end + close.len();
        return Some(xml[body_start..body_end].trim());
    })
}

/// Text for an XML element or attribute value.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An element's text with the five predefined entities and numeric references resolved;
/// anything else is left as it is.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let entity = rest
            .find(';')
            .filter(|&semi| semi <= 10)
            .and_then(|semi| Some((resolve(&rest[1..semi])?, semi)));
        match entity {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn resolve(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let n = name.strip_prefix('#')?;
            let code = match n.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => n.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_found_whatever_their_namespace_prefix() {
        let xml =
            "<?xml?><s:Env><s:Body><tds:R><tt:Model>M-1</tt:Model><Empty/><y:Year>2026</y:Year></tds:R></s:Body></s:Env>";
        assert_eq!(element(xml, "Model"), Some("M-1"));
        assert_eq!(element(xml, "Empty"), Some(""));
        assert_eq!(element(xml, "Year"), Some("2026"));
        assert_eq!(element(xml, "Missing"), None);
        assert_eq!(element("<a:Open>never closed", "Open"), None);
    }

    #[test]
    fn every_element_of_a_name_is_listed_in_order() {
        let xml = "<d:M><a>1</a></d:M><M x=\"y\"><a>2</a></M><e:M/><d:M>unclosed";
        assert_eq!(
            elements(xml, "M").collect::<Vec<_>>(),
            ["<a>1</a>", "<a>2</a>", ""]
        );
    }

    #[test]
    fn entities_are_resolved_and_stray_ampersands_kept() {
        assert_eq!(
            unescape("a&amp;b &lt;c&gt; &quot;&apos; &#65;&#x42; & &bogus; &#xD800;"),
            "a&b <c> \"' AB & &bogus; &#xD800;"
        );
    }

    #[test]
    fn garbage_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let alphabet = [
            '<', '>', '/', ':', 'a', 'M', '&', ';', '#', 'x', ' ', 'é', '"', '?',
        ];
        for _ in 0..20_000 {
            let len = rng.random_range(0..40);
            let s: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let _ = elements(&s, "M").count();
            let _ = element(&s, "a");
            let _ = unescape(&s);
        }
    }
}
