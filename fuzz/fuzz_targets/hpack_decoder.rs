#![no_main]
// Placeholder: filled in by the hpack_decoder work.
use libfuzzer_sys::fuzz_target;
fuzz_target!(|data: &[u8]| { let _ = data; });
