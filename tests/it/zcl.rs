//! Integration tests for the `zcl` module.
