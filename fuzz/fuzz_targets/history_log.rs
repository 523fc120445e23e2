#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    zigbee_otad::fuzzing::daemon::history_log(data);
});
