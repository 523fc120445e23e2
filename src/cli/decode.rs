//! `decode` and `inspect`: captured bytes and OTA files shown for troubleshooting
//! (ARCHITECTURE.md, "Command line"; the ZCL frames follow ZCL §11 OTA, the ASH frames UG101,
//! the EZSP frames UG100, the ZNP frames TI's Z-Stack Monitor and Test API).

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use zigbee_otad::ota::{InspectReport, OtaFile};
use zigbee_otad::zcl::ZclStatus;
use zigbee_otad::zcl::ota::OtaFrame;

#[derive(Debug, Subcommand)]
pub(crate) enum DecodeLayer {
    /// A ZCL frame (ZCL header + OTA Upgrade cluster command).
    Zcl {
        /// The frame as hex (spaces, `:` and `0x` allowed).
        hex: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One or more ASH frames as they appear on the serial line (flag-terminated).
    Ash {
        /// The bytes as hex.
        hex: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// An EZSP frame (the payload of an ASH DATA frame, de-randomised).
    Ezsp {
        /// The frame as hex.
        hex: String,
        /// The negotiated EZSP protocol version (8..=17).
        #[arg(long, default_value_t = 13)]
        ezsp_version: u8,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One or more ZNP (TI Z-Stack MT) frames as they appear on the serial line (SOF 0xFE).
    Znp {
        /// The bytes as hex.
        hex: String,
        /// Print JSON, one object per frame.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn inspect(path: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = OtaFile::parse(bytes)
        .with_context(|| format!("{} is not a usable OTA file", path.display()))?;
    let report = InspectReport::from(&file);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}\n{report}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn decode(layer: DecodeLayer) -> anyhow::Result<ExitCode> {
    let hex_of = |text: &str| {
        zigbee_otad::wire::parse_hex(text).map_err(|e| anyhow::anyhow!("not hex: {e}"))
    };
    match layer {
        DecodeLayer::Zcl { hex, json } => {
            let bytes = hex_of(&hex)?;
            // Only a frame that cannot be read at all fails; values the spec does not allow
            // are shown and listed as violations (the troubleshooter wants to see them).
            let (frame, violations) = OtaFrame::inspect(&bytes).map_err(|e| {
                let status = ZclStatus::from(&e);
                anyhow::anyhow!("{e} (a server answers {status:?})")
            })?;
            if json {
                let mut value = serde_json::to_value(&frame)?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("violations".into(), serde_json::to_value(&violations)?);
                }
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("{frame}");
                for violation in &violations {
                    let answer = if violation.refused {
                        "the server refuses it with INVALID_VALUE"
                    } else {
                        "reported only"
                    };
                    println!(
                        "violation: {} 0x{:X} at offset {}: the spec allows {} ({answer})",
                        violation.field, violation.value, violation.offset, violation.allowed
                    );
                }
            }
        }
        DecodeLayer::Ash { hex, json } => {
            let bytes = hex_of(&hex)?;
            let mut deframer = zigbee_otad::ash::Deframer::new();
            let mut frames = Vec::new();
            // A capture may omit the final flag: end it so the last frame is decoded.
            let mut input = bytes;
            if input.last() != Some(&0x7E) {
                input.push(0x7E);
            }
            frames.extend(deframer.push(&input));
            if frames.is_empty() {
                anyhow::bail!("no ASH frame in the input");
            }
            let mut failed = false;
            for frame in &frames {
                match frame {
                    Ok(frame) if json => println!("{}", serde_json::to_string(&ash_json(frame))?),
                    Ok(frame) => println!("{frame:?}"),
                    Err(e) => {
                        failed = true;
                        eprintln!("zigbee-otad: bad ASH frame: {e}");
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        DecodeLayer::Ezsp {
            hex,
            ezsp_version,
            json,
        } => {
            let bytes = hex_of(&hex)?;
            let version = zigbee_otad::ezsp::EzspVersion::new(ezsp_version)?;
            let frame = zigbee_otad::ezsp::command::Frame::decode(version, &bytes)
                .with_context(|| format!("not an EZSP {version} frame"))?;
            if json {
                let value = serde_json::json!({
                    "ezsp_version": version.get(),
                    "frame": format!("{frame:?}"),
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("EZSP {version}: {frame:#?}");
            }
        }
        DecodeLayer::Znp { hex, json } => {
            let items = zigbee_otad::znp::decode_stream(&hex_of(&hex)?);
            if items.is_empty() {
                anyhow::bail!("no ZNP frame in the input");
            }
            let mut failed = false;
            for item in &items {
                failed |= !matches!(item, Ok((_, Ok(_))));
                match item {
                    _ if json => println!("{}", zigbee_otad::znp::decoded_json(item)),
                    Ok((_, Ok(message))) => println!("{}: {message:?}", message.name()),
                    Ok((frame, Err(e))) => eprintln!("zigbee-otad: {frame:?}: {e}"),
                    Err(e) => eprintln!("zigbee-otad: {e}"),
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ash_json(frame: &zigbee_otad::ash::Frame) -> serde_json::Value {
    use zigbee_otad::ash::Frame;
    use zigbee_otad::wire::hex_spaced;
    match frame {
        Frame::Data {
            frm_num,
            re_tx,
            ack_num,
            payload,
        } => serde_json::json!({"type": "DATA", "frm_num": frm_num, "re_tx": re_tx,
            "ack_num": ack_num, "ezsp": hex_spaced(payload)}),
        other => serde_json::json!({"type": "control", "frame": format!("{other:?}")}),
    }
}
