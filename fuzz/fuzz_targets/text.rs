//! `piimage::fuzz::text_editors` under libFuzzer (seeds: fuzz/corpus/text/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = piimage::fuzz::text_editors(data);
});
