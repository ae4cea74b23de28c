//! The Rack query-string / form parser, and the lenient accessors over what it yields.
//!
//! Checked: no panic; the result is always an object (what `Body` needs); every accessor handles
//! every value it can produce.
#![no_main]

use confab_http::params::{parse_rack, ParamLimits, Params};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

mod common;

fuzz_target!(|data: &[u8]| {
    // A query string reaches the parser as `&str` (axum's URI); a form body only once it is UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_rack(text, &ParamLimits::default()) {
        Ok(Value::Object(map)) => common::read_all(&Params(map)),
        Ok(other) => panic!("not an object: {other}"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
