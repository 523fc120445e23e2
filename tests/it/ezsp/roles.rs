//! Both roles together: a host Session against a tiny NCP built from the same codec.

use super::*;

/// The NCP role: answers `version` in whichever header the host used, `sendUnicast` with a
/// send response followed by a `messageSentHandler` callback.
struct TinyNcp {
    version: EzspVersion,
    callback_sequence: u8,
}

impl TinyNcp {
    fn answer(&mut self, request: &[u8]) -> Vec<Vec<u8>> {
        use zigbee_otad::ezsp::command::VersionResponse;
        let version_answer = VersionResponse {
            protocol_version: self.version.get(),
            stack_type: 2,
            stack_version: 0x8100,
        };
        if FrameFormat::detect(request) == FrameFormat::Legacy {
            let (header, parameters) = FrameHeader::decode(FrameFormat::Legacy, request).unwrap();
            assert_eq!(header.frame_id, FrameId::VERSION);
            VersionRequest::decode(self.version, parameters).unwrap();
            let mut out = Vec::new();
            version_answer.encode_legacy_frame(header.sequence, &mut out);
            return vec![out];
        }
        let frame = Frame::decode(self.version, request).unwrap();
        let Body::Command(command) = frame.body else {
            panic!("the host sent {:?}", frame.body)
        };
        let sequence = frame.header.sequence;
        let mut frames = Vec::new();
        let mut out = Vec::new();
        match command {
            Command::Version(_) => {
                Response::Version(version_answer)
                    .encode_frame(self.version, sequence, &mut out)
                    .unwrap();
                frames.push(out);
            }
            Command::SendUnicast(unicast) => {
                Response::SendUnicast(SendResponse {
                    status: Status::Sl(SlStatus::OK),
                    sequence: unicast.aps_frame.sequence,
                })
                .encode_frame(self.version, sequence, &mut out)
                .unwrap();
                frames.push(out);
                // A callback must not reuse a pending command's sequence number.
                self.callback_sequence = self.callback_sequence.wrapping_add(1);
                let mut callback = Vec::new();
                Callback::MessageSentHandler(MessageSentHandler {
                    message_type: unicast.message_type,
                    index_or_destination: unicast.index_or_destination,
                    aps_frame: unicast.aps_frame,
                    message_tag: unicast.message_tag,
                    status: Status::Sl(SlStatus::OK),
                    message_contents: vec![],
                })
                .encode_frame(
                    self.version,
                    self.callback_sequence.wrapping_add(0x80),
                    &mut callback,
                )
                .unwrap();
                frames.push(callback);
            }
            other => panic!("TinyNcp does not answer {other:?}"),
        }
        frames
    }
}

#[test]
fn host_session_against_an_ncp_built_from_the_codec() {
    use std::time::{Duration, Instant};
    use zigbee_otad::ezsp::{Event, Session, SessionConfig};

    for ncp_version in [13, 14, 16, 17] {
        let version = EzspVersion::new(ncp_version).unwrap();
        let mut ncp = TinyNcp {
            version,
            callback_sequence: 0,
        };
        #[allow(clippy::disallowed_methods)] // the session only compares and adds to it
        let now = Instant::now();
        let mut host = Session::new(SessionConfig::default());
        host.start(now);
        let mut events = Vec::new();
        let pump = |host: &mut Session, ncp: &mut TinyNcp, events: &mut Vec<Event>| {
            for _ in 0..10 {
                let Some(request) = host.poll_transmit() else {
                    break;
                };
                for reply in ncp.answer(&request) {
                    host.handle_input(&reply, now).unwrap();
                }
            }
            while let Some(event) = host.poll_event() {
                events.push(event);
            }
        };
        pump(&mut host, &mut ncp, &mut events);
        assert_eq!(host.version(), Some(version));
        assert!(
            matches!(events.as_slice(), [Event::Negotiated { version: v, .. }] if *v == version)
        );
        events.clear();

        let unicast = SendUnicast {
            message_type: OutgoingMessageType::DIRECT,
            index_or_destination: Nwk(0x1234),
            aps_frame: ota_aps(),
            message_tag: 0x42,
            message_contents: vec![0x19, 0x10, 0x00, 0x00, 0x64],
        };
        let sequence = host.send(&Command::SendUnicast(unicast), now).unwrap();
        pump(&mut host, &mut ncp, &mut events);
        assert_eq!(events.len(), 2, "v{ncp_version}: {events:?}");
        let Event::Response {
            sequence: s,
            response: Response::SendUnicast(sent),
        } = &events[0]
        else {
            panic!("{:?}", events[0]);
        };
        assert_eq!(*s, sequence);
        assert!(sent.status.is_success());
        let Event::Callback(Callback::MessageSentHandler(report)) = &events[1] else {
            panic!("{:?}", events[1]);
        };
        assert_eq!(report.message_tag, 0x42);
        assert!(report.status.is_success());
        assert_eq!(host.pending_count(), 0);
        assert_eq!(host.poll_timeout(), None);
        // Nothing is pending, so a later timeout changes nothing.
        host.handle_timeout(now + Duration::from_secs(60));
        assert!(host.poll_event().is_none());
    }
}
