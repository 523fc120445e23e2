//! The zigbee-otad command line (ARCHITECTURE.md, "Command line").
fn main() {}
