//! One handle for whichever driver the config names (`[coordinator] protocol`, and `[proxy]`
//! for an EZSP stick shared with an upstream stack), so the daemon holds a single type and the
//! OTA server sees only [`Coordinator`].

use tokio::sync::mpsc;

use super::ezsp::EzspCoordinator;
use super::latency::AnswerLatency;
use super::znp::ZnpCoordinator;
use super::{
    AnswerTiming, BroadcastMessage, Coordinator, CoordinatorConfig, CoordinatorEvent,
    CoordinatorFirmware, CoordinatorState, DeviceTable, MessageTag, NetworkInfo, SendError,
    UnicastMessage, ZclRequest,
};
use crate::proxy::{ProxyCoordinator, ProxySettings};

/// The coordinator protocols there are drivers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverKind {
    /// Silicon Labs EZSP over ASH.
    Ezsp,
    /// TI Z-Stack MT over UART.
    Znp,
    /// EZSP, with the stick shared with an upstream stack through the proxy.
    Proxy(ProxySettings),
}

/// A running driver of either kind.
#[derive(Debug)]
pub enum AnyCoordinator {
    /// EZSP.
    Ezsp(EzspCoordinator),
    /// ZNP.
    Znp(ZnpCoordinator),
    /// The EZSP proxy.
    Proxy(ProxyCoordinator),
}

impl AnyCoordinator {
    /// Starts the driver of `kind` on the current tokio runtime.
    pub fn start(
        kind: DriverKind,
        config: CoordinatorConfig,
    ) -> (Self, mpsc::Receiver<CoordinatorEvent>) {
        match kind {
            DriverKind::Ezsp => {
                let (driver, events) = EzspCoordinator::start(config);
                (AnyCoordinator::Ezsp(driver), events)
            }
            DriverKind::Znp => {
                let (driver, events) = ZnpCoordinator::start(config);
                (AnyCoordinator::Znp(driver), events)
            }
            DriverKind::Proxy(settings) => {
                let (driver, events) = ProxyCoordinator::start(config, settings);
                (AnyCoordinator::Proxy(driver), events)
            }
        }
    }

    /// Stops the driver and waits for its task.
    pub async fn shutdown(&self) {
        match self {
            AnyCoordinator::Ezsp(driver) => driver.shutdown().await,
            AnyCoordinator::Znp(driver) => driver.shutdown().await,
            AnyCoordinator::Proxy(driver) => driver.shutdown().await,
        }
    }

    fn inner(&self) -> &dyn Coordinator {
        match self {
            AnyCoordinator::Ezsp(driver) => driver,
            AnyCoordinator::Znp(driver) => driver,
            AnyCoordinator::Proxy(driver) => driver,
        }
    }
}

impl Coordinator for AnyCoordinator {
    fn send_unicast(&self, message: UnicastMessage) -> Result<MessageTag, SendError> {
        self.inner().send_unicast(message)
    }
    fn send_answer(
        &self,
        message: UnicastMessage,
        timing: AnswerTiming,
    ) -> Result<MessageTag, SendError> {
        self.inner().send_answer(message, timing)
    }
    fn send_zcl_request(&self, request: &ZclRequest) -> Result<MessageTag, SendError> {
        self.inner().send_zcl_request(request)
    }
    fn send_broadcast(&self, message: BroadcastMessage) -> Result<MessageTag, SendError> {
        self.inner().send_broadcast(message)
    }
    fn max_aps_payload(&self) -> Option<usize> {
        self.inner().max_aps_payload()
    }
    fn permit_joining(&self, seconds: u8) -> Result<(), SendError> {
        self.inner().permit_joining(seconds)
    }
    fn device_table(&self) -> DeviceTable {
        self.inner().device_table()
    }
    fn state(&self) -> CoordinatorState {
        self.inner().state()
    }
    fn network_info(&self) -> Option<NetworkInfo> {
        self.inner().network_info()
    }
    fn answer_latency(&self) -> Option<AnswerLatency> {
        self.inner().answer_latency()
    }
    fn firmware(&self) -> Option<CoordinatorFirmware> {
        match self {
            // The EZSP driver reports its protocol version in the network info.
            AnyCoordinator::Ezsp(driver) => Some(CoordinatorFirmware {
                protocol: "ezsp",
                version: driver
                    .network_info()
                    .map(|n| format!("EZSP v{}", n.protocol_version)),
            }),
            AnyCoordinator::Znp(driver) => driver.firmware(),
            AnyCoordinator::Proxy(driver) => driver.firmware(),
        }
    }
}
