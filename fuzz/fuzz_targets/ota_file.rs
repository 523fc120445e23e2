#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = data; // wired to zigbee_otad::fuzzing when the module lands
});
