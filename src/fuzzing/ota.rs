//! Fuzz entry points for the `ota` module.
