//! What the [`EzspHost`](super::EzspHost) is configured with and what it reports: its settings,
//! its events, and the errors of its verbs.

use std::time::Duration;

use crate::ash::LinkConfig;
use crate::coordinator::serial::Backoff;
use crate::coordinator::{
    CoordinatorState, DeliveryOutcome, Ieee, IncomingMessage, MessageTag, Nwk,
};
use crate::ezsp::command::{Callback, Response};
use crate::ezsp::{SessionConfig, SessionError};

/// Settings of an [`EzspHost`].
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Our endpoint, registered with the OTA Upgrade cluster as an input (server) cluster.
    pub endpoint: u8,
    /// ASH link parameters (window, timers).
    pub link: LinkConfig,
    /// EZSP session parameters (version asked for first, command timeout, pending limit).
    pub session: SessionConfig,
    /// How long to wait for `NETWORK_UP` after `networkInit` or `formNetwork`.
    pub network_up_timeout: Duration,
    /// After this long without a frame from the NCP, a `nop` checks that it is still there and
    /// still negotiated (an NCP whose unsolicited RSTACK was lost answers `invalidCommand`).
    pub keepalive_interval: Duration,
    /// How long a send may wait for its `messageSentHandler` before it is reported timed out.
    pub delivery_timeout: Duration,
    /// Delay before asking for a vanished port again or restarting a reset NCP.
    pub backoff: Backoff,
}

impl HostConfig {
    /// Real-stick defaults for `endpoint` (the driver's [`super::EzspTuning::default`] holds
    /// them).
    pub fn new(endpoint: u8) -> Self {
        HostConfig {
            endpoint,
            link: LinkConfig::host(),
            session: SessionConfig::default(),
            network_up_timeout: Duration::from_secs(15),
            keepalive_interval: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
        }
    }
}

/// Why the host left the port or restarted the NCP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Trouble {
    /// The driver lost the port (read end of file, an I/O error, open failed).
    #[error("serial port gone: {0}")]
    PortGone(String),
    /// An unsolicited RSTACK, or a keepalive answered `invalidCommand`.
    #[error("NCP reset by itself ({0})")]
    NcpReset(String),
    /// The NCP sent an ASH ERROR frame.
    #[error("NCP reported ASH error {0}")]
    NcpError(String),
    /// ACK timeouts, no RSTACK, or an unanswered keepalive.
    #[error("ASH link failed: {0}")]
    LinkFailed(String),
    /// A start-up step failed.
    #[error("start-up failed: {0}")]
    Startup(String),
}

/// Names one [`EzspHost::submit`] request, for its [`HostEvent::Response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Why a submitted request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestFailed {
    /// The NCP did not answer within the command timeout.
    #[error("no response within the EZSP command timeout")]
    NoResponse,
    /// The NCP answered with a frame that could not be decoded.
    #[error("the response could not be decoded")]
    Undecodable,
    /// The NCP reset or the port went before the answer came.
    #[error("the link was lost before the response")]
    LinkLost,
}

/// Why [`EzspHost::submit`] refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// Start-up has not finished (or the link is down).
    #[error("the host is not up (state {0:?})")]
    NotUp(CoordinatorState),
    /// The session refused it (pending limit, encoding).
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// One latency measurement of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencySample {
    /// From reading the request to the answer being ready (the OTA server's part).
    Host(Duration),
    /// From reading the request to writing the answer's first byte out.
    SerialInToOut(Duration),
}

/// What the host reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostEvent {
    /// The coordinator state changed.
    StateChanged(CoordinatorState),
    /// A device sent us an APS message.
    Incoming(IncomingMessage),
    /// How a send ended: exactly one per [`MessageTag`] handed to the host.
    Delivery {
        /// The send's tag.
        tag: MessageTag,
        /// How it ended.
        outcome: DeliveryOutcome,
    },
    /// A device joined or announced itself.
    DeviceJoined {
        /// Network address.
        nwk: Nwk,
        /// IEEE address.
        ieee: Ieee,
    },
    /// The device table changed (save it: [`EzspHost::devices`]).
    DeviceTableChanged,
    /// Open the port (again), then call [`EzspHost::port_opened`] or [`EzspHost::port_lost`].
    OpenPort,
    /// The NCP holds no network: call [`EzspHost::network_settings`] with the network to form.
    NetworkSettingsNeeded,
    /// The answer to a [`EzspHost::submit`] request.
    Response {
        /// The request.
        request: RequestId,
        /// Its response, or why there is none.
        outcome: Result<Response, RequestFailed>,
    },
    /// A callback the host does not consume itself (see the module docs).
    Callback(Callback),
    /// A latency measurement of an answer.
    AnswerLatency(LatencySample),
}
