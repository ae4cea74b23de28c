//! The sans-I/O stream reader: bytes in, stream events out.
//!
//! It finds the boundaries of top-level elements with a small byte scanner (quotes, CDATA, end tags),
//! then hands each complete element to [`crate::xml::parse_element`]. Only the element being received is
//! buffered, and never more than `max_stanza_bytes`, so a peer cannot make it grow without bound.
//!
//! Over TCP (RFC 6120) the stanzas live inside `<stream:stream>`; over WebSocket (RFC 7395) every frame
//! holds complete elements, and `<open/>` / `<close/>` stand in for the stream header and footer.

use crate::xml::{self, Element, ParseError, Scope, XmlLimits, NS_FRAMING, NS_STREAM};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// RFC 6120: `<stream:stream>` wrapper.
    Tcp,
    /// RFC 7395: `<open/>`, `<close/>`, one element per frame.
    WebSocket,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The stream header (`<stream:stream>` or `<open/>`), with its attributes.
    Open(Vec<(String, String)>),
    /// A complete top-level element (stanza or nonza).
    Element(Element),
    /// `</stream:stream>` or `<close/>`.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// Becomes `<not-well-formed/>`.
    NotWellFormed,
    /// An element over the size limit: `<policy-violation/>`.
    TooBig,
    /// An element nested too deep, or with too many or too long attributes: `<policy-violation/>`.
    OverLimit,
    /// The header was not a `<stream:stream>` in the streams namespace: `<invalid-namespace/>`.
    InvalidNamespace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// TCP, before the stream header.
    Prolog,
    /// Between top-level elements.
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Start,
    Empty,
    End,
    Pi,
    Comment,
    CData,
}

pub struct StreamReader {
    framing: Framing,
    /// Largest top-level element (u32 keeps every idle connection's reader small).
    max: u32,
    limits: XmlLimits,
    buf: Vec<u8>,
    /// Scanned up to here.
    pos: usize,
    /// Nesting depth inside the current top-level element (0 = between elements).
    depth: u32,
    /// Names of the open elements inside the current top-level element, to catch a mismatched end
    /// tag as soon as it arrives rather than when the element would have ended.
    open: Vec<Vec<u8>>,
    phase: Phase,
    failed: Option<StreamError>,
}

impl StreamReader {
    /// A reader with the default [`XmlLimits`].
    pub fn new(framing: Framing, max_stanza_bytes: usize) -> Self {
        Self::with_limits(framing, max_stanza_bytes, XmlLimits::default())
    }

    pub fn with_limits(framing: Framing, max_stanza_bytes: usize, limits: XmlLimits) -> Self {
        Self {
            framing,
            max: u32::try_from(max_stanza_bytes.max(1024)).unwrap_or(u32::MAX),
            limits: limits.capped(),
            buf: Vec::new(),
            pos: 0,
            depth: 0,
            open: Vec::new(),
            phase: match framing {
                Framing::Tcp => Phase::Prolog,
                Framing::WebSocket => Phase::Stream,
            },
            failed: None,
        }
    }

    /// Forgets everything buffered: after STARTTLS and SASL success the stream restarts.
    pub fn reset(&mut self) {
        *self = Self::with_limits(self.framing, self.max as usize, self.limits);
    }

    /// Bytes held right now (for tests of the memory bound).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The input buffer, for a transport to append received bytes to directly (no copy).
    pub fn input(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// The next complete event, `Ok(None)` when more input is needed.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, StreamError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.step();
        match r {
            Err(e) => {
                self.failed = Some(e);
                self.buf = Vec::new();
                Err(e)
            }
            Ok(None) if self.buf.len() > self.max as usize => {
                self.failed = Some(StreamError::TooBig);
                self.buf = Vec::new();
                Err(StreamError::TooBig)
            }
            ok => ok,
        }
    }

    fn consume(&mut self, n: usize) {
        if n == self.buf.len() {
            // Everything parsed: give the memory back, so an idle connection holds no buffer.
            self.buf = Vec::new();
            self.open = Vec::new();
        } else {
            self.buf.drain(..n);
        }
        self.pos = 0;
    }

