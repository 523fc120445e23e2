//! The host side of EZSP as a sans-IO state machine (UG100 §2 "Version negotiation",
//! §3 sequence numbers and callbacks): it numbers commands, keeps a bounded table of commands
//! waiting for their response, matches responses by sequence number, tells callbacks apart
//! and negotiates the protocol version. Time is always an argument.
//!
//! Negotiation: the host sends `version(desired)` in the legacy header; the NCP answers with
//! its own version. If that differs from the desired one, the host sends `version(ncp)` again
//! in the NCP's (extended) header and expects the same number back. Versions outside 13..=17
//! are refused.
//!
//! Callbacks: an NCP → host frame is a callback when its FC has the asynchronous-callback bit
//! (as herdsman decides) or its frame id is a callback's; any other NCP → host frame must
//! answer a pending command (as bellows decides, by sequence number).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use zigbee_otad::ezsp::{Event, Session, SessionConfig};
//! let now = Instant::now();
//! let mut session = Session::new(SessionConfig::default());
//! session.start(now);
//! assert_eq!(session.poll_transmit().unwrap(), [0x00, 0x00, 0x00, 13]);
//! // The NCP answers in the legacy header: protocol 13, stack type 2, stack 7.4.4.0.
//! session.handle_input(&[0x00, 0x80, 0x00, 13, 2, 0x40, 0x74], now).unwrap();
//! assert!(matches!(session.poll_event(), Some(Event::Negotiated { .. })));
//! assert_eq!(session.version().map(|v| v.get()), Some(13));
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::command::{Callback, Command, Response, VersionRequest, VersionResponse};
use super::frame::{FrameFormat, FrameHeader, FrameId};
use super::{DecodeError, EncodeError, EzspVersion, UnsupportedVersion};

/// Settings of a [`Session`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The version the host asks for first.
    pub desired_version: u8,
    /// How long a command may wait for its response.
    pub command_timeout: Duration,
    /// At most this many commands wait for responses at once (1..=255).
    pub max_pending: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            desired_version: EzspVersion::MIN,
            command_timeout: Duration::from_secs(5),
            max_pending: 8,
        }
    }
}

/// What the session reports to its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Negotiation finished: commands may be sent.
    Negotiated {
        /// The version both sides now speak.
        version: EzspVersion,
        /// The NCP's stack type.
        stack_type: u8,
        /// The NCP's stack version.
        stack_version: u16,
    },
    /// Negotiation failed; the session must be started again (after an NCP reset).
    NegotiationFailed(SessionError),
    /// The response to the command sent with `sequence`.
    Response {
        /// The command's sequence number.
        sequence: u8,
        /// The response (`Response::InvalidCommand` when the NCP refused the command).
        response: Response,
    },
    /// The answer to the command sent with `sequence` arrived but could not be decoded.
    ResponseUndecodable {
        /// The command's sequence number.
        sequence: u8,
        /// What was wrong.
        error: DecodeError,
    },
    /// An unsolicited callback.
    Callback(Callback),
    /// No response arrived in time for the command sent with `sequence`.
    TimedOut {
        /// The command's sequence number.
        sequence: u8,
        /// The command.
        frame_id: FrameId,
    },
    /// The command sent with `sequence` was abandoned because the session was reset.
    Aborted {
        /// The command's sequence number.
        sequence: u8,
        /// The command.
        frame_id: FrameId,
    },
}

/// Why the session refused a call or a frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Commands can only be sent once the version is negotiated.
    #[error("EZSP version not negotiated yet")]
    NotNegotiated,
    /// The pending-command table is full.
    #[error("{limit} EZSP commands are already waiting for responses")]
    TooManyPending {
        /// The configured limit.
        limit: usize,
    },
    /// The NCP speaks a version this host does not.
    #[error(transparent)]
    UnsupportedVersion(#[from] UnsupportedVersion),
    /// The NCP answered the re-sent `version` with another version.
    #[error("NCP reported EZSP v{first}, then v{second} when asked in its own format")]
    VersionChanged {
        /// The version in the legacy answer.
        first: u8,
        /// The version in the second answer.
        second: u8,
    },
    /// No answer to `version` in time.
    #[error("no answer to the EZSP version command")]
    VersionTimedOut,
    /// The command could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A frame could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A frame that fits no pending command and is no callback.
    #[error("unexpected EZSP frame {frame_id:?} with sequence {sequence}: {reason}")]
    UnexpectedFrame {
        /// Its sequence number.
        sequence: u8,
        /// Its frame id.
        frame_id: FrameId,
        /// Why it was not expected.
        reason: &'static str,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Negotiation {
    NotStarted,
    /// The legacy `version(desired)` is out.
    AwaitingLegacyAnswer,
    /// `version(ncp)` is out in the extended header.
    AwaitingNcpFormatAnswer {
        ncp_version: u8,
    },
    Done(EzspVersion),
    Failed,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    sequence: u8,
    frame_id: FrameId,
    deadline: Instant,
}

/// The host side of an EZSP connection; see the module docs.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    negotiation: Negotiation,
    next_sequence: u8,
    pending: Vec<Pending>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
}

