//! Simulated EZSP coordinator and OTA client devices (in progress).
