//! Integration tests for the `ash` module.
