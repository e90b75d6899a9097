//! The JOSE header: duplicate-rejecting JSON, then the header policy.
#![no_main]

use idjag_core::Segment;
use idjag_core::jose::{Header, parse_object};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(map) = parse_object(data, Segment::Header)
        && let Ok(header) = Header::from_object(&map)
    {
        // A header that passed must serialise and parse back to itself.
        let json = header.to_json();
        let again = Header::from_object(&parse_object(json.as_bytes(), Segment::Header).unwrap()).unwrap();
        assert_eq!(again, header);
    }
});
