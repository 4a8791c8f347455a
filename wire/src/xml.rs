//! Just enough XML for what devices send: the SOAP that cameras speak (ONVIF answers,
//! WS-Discovery) and the MANSCDP bodies of GB/T 28181 video platforms. Elements are
//! found by local name whatever their namespace prefix, because cameras pick prefixes
//! freely. Garbage never panics; it just finds nothing.
//!
//! Hand-written on purpose: a conforming parser such as roxmltree refuses the whole answer
//! when one prefix is undeclared or the answer is cut short; this reader still finds the
//! element that matters.
//!
//! Every function reads each byte a bounded number of times: an element is skipped by
//! searching for its end tag once, so a body of many thousand elements costs no more
//! than its length.

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
        let tag = start_tag(xml, &mut from)?;
        if local_name(tag) == local {
            return content(xml, tag, &mut from);
        }
    })
}

/// An element of a fragment, as [`children`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    /// The local name, without a namespace prefix.
    pub name: &'a str,
    /// What is between the start and the end tag, trimmed; empty for `<a/>`.
    pub text: &'a str,
    /// The start tag between `<` and `>`: the name and the attributes.
    tag: &'a str,
}

impl<'a> Element<'a> {
    /// The value of this element's attribute with this local name, as written (entities
    /// unresolved).
    pub fn attribute(&self, local: &str) -> Option<&'a str> {
        attribute(self.tag, local)
    }
}

/// The elements at the top of a fragment, in document order: given an element's text,
/// its children. Each is taken whole, without searching inside it; reading stops at the
/// first that is not closed.
pub fn children(xml: &str) -> impl Iterator<Item = Element<'_>> {
    let mut from = 0;
    std::iter::from_fn(move || {
        let tag = start_tag(xml, &mut from)?;
        let text = content(xml, tag, &mut from)?;
        Some(Element {
            name: local_name(tag),
            text,
            tag,
        })
    })
}

/// The charset an XML declaration names (`<?xml version="1.0" encoding="GB2312"?>`), read
/// from the bytes before they are decoded: the declaration is ASCII in every charset
/// devices use. `None` without a declaration or without `encoding` in it.
pub fn encoding(xml: &[u8]) -> Option<&str> {
    let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
    let start = xml.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = xml[start..].strip_prefix(b"<?xml")?;
    if !rest.first()?.is_ascii_whitespace() {
        return None;
    }
    // A declaration is short; a missing `?>` is not searched for through a whole body.
    let rest = &rest[..rest.len().min(200)];
    let end = rest.windows(2).position(|w| w == b"?>")?;
    let declaration = std::str::from_utf8(&rest[..end]).ok()?;
    declared(declaration, "encoding")
}

/// The value of the attribute with this local name in a start tag (what is between `<`
/// and `>`: the element's name first), as written.
pub fn attribute<'a>(tag: &'a str, local: &str) -> Option<&'a str> {
    let name_end = tag.find(|c: char| c.is_ascii_whitespace())?;
    declared(&tag[name_end..], local)
}

/// The value of `local` in a list of attributes (`a="1" b='2'`).
fn declared<'a>(mut attributes: &'a str, local: &str) -> Option<&'a str> {
    loop {
        attributes = attributes.trim_start();
        let eq = attributes.find('=')?;
        let name = attributes[..eq].trim();
        let rest = attributes[eq + 1..].trim_start();
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let value_end = rest[1..].find(quote)?;
        let value = &rest[1..1 + value_end];
        if name.rsplit(':').next() == Some(local) {
            return Some(value);
        }
        attributes = &rest[1 + value_end + 1..];
    }
}

/// The next start tag at or after `from` (what is between `<` and `>`), with `from` moved
/// past it. End tags, declarations, processing instructions and comments are passed over.
fn start_tag<'a>(xml: &'a str, from: &mut usize) -> Option<&'a str> {
    loop {
        let start = *from + xml.get(*from..)?.find('<')? + 1;
        let end = start + xml[start..].find('>')?;
        *from = end + 1;
        let tag = &xml[start..end];
        if !tag.starts_with(['/', '?', '!']) {
            return Some(tag);
        }
    }
}

