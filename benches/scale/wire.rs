//! What the benchmark relay sees on the serial line, for either coordinator protocol: EZSP over
//! ASH (the simulated EmberZNet NCP) or MT (the simulated Z-Stack stick). Each direction has its
//! own [`Watch`]; [`Watch::observe`] turns the bytes read into the few facts the measurements
//! need ([`Seen`]).

use zigbee_otad::ash::{Deframer, Frame as AshFrame};
use zigbee_otad::ezsp::EzspVersion;
use zigbee_otad::ezsp::command::{
    Body, Callback, Command as EzspCommand, Frame as EzspFrame, Response,
};
use zigbee_otad::znp::command::{Message, status};
use zigbee_otad::znp::frame::{Decoder, FrameType};

/// The OTA Upgrade cluster.
pub(crate) const CLUSTER_OTA: u16 = 0x0019;

/// One fact about the traffic.
#[derive(Debug)]
pub(crate) enum Seen {
    /// A device's OTA Upgrade cluster frame handed to the host.
    OtaFromDevice { sender: u16, zcl: Vec<u8> },
    /// The host sent an OTA Upgrade cluster unicast to `destination`.
    OtaToDevice { destination: u16 },
    /// The host sent a command that awaits the coordinator's response (EZSP sequence number,
    /// or the MT command for ZNP, where one SREQ is in flight at a time).
    Request(u16),
    /// The coordinator answered request `key`; `refused` when it refused a unicast.
    Response { key: u16, refused: bool },
    /// An ASH DATA frame sent again (its reTx flag set; EZSP only: MT has no retransmission).
    Retransmission,
}

/// One direction's decoder.
pub(crate) enum Watch {
    /// EZSP frames inside ASH DATA frames.
    Ezsp {
        version: EzspVersion,
        deframer: Deframer,
    },
    /// MT frames.
    Znp { decoder: Decoder },
}

impl Watch {
    /// For EZSP at `version`.
    pub(crate) fn ezsp(version: EzspVersion) -> Watch {
        Watch::Ezsp {
            version,
            deframer: Deframer::new(),
        }
    }

    /// For ZNP.
    pub(crate) fn znp() -> Watch {
        Watch::Znp {
            decoder: Decoder::default(),
        }
    }

    /// The facts in `bytes` (a frame split across reads is completed by later calls).
    pub(crate) fn observe(&mut self, bytes: &[u8]) -> Vec<Seen> {
        match self {
            Watch::Ezsp { version, deframer } => {
                let mut seen = Vec::new();
                for frame in deframer.push(bytes) {
                    let Ok(AshFrame::Data { payload, re_tx, .. }) = frame else {
                        continue;
                    };
                    if re_tx {
                        seen.push(Seen::Retransmission);
                    }
                    if let Ok(frame) = EzspFrame::decode(*version, &payload) {
                        seen.extend(ezsp_facts(frame));
                    }
                }
                seen
            }
            Watch::Znp { decoder } => {
                decoder.push(bytes);
                let mut seen = Vec::new();
                while let Some(item) = decoder.next_frame() {
                    let Ok(frame) = item else { continue };
                    let key = (u16::from(frame.subsystem.0) << 8) | u16::from(frame.id);
                    let Ok(message) = Message::decode(&frame) else {
                        continue;
                    };
                    match (frame.frame_type, message) {
                        (FrameType::Areq, Message::AfIncomingMsg(m))
                            if m.cluster == CLUSTER_OTA =>
                        {
                            seen.push(Seen::OtaFromDevice {
                                sender: m.source,
                                zcl: m.data,
                            });
                        }
                        (FrameType::Sreq, Message::AfDataRequest(r)) => {
                            seen.push(Seen::Request(key));
                            if r.cluster == CLUSTER_OTA {
                                seen.push(Seen::OtaToDevice {
                                    destination: r.destination,
                                });
                            }
                        }
                        (FrameType::Sreq, Message::AfDataRequestExt(r)) => {
                            seen.push(Seen::Request(key));
                            if let Some(destination) = r.destination.short()
                                && r.cluster == CLUSTER_OTA
                            {
                                seen.push(Seen::OtaToDevice { destination });
                            }
                        }
                        (FrameType::Sreq, _) => seen.push(Seen::Request(key)),
                        (FrameType::Srsp, Message::StatusResponse { status: s, .. }) => {
                            seen.push(Seen::Response {
                                key,
                                refused: s != status::SUCCESS,
                            });
                        }
                        (FrameType::Srsp, _) => seen.push(Seen::Response {
                            key,
                            refused: false,
                        }),
                        _ => {}
                    }
                }
                seen
            }
        }
    }
}

fn ezsp_facts(frame: EzspFrame) -> Vec<Seen> {
    let sequence = u16::from(frame.header.sequence);
    match frame.body {
        Body::Callback(Callback::IncomingMessageHandler(message))
            if message.aps_frame.cluster_id == CLUSTER_OTA =>
        {
            vec![Seen::OtaFromDevice {
                sender: message.sender.0,
                zcl: message.message_contents,
            }]
        }
        Body::Response(response) => vec![Seen::Response {
            key: sequence,
            refused: matches!(response, Response::SendUnicast(sent) if !sent.status.is_success()),
        }],
        Body::Command(EzspCommand::SendUnicast(send))
            if send.aps_frame.cluster_id == CLUSTER_OTA =>
        {
            vec![
                Seen::Request(sequence),
                Seen::OtaToDevice {
                    destination: send.index_or_destination.0,
                },
            ]
        }
        Body::Command(_) => vec![Seen::Request(sequence)],
        _ => Vec::new(),
    }
}
