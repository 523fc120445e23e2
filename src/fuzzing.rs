//! Fuzzing entry points: each runs one decoder on arbitrary bytes and checks its invariants.
