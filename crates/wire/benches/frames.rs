//! Criterion benchmarks: placeholder until the frames work lands.
fn main() {}