    fn step(&mut self) -> Result<Option<StreamEvent>, StreamError> {
        loop {
            if self.depth == 0 {
                // Between elements: only whitespace (keep-alives) may appear here.
                let ws = self.buf[self.pos..]
                    .iter()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
                self.pos += ws;
                if self.pos == self.buf.len() {
                    let n = self.pos;
                    self.consume(n);
                    return Ok(None);
                }
                if self.buf[self.pos] != b'<' {
                    return Err(StreamError::NotWellFormed);
                }
                // Drop the whitespace so the element starts at 0.
                let n = self.pos;
                self.consume(n);
                let Some((tag, end)) = scan_tag(&self.buf, 0)? else {
                    return Ok(None);
                };
                match (self.phase, tag) {
                    (Phase::Prolog, Tag::Pi) => {
                        self.consume(end);
                        continue;
                    }
                    (Phase::Prolog, Tag::Start) => {
                        let ev = self.stream_header(end)?;
                        self.consume(end);
                        self.phase = Phase::Stream;
                        return Ok(Some(ev));
                    }
                    (Phase::Prolog, _) => return Err(StreamError::NotWellFormed),
                    (Phase::Stream, Tag::End) if self.framing == Framing::Tcp => {
                        self.consume(end);
                        return Ok(Some(StreamEvent::Close));
                    }
                    (Phase::Stream, Tag::Empty) => {
                        let ev = self.element(end)?;
                        self.consume(end);
                        return Ok(Some(ev));
                    }
                    (Phase::Stream, Tag::Start) => {
                        self.depth = 1;
                        self.open.clear();
                        self.open.push(tag_name(&self.buf[..end]).to_vec());
                        self.pos = end;
                    }
                    _ => return Err(StreamError::NotWellFormed),
                }
            } else {
                // Inside an element: skip text up to the next tag.
                match self.buf[self.pos..].iter().position(|&b| b == b'<') {
                    Some(off) => self.pos += off,
                    None => {
                        self.pos = self.buf.len();
                        return Ok(None);
                    }
                }
                let Some((tag, end)) = scan_tag(&self.buf, self.pos)? else {
                    return Ok(None);
                };
                match tag {
                    Tag::Start => {
                        // Refused as soon as the tag arrives, before the rest is buffered.
                        if self.depth >= self.limits.max_depth {
                            return Err(StreamError::OverLimit);
                        }
                        self.depth += 1;
                        let name = tag_name(&self.buf[self.pos..end]).to_vec();
                        self.open.push(name);
                    }
                    Tag::End => {
                        self.depth -= 1;
                        let name = tag_name(&self.buf[self.pos..end]);
                        if self.open.pop().as_deref() != Some(name) {
                            return Err(StreamError::NotWellFormed);
                        }
                    }
                    Tag::Empty | Tag::CData => {}
                    Tag::Pi | Tag::Comment => return Err(StreamError::NotWellFormed),
                }
                self.pos = end;
                if self.depth == 0 {
                    let ev = self.element(end)?;
                    self.consume(end);
                    return Ok(Some(ev));
                }
            }
        }
    }

    fn stream_header(&self, end: usize) -> Result<StreamEvent, StreamError> {
        // Parse `<stream:stream …>` as if it were empty, to read its attributes and namespace.
        let mut tag = self.buf[..end - 1].to_vec();
        tag.extend_from_slice(b"/>");
        let el =
            xml::parse_element_within(&tag, &Scope::default(), &self.limits).map_err(
                |e| match e {
                    ParseError::Malformed => StreamError::NotWellFormed,
                    ParseError::OverLimit => StreamError::OverLimit,
                },
            )?;
        if el.local_name() != "stream" || el.ns != NS_STREAM {
            return Err(StreamError::InvalidNamespace);
        }
        Ok(StreamEvent::Open(el.attrs))
    }

    fn element(&self, end: usize) -> Result<StreamEvent, StreamError> {
        if end > self.max as usize {
            return Err(StreamError::TooBig);
        }
        let el = xml::parse_element_within(&self.buf[..end], &Scope::client(), &self.limits)
            .map_err(|e| match e {
                ParseError::Malformed => StreamError::NotWellFormed,
                ParseError::OverLimit => StreamError::OverLimit,
            })?;
        if self.framing == Framing::WebSocket && el.ns == NS_FRAMING {
            match el.local_name() {
                "open" => return Ok(StreamEvent::Open(el.attrs)),
                "close" => return Ok(StreamEvent::Close),
                _ => {}
            }
        }
        Ok(StreamEvent::Element(el))
    }
}

