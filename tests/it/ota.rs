//! Integration tests for the `ota` module.