impl Session {
    /// A session that has not started negotiating. `max_pending` is clamped to 1..=255.
    pub fn new(config: SessionConfig) -> Self {
        let max_pending = config.max_pending.clamp(1, 255);
        Session {
            config: SessionConfig {
                max_pending,
                ..config
            },
            negotiation: Negotiation::NotStarted,
            next_sequence: 0,
            pending: Vec::with_capacity(max_pending),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The negotiated version, once negotiation is done.
    pub fn version(&self) -> Option<EzspVersion> {
        match self.negotiation {
            Negotiation::Done(version) => Some(version),
            _ => None,
        }
    }

    /// Commands waiting for their response.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Starts (or restarts, after an NCP reset) negotiation: abandons pending commands and
    /// queues the legacy `version(desired)` frame.
    pub fn start(&mut self, now: Instant) {
        self.reset();
        let sequence = self.allocate_sequence();
        let mut frame = Vec::with_capacity(4);
        VersionRequest {
            desired_protocol_version: self.config.desired_version,
        }
        .encode_legacy_frame(sequence, &mut frame);
        self.queue(frame, sequence, FrameId::VERSION, now);
        self.negotiation = Negotiation::AwaitingLegacyAnswer;
    }

    /// Abandons every pending command (each gets [`Event::Aborted`]) and forgets the
    /// negotiated version, as after an NCP reset.
    pub fn reset(&mut self) {
        for pending in self.pending.drain(..) {
            self.events.push_back(Event::Aborted {
                sequence: pending.sequence,
                frame_id: pending.frame_id,
            });
        }
        self.transmit.clear();
        self.negotiation = Negotiation::NotStarted;
        self.next_sequence = 0;
    }

    /// Queues `command` and returns its sequence number.
    pub fn send(&mut self, command: &Command, now: Instant) -> Result<u8, SessionError> {
        let Negotiation::Done(version) = self.negotiation else {
            return Err(SessionError::NotNegotiated);
        };
        if self.pending.len() >= self.config.max_pending {
            return Err(SessionError::TooManyPending {
                limit: self.config.max_pending,
            });
        }
        let sequence = self.allocate_sequence();
        let mut frame = Vec::new();
        command.encode_frame(version, sequence, &mut frame)?;
        self.queue(frame, sequence, command.frame_id(), now);
        Ok(sequence)
    }

    /// Handles one EZSP frame from the NCP (the payload of an ASH DATA frame).
    pub fn handle_input(&mut self, frame: &[u8], now: Instant) -> Result<(), SessionError> {
        match self.negotiation {
            Negotiation::NotStarted | Negotiation::Failed => Err(SessionError::UnexpectedFrame {
                sequence: frame.first().copied().unwrap_or_default(),
                frame_id: FrameId::VERSION,
                reason: "the session is not negotiating or negotiated",
            }),
            Negotiation::AwaitingLegacyAnswer => {
                let answer = self.version_answer(FrameFormat::Legacy, frame)?;
                self.on_legacy_version_answer(answer, now)
            }
            Negotiation::AwaitingNcpFormatAnswer { ncp_version } => {
                let answer = self.version_answer(FrameFormat::Extended, frame)?;
                if answer.protocol_version == ncp_version {
                    self.finish_negotiation(ncp_version, answer)
                } else {
                    self.fail_negotiation(SessionError::VersionChanged {
                        first: ncp_version,
                        second: answer.protocol_version,
                    });
                    Ok(())
                }
            }
            Negotiation::Done(version) => self.handle_negotiated(version, frame),
        }
    }

    /// Expires commands whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut index = 0;
        while let Some(pending) = self.pending.get(index).copied() {
            if pending.deadline > now {
                index += 1;
                continue;
            }
            self.pending.swap_remove(index);
            if matches!(
                self.negotiation,
                Negotiation::AwaitingLegacyAnswer | Negotiation::AwaitingNcpFormatAnswer { .. }
            ) {
                self.fail_negotiation(SessionError::VersionTimedOut);
            } else {
                self.events.push_back(Event::TimedOut {
                    sequence: pending.sequence,
                    frame_id: pending.frame_id,
                });
            }
        }
    }

    /// The earliest deadline of a pending command.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// The next frame to hand to ASH.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn allocate_sequence(&mut self) -> u8 {
        // With at most 255 commands pending, one of 256 numbers is always free.
        loop {
            let candidate = self.next_sequence;
            self.next_sequence = self.next_sequence.wrapping_add(1);
            if !self.pending.iter().any(|p| p.sequence == candidate) {
                return candidate;
            }
        }
    }

