//! Which devices' claims may start image downloads (issue 18, "Downloads").
//!
//! A Query Next Image Request (ZCL8 §11.13.4) names a manufacturer code, an image type and a
//! version, and any node holding the network key can send one from any address. Downloads
//! cost the source's quota (LEDVANCE: a monthly budget) and cache space, so a claim starts a
//! download only when
//!
//! * its device is **confirmed**: the trust centre saw it join, it announced itself (ZDO
//!   Device_annce, checked against the sender by the device table), or its Basic-cluster
//!   identity read completed ([`crate::identity::IdentityReader::is_read`]); and
//! * it is not a **new claim beyond the hourly budget**: at most
//!   [`ClaimGate::new`]`(max_new_per_hour)` claims never admitted before are admitted in any
//!   hour. A claim admitted once stays admitted (bounded to [`MAX_ADMITTED`]).
//!
//! Sans-IO: each heard device's IEEE address and claim, a confirmation predicate and `now`
//! in; the admitted claims out.
//!
//! ```
//! use std::time::Instant;
//! use zigbee_otad::catalog::claims::ClaimGate;
//! use zigbee_otad::catalog::service::KnownDevice;
//! use zigbee_otad::zcl::Ieee;
//!
//! let mut gate = ClaimGate::new(1, Vec::new());
//! let status = |ieee: u64, image_type: u16| (Ieee(ieee), KnownDevice {
//!     manufacturer_code: 0x1189, image_type, current_file_version: 1, ..KnownDevice::default()
//! });
//! # #[allow(clippy::disallowed_methods)]
//! let now = Instant::now();
//! gate.confirm(Ieee(1));
//! let heard = [status(1, 0x19), status(2, 0x20)];
//! // Device 2 never joined or announced: its claim waits.
//! let admitted = gate.admit(&heard, |_| false, now);
//! assert_eq!(admitted.len(), 1);
//! assert_eq!(gate.wanted_count(&heard, |_| false, now), 1);
//! ```

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::service::KnownDevice;
use crate::zcl::Ieee;

/// New claims admitted per hour unless configured otherwise.
pub const DEFAULT_NEW_CLAIMS_PER_HOUR: usize = 20;
/// Most claims remembered as admitted (the known-devices file keeps as many).
pub const MAX_ADMITTED: usize = 4096;
/// Most devices remembered as confirmed by a join or an announce.
pub const MAX_CONFIRMED: usize = 4096;
const HOUR: Duration = Duration::from_secs(3600);

/// Decides which claims may start downloads. See the module docs.
#[derive(Debug, Clone)]
pub struct ClaimGate {
    max_new_per_hour: usize,
    admitted: BTreeSet<KnownDevice>,
    /// When each of the last hour's new claims was admitted (oldest first).
    recent: VecDeque<Instant>,
    joined: HashSet<Ieee>,
    joined_order: VecDeque<Ieee>,
    refused: usize,
}

impl ClaimGate {
    /// A gate admitting at most `max_new_per_hour` new claims an hour; `already_admitted` are
    /// the claims admitted before (the known-devices file of an earlier run).
    pub fn new(max_new_per_hour: usize, already_admitted: Vec<KnownDevice>) -> Self {
        ClaimGate {
            max_new_per_hour,
            admitted: already_admitted.into_iter().take(MAX_ADMITTED).collect(),
            recent: VecDeque::new(),
            joined: HashSet::new(),
            joined_order: VecDeque::new(),
            refused: 0,
        }
    }

    /// The trust centre saw `ieee` join, or it announced itself.
    pub fn confirm(&mut self, ieee: Ieee) {
        if !self.joined.insert(ieee) {
            return;
        }
        self.joined_order.push_back(ieee);
        if self.joined_order.len() > MAX_CONFIRMED
            && let Some(oldest) = self.joined_order.pop_front()
        {
            self.joined.remove(&oldest);
        }
    }

    /// True when `ieee` joined or announced itself (identity reads are asked of `read`).
    pub fn joined(&self, ieee: Ieee) -> bool {
        self.joined.contains(&ieee)
    }

    /// The claims a fetch would download for now: those admitted, plus the new confirmed ones
    /// the hour's budget has room for. It grows when a fetch would download something new.
    pub fn wanted_count(
        &mut self,
        heard: &[(Ieee, KnownDevice)],
        identity_read: impl Fn(Ieee) -> bool,
        now: Instant,
    ) -> usize {
        self.forget_before(now);
        let new: BTreeSet<KnownDevice> = self
            .confirmed_claims(heard, &identity_read)
            .filter(|claim| !self.admitted.contains(claim))
            .collect();
        let room = self.max_new_per_hour.saturating_sub(self.recent.len());
        self.admitted.len() + new.len().min(room)
    }

