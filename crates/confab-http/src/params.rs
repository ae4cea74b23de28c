//! Request parameters as one JSON tree, whatever the encoding.
//!
//! The SDK sends Rack-style query strings (`a[b]=1`, `k[]=x&k[]=y`) on GET, form bodies on
//! DELETE and JSON on POST/PUT. All of them become a `serde_json::Value` object here, and the
//! accessors read numbers, numeric strings and comma lists alike, because the SDK mixes them
//! (`occupants_ids: "5, 6"` vs `[5, 6]`).

use confab_core::{Error, Result};
use serde_json::{Map, Value};

/// Bounds on the shape of what a client sends, so no request costs more than its size suggests.
#[derive(Debug, Clone, Copy)]
pub struct ParamLimits {
    /// Most segments in one Rack parameter name (`a[b][]` has 3).
    pub max_depth: usize,
    /// Most `name=value` pairs in one query string or form body.
    pub max_pairs: usize,
    /// Deepest nesting of arrays and objects in a JSON body.
    pub max_json_depth: usize,
}

/// Nothing deeper than this is ever accepted, whatever the configuration: parsed trees are dropped
/// recursively, and serde_json itself stops at 128.
pub const DEPTH_CAP: usize = 128;

impl Default for ParamLimits {
    fn default() -> Self {
        Self {
            max_depth: 8,
            max_pairs: 1000,
            max_json_depth: 16,
        }
    }
}

impl ParamLimits {
    /// The limits with depths no greater than [`DEPTH_CAP`].
    pub fn capped(self) -> Self {
        Self {
            max_depth: self.max_depth.clamp(1, DEPTH_CAP),
            max_pairs: self.max_pairs,
            max_json_depth: self.max_json_depth.clamp(1, DEPTH_CAP),
        }
    }
}

/// Parses `a[b][]=1&c=2` into `{"a":{"b":["1"]},"c":"2"}`.
pub fn parse_rack(input: &str, limits: &ParamLimits) -> Result<Value> {
    let mut root = Value::Object(Map::new());
    for (n, (key, value)) in form_urlencoded::parse(input.as_bytes()).enumerate() {
        if n >= limits.max_pairs {
            return Err(Error::bad_request(format!(
                "More than {} parameters",
                limits.max_pairs
            )));
        }
        let path = split_key(&key, limits.max_depth)?;
        insert(&mut root, &path, Value::String(value.into_owned()))?;
    }
    Ok(root)
}

/// Parses a JSON body whose arrays and objects nest at most `max_depth` deep. The depth is checked
/// on the bytes first, without recursion, so a hostile body never reaches the recursive parser.
pub fn parse_json(bytes: &[u8], max_depth: usize) -> Result<Value> {
    if json_depth_exceeds(bytes, max_depth) {
        return Err(Error::bad_request(format!(
            "JSON body nested deeper than {max_depth}"
        )));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Error::bad_request(format!("Malformed JSON body: {e}")))
}

/// Whether `[` and `{` outside strings nest deeper than `max` anywhere in `bytes`.
fn json_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// `a[b][]` → `["a", "b", ""]`.
fn split_key(key: &str, max_depth: usize) -> Result<Vec<String>> {
    let bad = || Error::bad_request(format!("malformed parameter name: {key:.60}"));
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return Err(bad());
    }
    let mut path = vec![head.to_string()];
    while !rest.is_empty() {
        if path.len() >= max_depth {
            return Err(Error::bad_request(format!(
                "Parameter {head:.60} nested deeper than {max_depth}"
            )));
        }
        let inner = rest.strip_prefix('[').ok_or_else(bad)?;
        let close = inner.find(']').ok_or_else(bad)?;
        path.push(inner[..close].to_string());
        rest = &inner[close + 1..];
    }
    Ok(path)
}

/// Puts `value` at `path` under `root`, walking down in a loop (the path comes from the client).
fn insert(root: &mut Value, path: &[String], value: Value) -> Result<()> {
    let conflict = || Error::bad_request(format!("conflicting parameter: {:.60}", path.join("/")));
    let mut node = root;
    let mut rest = path;
    while let Some((segment, after)) = rest.split_first() {
        rest = after;
        if segment.is_empty() {
            // `k[]` appends; only values may follow it.
            let Value::Array(items) = node else {
                return Err(conflict());
            };
            if !rest.is_empty() {
                return Err(conflict());
            }
            items.push(value);
            return Ok(());
        }
        let Value::Object(map) = node else {
            return Err(conflict());
        };
        if rest.is_empty() {
            match map.get_mut(segment) {
                // A repeated plain key collects its values.
                Some(Value::Array(items)) => items.push(value),
                Some(existing @ Value::String(_)) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, value]);
                }
                Some(_) => return Err(conflict()),
                None => {
                    map.insert(segment.clone(), value);
                }
            }
            return Ok(());
        }
        node = map.entry(segment.clone()).or_insert_with(|| {
            if rest[0].is_empty() {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            }
        });
    }
    Ok(())
}

