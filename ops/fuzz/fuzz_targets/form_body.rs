//! A form body merged with the query's parameters, as POSTed BBB calls
//! are: a repeated parameter is refused, never silently overwritten.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_domain::bbb::params::Params;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the query, the rest the form body.
    let (query, body) = raw.split_once('\n').unwrap_or((raw, ""));
    let (Ok(mut params), Ok(form)) = (Params::parse(query), Params::parse(body)) else {
        return;
    };
    let query_keys: Vec<String> = params.iter().map(|(key, _)| key.to_owned()).collect();
    let clash = form.iter().any(|(key, _)| query_keys.iter().any(|q| q == key));
    let form_len = form.iter().count();
    let before = params.iter().count();
    match params.merge(form) {
        Ok(()) => {
            assert!(!clash, "a repeated parameter was merged");
            assert_eq!(params.iter().count(), before + form_len);
        }
        Err(_) => assert!(clash, "refused without a repeated parameter"),
    }
});
