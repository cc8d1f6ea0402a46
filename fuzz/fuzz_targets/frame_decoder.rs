#![no_main]
// Placeholder: filled in by the frame_decoder work.
use libfuzzer_sys::fuzz_target;
fuzz_target!(|data: &[u8]| { let _ = data; });
