//! `piimage::fuzz::ext4` under libFuzzer (seeds: fuzz/corpus/ext4/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = piimage::fuzz::ext4(data);
});
