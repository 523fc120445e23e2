#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| zigbee_otad::fuzzing::ezsp_host::fuzz_host(data));
