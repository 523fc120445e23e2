//! The host side of EZSP as a sans-IO state machine (UG100 §2 "Version negotiation",
//! §3 sequence numbers and callbacks): it numbers commands, keeps a bounded table of commands
//! waiting for their response, matches responses by sequence number, tells callbacks apart
//! and negotiates the protocol version. Time is always an argument.
//!
//! Negotiation: the host sends `version(desired)` in the legacy header; the NCP answers with
//! its own version. If that differs from the desired one, the host sends `version(ncp)` again
//! in the NCP's (extended) header and expects the same number back. Versions outside 8..=17
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
            // Asked first; an older or newer NCP answers its own and the host follows it.
            desired_version: EzspVersion::V13.get(),
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
    /// The NCP flagged, in the frame control of the frame with `sequence`, that it ran out of
    /// memory since its last response (`overflow`) or cut this frame short (`truncated`).
    /// Reported before the frame's own event.
    NcpFrameFlags {
        /// Sequence number of the flagged frame.
        sequence: u8,
        /// FC bit 0: the NCP dropped something for lack of memory.
        overflow: bool,
        /// FC bit 1: the NCP truncated this frame.
        truncated: bool,
    },
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
    /// The frame table says the command does not exist in the negotiated version.
    #[error("EZSP frame {frame_id:?} does not exist in v{version}")]
    NotInVersion {
        /// The command's frame id.
        frame_id: FrameId,
        /// The negotiated version.
        version: u8,
    },
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
        let frame_id = command.frame_id();
        if let Some(versions) = super::command::frame_versions(frame_id)
            && !versions.contains(&version.get())
        {
            return Err(SessionError::NotInVersion {
                frame_id,
                version: version.get(),
            });
        }
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
        if header.control.is_overflow() || header.control.is_truncated() {
            self.events.push_back(Event::NcpFrameFlags {
                sequence: header.sequence,
                overflow: header.control.is_overflow(),
                truncated: header.control.is_truncated(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ezsp::command::{Body, Frame, SendResponse};
    use crate::ezsp::status::{EmberStatus, EzspStatus, SlStatus, Status};
    use crate::ezsp::types::Nwk;

    /// A fixed starting point; the session only ever compares and adds to it.
    fn start_time() -> Instant {
        #[allow(clippy::disallowed_methods)] // tests need some Instant to start from
        Instant::now()
    }

    fn version_answer_legacy(sequence: u8, protocol_version: u8) -> Vec<u8> {
        let mut out = Vec::new();
        VersionResponse {
            protocol_version,
            stack_type: 2,
            stack_version: 0x8020,
        }
        .encode_legacy_frame(sequence, &mut out);
        out
    }

    fn negotiated(version: u8) -> (Session, Instant) {
        let now = start_time();
        let mut session = Session::new(SessionConfig {
            desired_version: version,
            ..SessionConfig::default()
        });
        session.start(now);
        let request = session.poll_transmit().unwrap();
        session
            .handle_input(&version_answer_legacy(request[0], version), now)
            .unwrap();
        assert!(matches!(
            session.poll_event(),
            Some(Event::Negotiated { .. })
        ));
        (session, now)
    }

    /// Plays the NCP: decodes the host's command frame and answers it.
    fn answer(session: &mut Session, version: EzspVersion, response: Response, now: Instant) -> u8 {
        let request = session.poll_transmit().unwrap();
        let command = Frame::decode(version, &request).unwrap();
        assert!(matches!(command.body, Body::Command(_)));
        let mut out = Vec::new();
        response
            .encode_frame(version, command.header.sequence, &mut out)
            .unwrap();
        session.handle_input(&out, now).unwrap();
        command.header.sequence
    }

    #[test]
    fn negotiation_resends_version_in_the_ncp_format() {
        let now = start_time();
        let mut session = Session::new(SessionConfig::default());
        session.start(now);
        assert_eq!(session.poll_transmit().unwrap(), [0x00, 0x00, 0x00, 13]);
        // A v14 NCP answers the legacy request in the legacy header.
        session
            .handle_input(&version_answer_legacy(0, 14), now)
            .unwrap();
        assert_eq!(session.version(), None);
        // The host asks again, in the extended header: seq 1, FC 00 01, id 0000, 14.
        assert_eq!(
            session.poll_transmit().unwrap(),
            [0x01, 0x00, 0x01, 0x00, 0x00, 14]
        );
        let mut out = Vec::new();
        Response::Version(VersionResponse {
            protocol_version: 14,
            stack_type: 2,
            stack_version: 0x8020,
        })
        .encode_frame(EzspVersion::V14, 1, &mut out)
        .unwrap();
        session.handle_input(&out, now).unwrap();
        assert_eq!(
            session.poll_event(),
            Some(Event::Negotiated {
                version: EzspVersion::V14,
                stack_type: 2,
                stack_version: 0x8020
            })
        );
        assert_eq!(session.pending_count(), 0);
    }

    #[test]
    fn negotiation_refuses_versions_outside_8_to_17() {
        for ncp in [4, 6, 7, 18, 19] {
            let now = start_time();
            let mut session = Session::new(SessionConfig::default());
            session.start(now);
            session.poll_transmit();
            session
                .handle_input(&version_answer_legacy(0, ncp), now)
                .unwrap();
            let Some(Event::NegotiationFailed(error)) = session.poll_event() else {
                panic!("v{ncp} was not refused");
            };
            assert_eq!(
                error.to_string(),
                format!(
                    "EZSP protocol version {ncp} is not supported (this host speaks versions 8 to 17)"
                )
            );
            assert!(session.poll_transmit().is_none(), "nothing more is sent");
            assert_eq!(
                session.send(&Command::Nop, now),
                Err(SessionError::NotNegotiated)
            );
        }
    }

    #[test]
    fn negotiation_fails_when_the_ncp_changes_its_mind() {
        let now = start_time();
        let mut session = Session::new(SessionConfig::default());
        session.start(now);
        session.poll_transmit();
        session
            .handle_input(&version_answer_legacy(0, 16), now)
            .unwrap();
        session.poll_transmit();
        let mut out = Vec::new();
        Response::Version(VersionResponse {
            protocol_version: 17,
            stack_type: 2,
            stack_version: 0,
        })
        .encode_frame(EzspVersion::V16, 1, &mut out)
        .unwrap();
        session.handle_input(&out, now).unwrap();
        assert_eq!(
            session.poll_event(),
            Some(Event::NegotiationFailed(SessionError::VersionChanged {
                first: 16,
                second: 17
            }))
        );
    }

    #[test]
    fn negotiation_times_out() {
        let now = start_time();
        let mut session = Session::new(SessionConfig::default());
        session.start(now);
        let deadline = session.poll_timeout().unwrap();
        assert_eq!(deadline, now + Duration::from_secs(5));
        session.handle_timeout(deadline - Duration::from_millis(1));
        assert!(session.poll_event().is_none());
        session.handle_timeout(deadline);
        assert_eq!(
            session.poll_event(),
            Some(Event::NegotiationFailed(SessionError::VersionTimedOut))
        );
        assert_eq!(session.poll_timeout(), None);
    }

    #[test]
    fn responses_are_matched_by_sequence_number() {
        let (mut session, now) = negotiated(13);
        let first = session.send(&Command::GetNodeId, now).unwrap();
        let second = session.send(&Command::NetworkState, now).unwrap();
        assert_ne!(first, second);
        let first_frame = session.poll_transmit().unwrap();
        let second_frame = session.poll_transmit().unwrap();
        // Answer the second command first.
        for (frame, response) in [
            (
                second_frame,
                Response::NetworkState {
                    status: crate::ezsp::types::NetworkStatus::JOINED_NETWORK,
                },
            ),
            (first_frame, Response::GetNodeId { node_id: Nwk(0) }),
        ] {
            let mut out = Vec::new();
            response
                .encode_frame(EzspVersion::V13, frame[0], &mut out)
                .unwrap();
            session.handle_input(&out, now).unwrap();
        }
        assert!(matches!(
            session.poll_event(),
            Some(Event::Response { sequence, response: Response::NetworkState { .. } }) if sequence == second
        ));
        assert!(matches!(
            session.poll_event(),
            Some(Event::Response { sequence, response: Response::GetNodeId { .. } }) if sequence == first
        ));
        assert_eq!(session.pending_count(), 0);
    }

    #[test]
    fn a_response_nobody_waits_for_is_an_error() {
        let (mut session, now) = negotiated(14);
        let mut out = Vec::new();
        Response::GetNodeId { node_id: Nwk(0) }
            .encode_frame(EzspVersion::V14, 42, &mut out)
            .unwrap();
        let err = session.handle_input(&out, now).unwrap_err();
        assert!(matches!(
            err,
            SessionError::UnexpectedFrame { sequence: 42, .. }
        ));
        // A response with the right sequence but another command's frame id, too.
        session.send(&Command::GetEui64, now).unwrap();
        let request = session.poll_transmit().unwrap();
        out.clear();
        Response::GetNodeId { node_id: Nwk(0) }
            .encode_frame(EzspVersion::V14, request[0], &mut out)
            .unwrap();
        assert!(session.handle_input(&out, now).is_err());
        assert_eq!(session.pending_count(), 1);
    }

    #[test]
    fn invalid_command_answers_the_pending_command() {
        let (mut session, now) = negotiated(13);
        session.send(&Command::GetEui64, now).unwrap();
        let sequence = answer(
            &mut session,
            EzspVersion::V13,
            Response::InvalidCommand {
                status: Status::Ezsp(EzspStatus::ERROR_INVALID_FRAME_ID),
            },
            now,
        );
        assert_eq!(
            session.poll_event(),
            Some(Event::Response {
                sequence,
                response: Response::InvalidCommand {
                    status: Status::Ezsp(EzspStatus::ERROR_INVALID_FRAME_ID)
                }
            })
        );
    }

    #[test]
    fn callbacks_are_told_apart_from_responses() {
        let (mut session, now) = negotiated(14);
        let sequence = session.send(&Command::GetNodeId, now).unwrap();
        let up = Callback::StackStatusHandler {
            status: Status::Sl(SlStatus::ZIGBEE_NETWORK_UP),
        };
        // Even with the pending command's sequence number, the async bit makes it a callback.
        let mut out = Vec::new();
        up.encode_frame(EzspVersion::V14, sequence, &mut out)
            .unwrap();
        session.handle_input(&out, now).unwrap();
        assert_eq!(session.poll_event(), Some(Event::Callback(up.clone())));
        assert_eq!(session.pending_count(), 1);
        // A callback id without the async bit (FC 0x80, as a synchronous NCP sends) too.
        out[1] = 0x80;
        session.handle_input(&out, now).unwrap();
        assert_eq!(session.poll_event(), Some(Event::Callback(up)));
        assert_eq!(session.pending_count(), 1);
    }

    #[test]
    fn ncp_overflow_and_truncation_flags_are_reported() {
        let (mut session, now) = negotiated(14);
        let up = Callback::StackStatusHandler {
            status: Status::Sl(SlStatus::ZIGBEE_NETWORK_UP),
        };
        let mut out = Vec::new();
        up.encode_frame(EzspVersion::V14, 3, &mut out).unwrap();
        session.handle_input(&out, now).unwrap();
        assert_eq!(session.poll_event(), Some(Event::Callback(up.clone())));
        out[1] |= 0x01; // overflow
        session.handle_input(&out, now).unwrap();
        assert_eq!(
            session.poll_event(),
            Some(Event::NcpFrameFlags {
                sequence: 3,
                overflow: true,
                truncated: false
            })
        );
        assert_eq!(session.poll_event(), Some(Event::Callback(up)));
    }

    #[test]
    fn undecodable_response_completes_the_command_with_an_error() {
        let (mut session, now) = negotiated(13);
        let sequence = session
            .send(&Command::SendUnicast(sample_unicast()), now)
            .unwrap();
        session.poll_transmit();
        // Status only, the APS sequence byte missing.
        session
            .handle_input(&[sequence, 0x80, 0x01, 0x34, 0x00, 0x00], now)
            .unwrap();
        assert!(matches!(
            session.poll_event(),
            Some(Event::ResponseUndecodable { sequence: s, .. }) if s == sequence
        ));
        assert_eq!(session.pending_count(), 0);
    }

    fn sample_unicast() -> crate::ezsp::command::SendUnicast {
        crate::ezsp::command::SendUnicast {
            message_type: crate::ezsp::types::OutgoingMessageType::DIRECT,
            index_or_destination: Nwk(0x1234),
            aps_frame: crate::ezsp::types::ApsFrame {
                profile_id: 0x0104,
                cluster_id: 0x0019,
                source_endpoint: 1,
                destination_endpoint: 1,
                options: crate::ezsp::types::ApsOptions::RETRY,
                group_id: 0,
                sequence: 1,
            },
            message_tag: 7,
            message_contents: vec![0x19, 0x10, 0x00, 0x00, 0x64],
        }
    }

    #[test]
    fn pending_commands_are_bounded_and_time_out() {
        let (mut session, now) = negotiated(13);
        let limit = SessionConfig::default().max_pending;
        for i in 0..limit {
            session
                .send(&Command::Nop, now + Duration::from_millis(i as u64))
                .unwrap();
        }
        assert_eq!(
            session.send(&Command::Nop, now),
            Err(SessionError::TooManyPending { limit })
        );
        assert_eq!(session.poll_timeout(), Some(now + Duration::from_secs(5)));
        session.handle_timeout(now + Duration::from_secs(5) + Duration::from_millis(1));
        let mut timed_out = Vec::new();
        while let Some(event) = session.poll_event() {
            let Event::TimedOut { sequence, frame_id } = event else {
                panic!("{event:?}");
            };
            assert_eq!(frame_id, FrameId::NOP);
            timed_out.push(sequence);
        }
        assert_eq!(timed_out.len(), 2, "the first two commands expired");
        assert_eq!(session.pending_count(), limit - 2);
        assert!(session.send(&Command::Nop, now).is_ok());
    }

    #[test]
    fn sequence_numbers_wrap_and_skip_pending_ones() {
        let (mut session, now) = negotiated(13);
        let stuck = session.send(&Command::Nop, now).unwrap();
        session.poll_transmit();
        let mut seen = Vec::new();
        for _ in 0..600 {
            let sequence = session.send(&Command::Nop, now).unwrap();
            assert_ne!(sequence, stuck);
            seen.push(sequence);
            answer(&mut session, EzspVersion::V13, Response::Nop, now);
            assert!(matches!(session.poll_event(), Some(Event::Response { .. })));
        }
        assert!(seen.windows(2).any(|w| w[1] < w[0]), "wrapped around");
        assert_eq!(session.pending_count(), 1);
    }

    #[test]
    fn reset_aborts_pending_commands() {
        let (mut session, now) = negotiated(13);
        let sequence = session.send(&Command::GetEui64, now).unwrap();
        session.reset();
        assert_eq!(
            session.poll_event(),
            Some(Event::Aborted {
                sequence,
                frame_id: FrameId::GET_EUI64
            })
        );
        assert_eq!(session.version(), None);
        assert!(session.poll_transmit().is_none());
        assert!(
            session
                .handle_input(&[0, 0x80, 0x00, 13, 2, 0, 0], now)
                .is_err()
        );
    }

    #[test]
    fn a_send_response_reads_status_in_each_width() {
        for (version, status) in [
            (13, Status::Ember(EmberStatus::NETWORK_BUSY)),
            (14, Status::Sl(SlStatus::BUSY)),
        ] {
            let (mut session, now) = negotiated(version);
            let version = EzspVersion::new(version).unwrap();
            session
                .send(&Command::SendUnicast(sample_unicast()), now)
                .unwrap();
            let sent = SendResponse {
                status,
                sequence: 9,
            };
            answer(&mut session, version, Response::SendUnicast(sent), now);
            let Some(Event::Response { response, .. }) = session.poll_event() else {
                panic!("no response");
            };
            assert_eq!(response.status(), Some(status));
            assert!(response.status().unwrap().means(SlStatus::BUSY));
        }
    }
}
