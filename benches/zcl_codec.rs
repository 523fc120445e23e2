//! Placeholder: lands with its module.
fn main() {}
