//! Placeholder: the OTA parse benchmark lands with the ota module.
fn main() {}
