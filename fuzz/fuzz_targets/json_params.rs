//! JSON request bodies as a parameter tree, and the lenient accessors over it.
#![no_main]

use confab_http::params::Params;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

mod common;

fuzz_target!(|data: &[u8]| {
    // What `Body` does with a JSON body: parse, then require an object.
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(data) {
        common::read_all(&Params(map));
    }
});