/// The element's name as written, with its prefix.
fn qualified_name(tag: &str) -> &str {
    tag.split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches('/')
}

fn local_name(tag: &str) -> &str {
    let name = qualified_name(tag);
    name.rsplit(':').next().unwrap_or(name)
}

/// The text of the element whose start tag `tag` ends at `from`, with `from` moved past
/// its end tag; `None` when it is not closed.
fn content<'a>(xml: &'a str, tag: &str, from: &mut usize) -> Option<&'a str> {
    if tag.ends_with('/') {
        return Some("");
    }
    let close = format!("</{}>", qualified_name(tag));
    let body_start = *from;
    let body_end = body_start + xml[body_start..].find(&close)?;
    *from = body_end + close.len();
    Some(xml[body_start..body_end].trim())
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
    fn children_are_the_top_elements_each_taken_whole() {
        let xml = "<?xml version=\"1.0\"?>\n<!-- a note -->\n<Response><CmdType>Catalog</CmdType>\
            <DeviceList Num=\"2\"><Item><DeviceID>1</DeviceID></Item><Item/></DeviceList>\
            <m:DeviceID>2</m:DeviceID></Response>trailing";
        let roots: Vec<_> = children(xml).collect();
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].name, "Response");
        let top: Vec<_> = children(roots[0].text).map(|e| (e.name, e.text)).collect();
        assert_eq!(
            top,
            [
                ("CmdType", "Catalog"),
                ("DeviceList", "<Item><DeviceID>1</DeviceID></Item><Item/>"),
                ("DeviceID", "2"),
            ]
        );
        let list = children(roots[0].text).nth(1).unwrap();
        assert_eq!(list.attribute("Num"), Some("2"));
        assert_eq!(list.attribute("Missing"), None);
        let items: Vec<_> = children(list.text).map(|e| e.text).collect();
        assert_eq!(items, ["<DeviceID>1</DeviceID>", ""]);
        // Reading stops at the first element that is not closed.
        let cut: Vec<_> = children("<a>1</a><b>2<c>3</c>").map(|e| e.name).collect();
        assert_eq!(cut, ["a"]);
        assert_eq!(children("no element").count(), 0);
    }

    #[test]
    fn attributes_are_found_by_local_name_in_either_quotes() {
        let tag = "d:DeviceList  Num = '3' xsi:type=\"a b\" Empty=\"\"";
        assert_eq!(attribute(tag, "Num"), Some("3"));
        assert_eq!(attribute(tag, "type"), Some("a b"));
        assert_eq!(attribute(tag, "Empty"), Some(""));
        assert_eq!(attribute(tag, "d:DeviceList"), None);
        assert_eq!(attribute("Item", "Item"), None);
        assert_eq!(attribute("Item Num=3", "Num"), None);
        assert_eq!(attribute("Item Num=\"3", "Num"), None);
    }

    #[test]
    fn the_declared_charset_is_read_from_the_bytes() {
        let gbk = b"<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\xd0\xa3</Notify>";
        assert_eq!(encoding(gbk), Some("GB2312"));
        assert_eq!(
            encoding(b"\xEF\xBB\xBF \n<?xml version='1.0' encoding='UTF-8' ?><a/>"),
            Some("UTF-8")
        );
        assert_eq!(encoding(b"<?xml version=\"1.0\"?><a/>"), None);
        assert_eq!(encoding(b"<Notify>encoding=\"GBK\"</Notify>"), None);
        assert_eq!(encoding(b"<?xml-stylesheet encoding=\"GBK\"?>"), None);
        assert_eq!(encoding(b"<?xml encoding=\"GBK\""), None);
        assert_eq!(encoding(b""), None);
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
            '<', '>', '/', ':', 'a', 'M', '&', ';', '#', 'x', ' ', 'é', '"', '?', '=', '\'',
        ];
        for _ in 0..20_000 {
            let len = rng.random_range(0..40);
            let s: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let _ = elements(&s, "M").count();
            let _ = element(&s, "a");
            let _ = unescape(&s);
            for child in children(&s) {
                let _ = child.attribute("a");
                let _ = children(child.text).count();
            }
            let _ = encoding(s.as_bytes());
        }
    }
}
