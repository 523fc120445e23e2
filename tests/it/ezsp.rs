//! Integration tests for the `ezsp` module.
