//! Criterion benchmarks: placeholder until the hpack work lands.
fn main() {}
