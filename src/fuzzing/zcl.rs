//! Fuzz entry points for the `zcl` module.
