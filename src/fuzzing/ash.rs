//! Fuzz entry points for the `ash` module.
