//! Arbitrary bytes as a channel header: `Header::decode` returns `Ok` or a
//! typed error and never panics; an accepted header re-encodes to exactly
//! the bytes it was decoded from.
#![no_main]

use kekbit_nostd::format::IMMUTABLE_HEADER_LEN;
use kekbit_nostd::{Header, HeaderError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Header::decode(data) {
        Ok(header) => {
            assert_eq!(
                &header.encode()[..],
                &data[..IMMUTABLE_HEADER_LEN],
                "re-encoding an accepted header changed its bytes"
            );
            // Whatever region length follows, the check is an answer, not a panic.
            let _ = header.check_region(data.len());
            let _ = header.check_region(usize::MAX);
        }
        Err(HeaderError::Truncated { len, needed }) => {
            assert_eq!(len, data.len());
            assert!(len < needed);
        }
        Err(e) => {
            assert!(data.len() >= IMMUTABLE_HEADER_LEN, "{e}");
            // Every error renders.
            let _ = format!("{e}");
        }
    }
});