    /// Admits what may be admitted now and returns every admitted claim (earlier ones
    /// included, sorted): what the catalog service downloads for.
    pub fn admit(
        &mut self,
        heard: &[(Ieee, KnownDevice)],
        identity_read: impl Fn(Ieee) -> bool,
        now: Instant,
    ) -> Vec<KnownDevice> {
        self.forget_before(now);
        let claims: BTreeSet<KnownDevice> = self.confirmed_claims(heard, &identity_read).collect();
        for claim in claims {
            if self.admitted.contains(&claim) {
                continue;
            }
            if self.recent.len() >= self.max_new_per_hour || self.admitted.len() >= MAX_ADMITTED {
                self.refused = self.refused.saturating_add(1);
                continue;
            }
            self.recent.push_back(now);
            self.admitted.insert(claim);
        }
        self.admitted.iter().cloned().collect()
    }

    /// New claims turned away by the hourly budget so far (for status and logs).
    pub fn refused(&self) -> usize {
        self.refused
    }

    fn confirmed_claims<'a>(
        &'a self,
        heard: &'a [(Ieee, KnownDevice)],
        identity_read: &'a impl Fn(Ieee) -> bool,
    ) -> impl Iterator<Item = KnownDevice> + 'a {
        heard
            .iter()
            .filter(move |(ieee, _)| self.joined(*ieee) || identity_read(*ieee))
            .map(|(_, claim)| claim.clone())
    }

    fn forget_before(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= HOUR)
        {
            self.recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(ieee: u64, image_type: u16) -> (Ieee, KnownDevice) {
        let claim = KnownDevice {
            manufacturer_code: 0x1189,
            image_type,
            current_file_version: 1,
            ..KnownDevice::default()
        };
        (Ieee(ieee), claim)
    }

    #[allow(clippy::disallowed_methods)]
    fn now() -> Instant {
        Instant::now()
    }

    #[test]
    fn only_confirmed_devices_claims_are_admitted() {
        let mut gate = ClaimGate::new(10, Vec::new());
        let t = now();
        let heard = [status(1, 1), status(2, 2), status(3, 3)];
        assert!(gate.admit(&heard, |_| false, t).is_empty());
        assert_eq!(gate.wanted_count(&heard, |_| false, t), 0);
        gate.confirm(Ieee(1));
        assert_eq!(gate.wanted_count(&heard, |ieee| ieee == Ieee(3), t), 2);
        let admitted = gate.admit(&heard, |ieee| ieee == Ieee(3), t);
        let types: Vec<u16> = admitted.iter().map(|d| d.image_type).collect();
        assert_eq!(types, vec![1, 3]);
    }

    #[test]
    fn new_claims_are_capped_per_hour_and_admitted_ones_stay() {
        let mut gate = ClaimGate::new(2, Vec::new());
        let t = now();
        let heard: Vec<(Ieee, KnownDevice)> = (1..=5).map(|n| status(n, n as u16)).collect();
        assert_eq!(gate.admit(&heard, |_| true, t).len(), 2);
        assert_eq!(gate.refused(), 3);
        let almost = t + Duration::from_secs(3599);
        assert_eq!(
            gate.wanted_count(&heard, |_| true, almost),
            2,
            "no room this hour"
        );
        // An hour later two more.
        let later = t + HOUR;
        assert_eq!(gate.wanted_count(&heard, |_| true, later), 4);
        assert_eq!(gate.admit(&heard, |_| true, later).len(), 4);
        // The admitted ones stay even when their devices are gone.
        assert_eq!(gate.admit(&[], |_| true, later).len(), 4);
    }

    #[test]
    fn claims_from_an_earlier_run_are_admitted_without_cost() {
        let earlier = vec![status(1, 1).1];
        let mut gate = ClaimGate::new(1, earlier);
        let t = now();
        let heard = [status(1, 1), status(2, 2)];
        assert_eq!(gate.admit(&heard, |_| true, t).len(), 2);
        assert_eq!(gate.refused(), 0);
    }

    #[test]
    fn confirmed_devices_are_bounded() {
        let mut gate = ClaimGate::new(1, Vec::new());
        for n in 0..(MAX_CONFIRMED as u64 + 10) {
            gate.confirm(Ieee(n));
        }
        assert!(!gate.joined(Ieee(0)));
        assert!(gate.joined(Ieee(MAX_CONFIRMED as u64 + 9)));
        assert_eq!(gate.joined.len(), MAX_CONFIRMED);
    }
}
