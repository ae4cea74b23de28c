//! The chat API's filter parser (`field[op]=value`, sorting, paging) on arbitrary query strings,
//! with the dialog and message endpoints' field lists, and the `/{id1},{id2}` path segments.
#![no_main]

use confab_http::connectycube::{dialogs, messages};
use confab_http::filters::{parse_query, path_ids};
use confab_http::params::{parse_rack, ParamLimits, Params};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = path_ids::<confab_core::ObjectId>(text);
    let Ok(Value::Object(map)) = parse_rack(text, &ParamLimits::default()) else {
        return;
    };
    let p = Params(map);
    for (fields, sorts, custom) in [
        (dialogs::DIALOG_FIELDS, dialogs::DIALOG_SORTS, true),
        (messages::MESSAGE_FIELDS, messages::MESSAGE_SORTS, false),
    ] {
        if let Ok(q) = parse_query(&p, fields, sorts, custom, 100, 100) {
            assert!(q.limit <= 100);
            for c in &q.conditions {
                assert!(!c.values.is_empty() && c.values.len() <= 100);
            }
        }
    }
});
