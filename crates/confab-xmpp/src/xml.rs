//! A small XML element tree: parsed from one complete top-level element, rendered back verbatim.
//!
//! Why not minidom/rxml: the ConnectyCube SDK serializes arrays inside `extraParams` as
//! `<tags><0>a</0><1>b</1></tags>`, which is not well-formed XML (names cannot start with a digit).
//! Strict parsers reject the whole stanza; the server must forward it unchanged (spec §5.18). quick-xml
//! tokenizes without validating names, and this tree keeps names exactly as written.
// COMPAT: connectycube JS SDK 6.1.2 `assignExtraParamsToXml` emits digit-named elements.

use std::fmt::Write as _;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

pub const NS_CLIENT: &str = "jabber:client";
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const NS_STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// A node inside an element.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// An element. `name` is the qualified name as written (`stream:features`, `0`); `ns` is the resolved
/// namespace; `attrs` keeps every attribute including `xmlns` declarations, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Element {
    pub name: String,
    pub ns: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Element {
    /// A new element declaring `ns` as its default namespace.
    pub fn new(name: &str, ns: &str) -> Self {
        Self {
            name: name.to_string(),
            ns: ns.to_string(),
            attrs: vec![("xmlns".into(), ns.into())],
            children: Vec::new(),
        }
    }

    /// A child element inheriting its parent's namespace (no `xmlns` attribute).
    pub fn bare(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name.to_string(), value)),
        }
    }

    pub fn remove_attr(&mut self, name: &str) {
        self.attrs.retain(|(k, _)| k != name);
    }

    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    pub fn with_child(mut self, child: Element) -> Self {
        self.push(child);
        self
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// Appends a child; a [`bare`](Self::bare) child (and its bare descendants) takes this element's
    /// namespace, as it would when parsed back.
    pub fn push(&mut self, mut child: Element) {
        inherit_ns(&mut child, &self.ns);
        self.children.push(Node::Element(child));
    }

    /// The local part of the name (after any prefix).
    pub fn local_name(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or(&self.name)
    }

    pub fn is(&self, local: &str, ns: &str) -> bool {
        self.local_name() == local && self.ns == ns
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child with this local name and namespace.
    pub fn child(&self, local: &str, ns: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(local, ns))
    }

    pub fn child_mut(&mut self, local: &str, ns: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.is(local, ns))
    }

    /// The first child with this local name, whatever its namespace.
    pub fn child_named(&self, local: &str) -> Option<&Element> {
        self.elements().find(|e| e.local_name() == local)
    }

    pub fn has_child(&self, local: &str, ns: &str) -> bool {
        self.child(local, ns).is_some()
    }

    /// The concatenated text directly inside this element.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// Renders the element. Namespaces are written exactly as held in `attrs`.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(128);
        self.write_to(&mut out);
        out
    }

    fn write_to(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}=\"");
            escape_into(v, out, true);
            out.push('"');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for n in &self.children {
            match n {
                Node::Element(e) => e.write_to(out),
                Node::Text(t) => escape_into(t, out, false),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

fn inherit_ns(e: &mut Element, ns: &str) {
    if e.ns.is_empty() && e.attr("xmlns").is_none() && !e.name.contains(':') {
        e.ns = ns.to_string();
        for c in e.elements_mut() {
            inherit_ns(c, ns);
        }
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(s, &mut out, true);
    out
}

fn escape_into(s: &str, out: &mut String, attr: bool) {
    // Copies the runs between special characters whole; those are ASCII, so every cut is a
    // character boundary.
    let mut copied = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' if attr => "&quot;",
            b'\'' if attr => "&apos;",
            _ => continue,
        };
        out.push_str(&s[copied..i]);
        out.push_str(entity);
        copied = i + 1;
    }
    out.push_str(&s[copied..]);
}

/// Namespace bindings in scope: the default namespace and prefixed ones.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub default_ns: String,
    pub prefixes: Vec<(String, String)>,
}

impl Scope {
    /// What a stanza inside a `jabber:client` stream sees.
    pub fn client() -> Self {
        Self {
            default_ns: NS_CLIENT.into(),
            prefixes: vec![("stream".into(), NS_STREAM.into())],
        }
    }

    fn child_scope(&self, attrs: &[(String, String)]) -> Scope {
        let mut s = self.clone();
        for (k, v) in attrs {
            if k == "xmlns" {
                s.default_ns = v.clone();
            } else if let Some(p) = k.strip_prefix("xmlns:") {
                s.prefixes.retain(|(q, _)| q != p);
                s.prefixes.push((p.to_string(), v.clone()));
            }
        }
        s
    }

