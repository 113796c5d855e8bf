//! `piimage::fuzz::fat` under libFuzzer (seeds: fuzz/corpus/fat/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = piimage::fuzz::fat(data);
});
