//! Device addresses and frame destinations of the OTA server (ZCL8 §11.13: a device is known by
//! its network address, its IEEE address when the coordinator knows it, and its OTA client
//! endpoint; Image Notify may be broadcast, §11.13.3).

use std::fmt;

use bytes::Bytes;

use super::Ieee;

/// A device as the coordinator saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceAddr {
    /// Network (short) address.
    pub nwk: u16,
    /// IEEE address, when the coordinator knows it.
    pub ieee: Option<Ieee>,
    /// The device's OTA client endpoint.
    pub endpoint: u8,
}

impl fmt::Display for DeviceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ieee {
            Some(ieee) => write!(f, "{ieee} (0x{:04x})", self.nwk),
            None => write!(f, "0x{:04x}", self.nwk),
        }
    }
}

/// How sessions are keyed: by IEEE address when known (it survives a rejoin with a new
/// network address), else by network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKey {
    /// By IEEE address.
    Ieee(Ieee),
    /// By network address.
    Nwk(u16),
}

impl DeviceAddr {
    /// The session key for this device.
    pub fn key(&self) -> DeviceKey {
        match self.ieee {
            Some(ieee) => DeviceKey::Ieee(ieee),
            None => DeviceKey::Nwk(self.nwk),
        }
    }
}

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    /// One device.
    Unicast(DeviceAddr),
    /// A broadcast address (0xFFFF, 0xFFFD, ...), to endpoint 0xFF.
    Broadcast(u16),
}

/// A frame for the coordinator to send: cluster 0x0019 ([`crate::zcl::ota::CLUSTER_ID`]), from
/// [`ServerConfig::endpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Where to.
    pub destination: Destination,
    /// Source endpoint (ours).
    pub source_endpoint: u8,
    /// Destination endpoint (the device's, or 0xFF for a broadcast).
    pub destination_endpoint: u8,
    /// The ZCL frame (header + payload).
    pub zcl_bytes: Bytes,
}

/// Whom an Image Notify goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyTarget {
    /// One device (unicast, query jitter 100: it should query now).
    Device(DeviceAddr),
    /// Every device (broadcast, query jitter scaled to the number of known devices).
    Broadcast,
}