    fn resolve(&self, name: &str) -> String {
        match name.split_once(':') {
            Some((prefix, _)) => self
                .prefixes
                .iter()
                .rev()
                .find(|(p, _)| p == prefix)
                .map(|(_, ns)| ns.clone())
                .unwrap_or_default(),
            None => self.default_ns.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not well-formed XML.
    Malformed,
    /// Well-formed, but over one of the [`XmlLimits`].
    OverLimit,
}

/// Bounds on what one element may contain, so that no input makes the server recurse or allocate
/// without limit (rendering, namespace inheritance and dropping a tree all walk its depth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// Elements nested inside each other, counting the top-level one.
    pub max_depth: u32,
    /// Attributes on one element, `xmlns` declarations included.
    pub max_attrs: u32,
    /// Bytes of one attribute value, after unescaping.
    pub max_attr_bytes: u32,
}

impl XmlLimits {
    /// The most any configuration may allow: deep enough for anything a client was let send, shallow
    /// enough that walking a tree recursively stays far from the stack's end.
    pub const STORED: XmlLimits = XmlLimits {
        max_depth: 256,
        max_attrs: 1024,
        max_attr_bytes: u32::MAX,
    };

    /// `self`, with the depth capped at what [`XmlLimits::STORED`] allows.
    pub fn capped(self) -> Self {
        Self {
            max_depth: self.max_depth.clamp(1, Self::STORED.max_depth),
            max_attrs: self.max_attrs.clamp(1, Self::STORED.max_attrs),
            ..self
        }
    }
}

impl Default for XmlLimits {
    fn default() -> Self {
        // The SDK's deepest stanza (a message with attachments in extraParams) nests 5 levels.
        Self {
            max_depth: 32,
            max_attrs: 64,
            max_attr_bytes: 16 * 1024,
        }
    }
}

/// Whether a name renders back to the same name. The tokenizer is lenient (the SDK sends element
/// names such as `<0>`), but a quote, `=` or `<` inside a name would change the markup around it
/// when the element is rendered and parsed again: `a"b="c"` would come back as other attributes.
fn renderable_name(name: &str) -> bool {
    !name.is_empty()
        && !name.bytes().any(|b| {
            matches!(b, b'"' | b'\'' | b'<' | b'>' | b'&' | b'=' | b'/') || b.is_ascii_whitespace()
        })
}

/// Reads the attributes of a start tag, unescaped.
pub fn start_attrs(
    start: &BytesStart<'_>,
    limits: &XmlLimits,
) -> Result<Vec<(String, String)>, ParseError> {
    let mut attrs = Vec::new();
    for a in start.attributes() {
        if attrs.len() >= limits.max_attrs as usize {
            return Err(ParseError::OverLimit);
        }
        let a = a.map_err(|_| ParseError::Malformed)?;
        let key = std::str::from_utf8(a.key.as_ref())
            .map_err(|_| ParseError::Malformed)?
            .to_string();
        if !renderable_name(&key) {
            return Err(ParseError::Malformed);
        }
        let value = a
            .unescape_value()
            .map_err(|_| ParseError::Malformed)?
            .into_owned();
        if value.len() > limits.max_attr_bytes as usize {
            return Err(ParseError::OverLimit);
        }
        if attrs.iter().any(|(k, _)| *k == key) {
            return Err(ParseError::Malformed);
        }
        attrs.push((key, value));
    }
    Ok(attrs)
}

fn start_element(
    start: &BytesStart<'_>,
    scope: &Scope,
    limits: &XmlLimits,
) -> Result<(Element, Scope), ParseError> {
    let name = std::str::from_utf8(start.name().as_ref())
        .map_err(|_| ParseError::Malformed)?
        .to_string();
    if !renderable_name(&name) {
        return Err(ParseError::Malformed);
    }
    let attrs = start_attrs(start, limits)?;
    let inner = scope.child_scope(&attrs);
    let ns = inner.resolve(&name);
    Ok((
        Element {
            name,
            ns,
            attrs,
            children: Vec::new(),
        },
        inner,
    ))
}

/// Parses exactly one element (with optional surrounding whitespace) in `scope`. For XML the server
/// produced or already accepted (stored stanzas), so within [`XmlLimits::STORED`]; what a client sends
/// goes through the stream reader and its configured limits.
pub fn parse_element(bytes: &[u8], scope: &Scope) -> Result<Element, ParseError> {
    parse_element_within(bytes, scope, &XmlLimits::STORED)
}

/// Parses exactly one element (with optional surrounding whitespace) in `scope`, refusing anything
/// over `limits` before building it.
pub fn parse_element_within(
    bytes: &[u8],
    scope: &Scope,
    limits: &XmlLimits,
) -> Result<Element, ParseError> {
    let mut reader = Reader::from_reader(bytes);
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    cfg.trim_text(false);
    let mut stack: Vec<(Element, Scope)> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let ev = reader.read_event().map_err(|_| ParseError::Malformed)?;
        match ev {
            Event::Start(s) => {
                if root.is_some() {
                    return Err(ParseError::Malformed);
                }
                if stack.len() >= limits.max_depth as usize {
                    return Err(ParseError::OverLimit);
                }
                let parent = stack.last().map(|(_, s)| s).unwrap_or(scope);
                let (el, inner) = start_element(&s, parent, limits)?;
                stack.push((el, inner));
            }
            Event::Empty(s) => {
                if root.is_some() {
                    return Err(ParseError::Malformed);
                }
                if stack.len() >= limits.max_depth as usize {
                    return Err(ParseError::OverLimit);
                }
                let parent = stack.last().map(|(_, s)| s).unwrap_or(scope);
                let (el, _) = start_element(&s, parent, limits)?;
                match stack.last_mut() {
                    Some((p, _)) => p.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let (el, _) = stack.pop().ok_or(ParseError::Malformed)?;
                match stack.last_mut() {
                    Some((p, _)) => p.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|_| ParseError::Malformed)?;
                match stack.last_mut() {
                    Some((p, _)) => push_text(p, &text),
                    None => {
                        if !text.trim().is_empty() {
                            return Err(ParseError::Malformed);
                        }
                    }
                }
            }
            Event::CData(c) => {
                let text = std::str::from_utf8(&c).map_err(|_| ParseError::Malformed)?;
                match stack.last_mut() {
                    Some((p, _)) => push_text(p, text),
                    None => return Err(ParseError::Malformed),
                }
            }
            // RFC 6120 §11.1: comments, processing instructions and DTDs are not allowed in stanzas.
            Event::Comment(_) | Event::PI(_) | Event::DocType(_) | Event::Decl(_) => {
                return Err(ParseError::Malformed)
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(ParseError::Malformed);
    }
    root.ok_or(ParseError::Malformed)
}

fn push_text(p: &mut Element, text: &str) {
    if let Some(Node::Text(prev)) = p.children.last_mut() {
        prev.push_str(text);
    } else {
        p.children.push(Node::Text(text.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_odd_names() {
        let x = r#"<message to="a@b" type="chat"><body>Hi &amp; &lt;x&gt;</body><extraParams xmlns="jabber:client"><tags><0>a</0><1>b</1></tags><attachment uid="u" url="http://x/?a=1&amp;b=2"/></extraParams></message>"#;
        let e = parse_element(x.as_bytes(), &Scope::client()).unwrap();
        assert_eq!(e.ns, NS_CLIENT);
        assert_eq!(e.child("body", NS_CLIENT).unwrap().text(), "Hi & <x>");
        let ep = e.child("extraParams", NS_CLIENT).unwrap();
        assert_eq!(
            ep.child_named("tags")
                .unwrap()
                .child_named("0")
                .unwrap()
                .text(),
            "a"
        );
        assert_eq!(e.to_xml(), x);
    }

    /// Found by the `xmpp_stream` fuzz target: an attribute name with a quote in it rendered to
    /// markup that parsed back as other attributes.
    #[test]
    fn names_that_would_not_render_back_are_refused() {
        let crash = br#"<iq i'="b3:markActi'="b3:markActive"idype="l/mobile#v2" enable="false"/>"#;
        assert!(parse_element(crash, &Scope::client()).is_err());
        for bad in [
            &br#"<iq a"b="1"/>"#[..],
            br#"<iq a'b="1"/>"#,
            br#"<a"b/>"#,
            br#"<iq a&b="1"/>"#,
        ] {
            assert!(
                parse_element(bad, &Scope::client()).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Lenient names the SDK sends still parse.
        assert!(parse_element(br#"<tags><0>a</0></tags>"#, &Scope::client()).is_ok());
    }

    #[test]
    fn prefixes_resolve() {
        let e = parse_element(
            br#"<stream:features xmlns:stream="http://etherx.jabber.org/streams"/>"#,
            &Scope::default(),
        )
        .unwrap();
        assert!(e.is("features", NS_STREAM));
    }

    #[test]
    fn rejects_mismatched_and_trailing() {
        assert!(parse_element(b"<a><b></a>", &Scope::client()).is_err());
        assert!(parse_element(b"<a/><b/>", &Scope::client()).is_err());
        assert!(parse_element(b"<a>&bogus;</a>", &Scope::client()).is_err());
        assert!(parse_element(b"<a><!-- c --></a>", &Scope::client()).is_err());
    }
}
