//! Fuzz entry points for the `ezsp` module.
