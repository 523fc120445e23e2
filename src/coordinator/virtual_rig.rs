//! Test rigs on a virtual clock (STYLE.md, "Testing serial code without hardware"): the sans-IO
//! EZSP host and the proxy's relay are wired to simulated sticks and devices, every core is
//! stepped until nothing moves, then the clock jumps to the next deadline. The rigs differ in
//! what they wire; how they run is written once here.

use std::time::{Duration, Instant};

/// A set of sans-IO cores wired together and driven by one virtual clock.
pub(crate) trait VirtualRig: Sized {
    /// The virtual time.
    fn now(&self) -> Instant;

    /// Moves everything that can move at [`VirtualRig::now`]; true when something did.
    fn step(&mut self) -> bool;

    /// Advances the clock to the earliest deadline of anyone, at most to `limit`, and fires
    /// it; false when no deadline comes before `limit` (the clock is then at `limit`).
    fn advance(&mut self, limit: Instant) -> bool;

    /// Runs until `done` or `within` of virtual time has passed; true when done.
    fn run_until(&mut self, within: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let limit = self.now() + within;
        let mut steps = 0u32;
        loop {
            while self.step() {
                steps += 1;
                assert!(steps < 5_000_000, "livelock");
            }
            if done(self) {
                return true;
            }
            if !self.advance(limit) {
                return done(self);
            }
        }
    }

    /// Runs for `duration` of virtual time.
    fn run_for(&mut self, duration: Duration) {
        self.run_until(duration, |_| false);
    }
}
