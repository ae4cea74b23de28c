//! JSON request bodies as a parameter tree, and the lenient accessors over it.
#![no_main]

use confab_http::params::{parse_json, ParamLimits, Params};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

mod common;

fuzz_target!(|data: &[u8]| {
    // What `Body` does with a JSON body: parse within the depth limit, then require an object.
    if let Ok(Value::Object(map)) = parse_json(data, ParamLimits::default().max_json_depth) {
        common::read_all(&Params(map));
    }
});
