//! Reads every parameter of a tree with every lenient accessor, as handlers do.

use confab_http::params::{ParamExt, Params};
use serde_json::Value;

pub fn read_all(p: &Params) {
    read_level(p, 0);
}

fn read_level(p: &Params, depth: usize) {
    for key in p.0.keys() {
        let _ = p.text(key);
        let _ = p.int(key);
        let _ = p.flag(key);
        let _ = p.bounded(key, 10, 100).map(|v| assert!(v <= 100));
        if let Some(v) = p.get(key) {
            if let Some(list) = v.as_list() {
                assert!(list.iter().all(|s| !s.is_empty() && s.trim() == s));
            }
            if let Value::Array(items) = v {
                items.iter().for_each(|i| {
                    let _ = (i.as_text(), i.as_int(), i.as_flag(), i.as_list());
                });
            }
        }
        // Nested objects are read the same way (`user[...]`, `data[...]`), bounded for deep JSON.
        if depth < 16 {
            if let Ok(Some(inner)) = p.object(key) {
                read_level(&inner, depth + 1);
            }
        }
    }
}
