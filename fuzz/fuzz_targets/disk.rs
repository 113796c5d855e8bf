//! `piimage::fuzz::disk_image` under libFuzzer (seeds: fuzz/corpus/disk/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = piimage::fuzz::disk_image(data);
});