/// Lenient readers over one parameter value.
pub trait ParamExt {
    /// A string, or a number written as one.
    fn as_text(&self) -> Option<String>;
    /// An integer, or a string holding one.
    fn as_int(&self) -> Option<i64>;
    /// An array, or a comma-separated string, as trimmed non-empty strings.
    fn as_list(&self) -> Option<Vec<String>>;
    /// `1`, `"1"`, `true`, `"true"` are true.
    fn as_flag(&self) -> bool;
}

impl ParamExt for Value {
    fn as_text(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn as_int(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn as_list(&self) -> Option<Vec<String>> {
        let items: Vec<String> = match self {
            Value::Array(a) => a.iter().filter_map(ParamExt::as_text).collect(),
            Value::String(s) => s.split(',').map(str::to_string).collect(),
            Value::Number(n) => vec![n.to_string()],
            _ => return None,
        };
        Some(
            items
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    fn as_flag(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_i64().is_some_and(|v| v != 0),
            Value::String(s) => matches!(s.trim(), "1" | "true"),
            _ => false,
        }
    }
}

/// The parameters of one request.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key).and_then(ParamExt::as_text)
    }

    /// An integer parameter; present but not an integer is a 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_int()
                .map(Some)
                .ok_or_else(|| Error::bad_request(format!("{key} must be an integer"))),
        }
    }

    /// A paging parameter within `0..=max`, or `default`.
    pub fn bounded(&self, key: &str, default: u32, max: u32) -> Result<u32> {
        match self.int(key)? {
            None => Ok(default),
            Some(v) if (0..=i64::from(max)).contains(&v) => Ok(v as u32),
            Some(_) => Err(Error::bad_request(format!(
                "{key} must be between 0 and {max}"
            ))),
        }
    }

    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(ParamExt::as_flag)
    }

    /// A nested object parameter such as `user`.
    pub fn object(&self, key: &str) -> Result<Option<Params>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Params(m.clone()))),
            Some(_) => Err(Error::bad_request(format!("{key} must be an object"))),
        }
    }

    /// Overlays `other` (e.g. the body) on these parameters (e.g. the query string).
    pub fn merge(mut self, other: Params) -> Params {
        self.0.extend(other.0);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_rack(input: &str) -> Result<Value> {
        super::parse_rack(input, &ParamLimits::default())
    }

    #[test]
    fn parses_rack_nesting_and_arrays() {
        let v =
            parse_rack("id%5Bin%5D%5B%5D=1&id%5Bin%5D%5B%5D=2&limit=10&login=x&a[b]=c").unwrap();
        assert_eq!(
            v,
            json!({"id": {"in": ["1", "2"]}, "limit": "10", "login": "x", "a": {"b": "c"}})
        );
    }

    #[test]
    fn comma_lists_and_repeats() {
        let v = parse_rack("_id[in]=x%2Cy&k=1&k=2").unwrap();
        assert_eq!(v["_id"]["in"].as_list().unwrap(), vec!["x", "y"]);
        assert_eq!(v["k"], json!(["1", "2"]));
        assert_eq!(json!("5, 6").as_list().unwrap(), vec!["5", "6"]);
    }

    #[test]
    fn malformed_keys_are_rejected() {
        assert!(parse_rack("a[b=1").is_err());
        assert!(parse_rack("[x]=1").is_err());
        assert!(parse_rack("a=1&a[b]=2").is_err());
        assert!(parse_rack("a[]=1&a[b]=2").is_err());
        assert!(parse_rack("a[b]=1&a=2").is_err());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let key = format!("a{}", "[x]".repeat(20));
        assert!(parse_rack(&format!("{key}=1")).is_err());
        let limits = ParamLimits {
            max_depth: 3,
            ..ParamLimits::default()
        };
        assert!(super::parse_rack("a[b][c]=1", &limits).is_ok());
        assert!(super::parse_rack("a[b][c][d]=1", &limits).is_err());
    }

    #[test]
    fn json_depth_ignores_brackets_in_strings() {
        assert!(!json_depth_exceeds(br#"{"a":[[1]]}"#, 3));
        assert!(json_depth_exceeds(br#"{"a":[[[1]]]}"#, 3));
        assert!(!json_depth_exceeds(br#"{"a":"[[[[\"[[[["}"#, 1));
        assert!(parse_json(
            format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)).as_bytes(),
            16
        )
        .is_err());
    }
}