    fn queue(&mut self, frame: Vec<u8>, sequence: u8, frame_id: FrameId, now: Instant) {
        self.transmit.push_back(frame);
        self.pending.push(Pending {
            sequence,
            frame_id,
            deadline: now + self.config.command_timeout,
        });
    }

    fn take_pending(&mut self, sequence: u8) -> Option<Pending> {
        let index = self.pending.iter().position(|p| p.sequence == sequence)?;
        Some(self.pending.swap_remove(index))
    }

    /// Decodes the answer to the outstanding `version` command in `format`.
    fn version_answer(
        &mut self,
        format: FrameFormat,
        frame: &[u8],
    ) -> Result<VersionResponse, SessionError> {
        let (header, parameters) = FrameHeader::decode(format, frame)?;
        let matches_pending = self
            .pending
            .iter()
            .any(|p| p.sequence == header.sequence && p.frame_id == FrameId::VERSION);
        if !header.control.is_response() || header.frame_id != FrameId::VERSION || !matches_pending
        {
            return Err(SessionError::UnexpectedFrame {
                sequence: header.sequence,
                frame_id: header.frame_id,
                reason: "expected the answer to the version command",
            });
        }
        self.take_pending(header.sequence);
        // The version response has the same layout in every protocol version.
        match VersionResponse::decode(EzspVersion::V13, parameters) {
            Ok(answer) => Ok(answer),
            Err(error) => {
                self.fail_negotiation(SessionError::Decode(error.clone()));
                Err(SessionError::Decode(error))
            }
        }
    }

    fn on_legacy_version_answer(
        &mut self,
        answer: VersionResponse,
        now: Instant,
    ) -> Result<(), SessionError> {
        let ncp_version = answer.protocol_version;
        if let Err(unsupported) = EzspVersion::new(ncp_version) {
            self.fail_negotiation(unsupported.into());
            return Ok(());
        }
        if ncp_version == self.config.desired_version {
            return self.finish_negotiation(ncp_version, answer);
        }
        let sequence = self.allocate_sequence();
        let mut frame = Vec::new();
        let version = EzspVersion::new(ncp_version)?;
        Command::Version(VersionRequest {
            desired_protocol_version: ncp_version,
        })
        .encode_frame(version, sequence, &mut frame)?;
        self.queue(frame, sequence, FrameId::VERSION, now);
        self.negotiation = Negotiation::AwaitingNcpFormatAnswer { ncp_version };
        Ok(())
    }

    fn finish_negotiation(
        &mut self,
        ncp_version: u8,
        answer: VersionResponse,
    ) -> Result<(), SessionError> {
        let version = EzspVersion::new(ncp_version)?;
        self.negotiation = Negotiation::Done(version);
        self.events.push_back(Event::Negotiated {
            version,
            stack_type: answer.stack_type,
            stack_version: answer.stack_version,
        });
        Ok(())
    }

    fn fail_negotiation(&mut self, error: SessionError) {
        self.negotiation = Negotiation::Failed;
        self.pending.clear();
        self.events.push_back(Event::NegotiationFailed(error));
    }

    fn handle_negotiated(
        &mut self,
        version: EzspVersion,
        frame: &[u8],
    ) -> Result<(), SessionError> {
        let (header, parameters) = FrameHeader::decode(FrameFormat::Extended, frame)?;
        let offset = FrameFormat::Extended.header_len();
        if !header.control.is_response() {
            return Err(SessionError::UnexpectedFrame {
                sequence: header.sequence,
                frame_id: header.frame_id,
                reason: "the NCP sent a frame in the host-to-NCP direction",
            });
        }
        if header.control.is_async_callback() || header.frame_id.is_callback() {
            let callback =
                Callback::decode_parameters(version, header.frame_id, parameters, offset)?;
            self.events.push_back(Event::Callback(callback));
            return Ok(());
        }
        let answers_pending = self.pending.iter().any(|p| {
            p.sequence == header.sequence
                && (p.frame_id == header.frame_id || header.frame_id == FrameId::INVALID_COMMAND)
        });
        if !answers_pending {
            return Err(SessionError::UnexpectedFrame {
                sequence: header.sequence,
                frame_id: header.frame_id,
                reason: "no pending command has this sequence number and frame id",
            });
        }
        self.take_pending(header.sequence);
        let event = match Response::decode_parameters(version, header.frame_id, parameters, offset)
        {
            Ok(response) => Event::Response {
                sequence: header.sequence,
                response,
            },
            Err(error) => Event::ResponseUndecodable {
                sequence: header.sequence,
                error,
            },
        };
        self.events.push_back(event);
        Ok(())
    }
}
