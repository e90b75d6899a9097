//! Strict form-body parsing at token endpoints.
#![no_main]

use idjag_core::server::FormBody;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(form) = FormBody::parse(data) {
        for name in form.names() {
            assert!(form.get(name).is_some_and(|v| !v.is_empty()));
        }
    }
});
