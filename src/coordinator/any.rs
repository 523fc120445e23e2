//! One handle for whichever driver the config names (`[coordinator] protocol`, and `[proxy]`
//! for an EZSP stick shared with an upstream stack), so the daemon holds a single type and the
//! OTA server sees only [`Coordinator`](super::Coordinator).

use tokio::sync::mpsc;

use super::ezsp::EzspCoordinator;
use super::handle::{DriverHandle, RunsBehindHandle};
use super::znp::ZnpCoordinator;
use super::{CoordinatorConfig, CoordinatorEvent};
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
        self.driver_handle().shutdown().await;
    }
}

impl RunsBehindHandle for AnyCoordinator {
    fn driver_handle(&self) -> &DriverHandle {
        match self {
            AnyCoordinator::Ezsp(driver) => driver.driver_handle(),
            AnyCoordinator::Znp(driver) => driver.driver_handle(),
            AnyCoordinator::Proxy(driver) => driver.driver_handle(),
        }
    }
}
