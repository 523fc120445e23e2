#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| zigbee_otad::fuzzing::proxy::fuzz_upstream(data));