/// The name in `<name …>` or `</name>`.
fn tag_name(tag: &[u8]) -> &[u8] {
    let start = if tag.get(1) == Some(&b'/') { 2 } else { 1 };
    let rest = &tag[start.min(tag.len())..];
    let len = rest
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>')
        .unwrap_or(rest.len());
    &rest[..len]
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// Scans the markup starting at `buf[i] == b'<'`. `Ok(None)` means incomplete.
fn scan_tag(buf: &[u8], i: usize) -> Result<Option<(Tag, usize)>, StreamError> {
    let rest = &buf[i..];
    if rest.len() < 2 {
        return Ok(None);
    }
    match rest[1] {
        b'?' => Ok(find(buf, i + 2, b"?>").map(|p| (Tag::Pi, p + 2))),
        b'!' => {
            const COMMENT: &[u8] = b"<!--";
            const CDATA: &[u8] = b"<![CDATA[";
            let n = rest.len();
            if rest.starts_with(COMMENT) {
                Ok(find(buf, i + 4, b"-->").map(|p| (Tag::Comment, p + 3)))
            } else if rest.starts_with(CDATA) {
                Ok(find(buf, i + 9, b"]]>").map(|p| (Tag::CData, p + 3)))
            } else if COMMENT.starts_with(&rest[..n.min(4)]) || CDATA.starts_with(&rest[..n.min(9)])
            {
                Ok(None)
            } else {
                // DOCTYPE and friends are forbidden in XMPP.
                Err(StreamError::NotWellFormed)
            }
        }
        b'/' => match rest.iter().position(|&b| b == b'>') {
            Some(p) => {
                if rest[2..p].contains(&b'<') {
                    return Err(StreamError::NotWellFormed);
                }
                Ok(Some((Tag::End, i + p + 1)))
            }
            None => Ok(None),
        },
        _ => {
            let mut quote: Option<u8> = None;
            for (j, &b) in rest.iter().enumerate().skip(1) {
                match quote {
                    Some(q) if b == q => quote = None,
                    Some(_) => {}
                    None => match b {
                        b'"' | b'\'' => quote = Some(b),
                        b'<' => return Err(StreamError::NotWellFormed),
                        b'>' => {
                            let kind = if rest[j - 1] == b'/' {
                                Tag::Empty
                            } else {
                                Tag::Start
                            };
                            return Ok(Some((kind, i + j + 1)));
                        }
                        _ => {}
                    },
                }
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(r: &mut StreamReader) -> Result<Vec<StreamEvent>, StreamError> {
        let mut v = Vec::new();
        while let Some(e) = r.next_event()? {
            v.push(e);
        }
        Ok(v)
    }

    #[test]
    fn tcp_stream_split_anywhere() {
        let input = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'> <message to='a@b'><body>x &gt; y</body></message>\n<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>";
        for split in 0..input.len() {
            let mut r = StreamReader::new(Framing::Tcp, 4096);
            let mut evs = Vec::new();
            r.feed(&input.as_bytes()[..split]);
            evs.extend(all(&mut r).unwrap());
            r.feed(&input.as_bytes()[split..]);
            evs.extend(all(&mut r).unwrap());
            assert_eq!(evs.len(), 4, "split at {split}: {evs:?}");
            assert!(matches!(evs[0], StreamEvent::Open(_)));
            assert!(matches!(&evs[1], StreamEvent::Element(e) if e.name == "message"));
            assert!(matches!(&evs[2], StreamEvent::Element(e) if e.name == "iq"));
            assert_eq!(evs[3], StreamEvent::Close);
            assert_eq!(r.buffered(), 0);
        }
    }

    #[test]
    fn websocket_open_close() {
        let mut r = StreamReader::new(Framing::WebSocket, 4096);
        r.feed(
            br#"<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="127.0.0.1" version="1.0"/>"#,
        );
        r.feed(b" ");
        r.feed(br#"<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>"#);
        let evs = all(&mut r).unwrap();
        assert!(matches!(evs[0], StreamEvent::Open(_)));
        assert_eq!(evs[1], StreamEvent::Close);
    }

    #[test]
    fn depth_and_attributes_are_bounded() {
        let limits = XmlLimits {
            max_depth: 4,
            max_attrs: 3,
            max_attr_bytes: 8,
        };
        let reader = || StreamReader::with_limits(Framing::WebSocket, 1 << 20, limits);
        // At the limit: accepted.
        let mut r = reader();
        r.feed(b"<a><b><c><d x='12345678' y='1' z='2'/></c></b></a>");
        assert!(matches!(all(&mut r).unwrap()[0], StreamEvent::Element(_)));
        // One deeper, as a start tag or an empty one: refused.
        for deep in [&b"<a><b><c><d><e>"[..], b"<a><b><c><d><e/></d></c></b></a>"] {
            let mut r = reader();
            r.feed(deep);
            assert_eq!(r.next_event(), Err(StreamError::OverLimit));
        }
        // Refused while the element is still arriving: 20,000 levels never get buffered whole.
        let mut r = reader();
        r.feed(&b"<a>".repeat(20_000));
        assert_eq!(r.next_event(), Err(StreamError::OverLimit));
        assert_eq!(r.buffered(), 0);
        let mut r = reader();
        r.feed(b"<a w='1' x='2' y='3' z='4'/>");
        assert_eq!(r.next_event(), Err(StreamError::OverLimit));
        let mut r = reader();
        r.feed(b"<a x='123456789'/>");
        assert_eq!(r.next_event(), Err(StreamError::OverLimit));
    }

    #[test]
    fn too_big_and_bad() {
        let mut r = StreamReader::new(Framing::WebSocket, 1024);
        r.feed(b"<message><body>");
        r.feed(&[b'a'; 2000]);
        assert_eq!(r.next_event(), Err(StreamError::TooBig));
        let mut r = StreamReader::new(Framing::WebSocket, 1024);
        r.feed(b"<a><b></a>");
        assert_eq!(r.next_event(), Err(StreamError::NotWellFormed));
        let mut r = StreamReader::new(Framing::WebSocket, 1024);
        r.feed(b"<message><body>oops</message>");
        assert_eq!(
            r.next_event(),
            Err(StreamError::NotWellFormed),
            "caught before the end"
        );
        let mut r = StreamReader::new(Framing::WebSocket, 1024);
        r.feed(b"hello");
        assert_eq!(r.next_event(), Err(StreamError::NotWellFormed));
        let mut r = StreamReader::new(Framing::Tcp, 1024);
        r.feed(b"<stream xmlns='jabber:client'>");
        assert_eq!(r.next_event(), Err(StreamError::InvalidNamespace));
    }
}
