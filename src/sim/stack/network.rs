//! The simulated stack's configuration, networking, messaging and token frames (UG100 §3
//! "Configuration Frames", §5 "Networking Frames", §7 "Messaging Frames", §14 "Token Interface
//! Frames"): extended values, manufacturing tokens, scans, leaving the network, multicast
//! sends, radio settings, counters, the NVM3 token interface and `tokenFactoryReset`.

use super::*;

impl StackTables {
    /// Configuration, networking, messaging and token frames.
    /// `Some(false)`: not one of these frames; `None`: malformed parameters.
    pub(super) fn answer_network(&mut self, cx: &mut Cx<'_>) -> Option<bool> {
        let (frame_id, view, r, out, effect, v, sl) = cx.parts();
        match frame_id {
            // getExtendedValue(valueId, characteristics) -> status (EzspStatus), LV value
            FrameId::GET_EXTENDED_VALUE => {
                let value_id = r.u8("valueId").ok()?;
                let characteristics = r.u32("characteristics").ok()?;
                let registered = u8::try_from(characteristics)
                    .is_ok_and(|endpoint| view.endpoints.contains(&endpoint));
                if value_id == EXTENDED_VALUE_ENDPOINT_FLAGS && registered {
                    put_ok(out, sl);
                    // LV: EMBER_ENDPOINT_ENABLED
                    out.extend_from_slice(&[2, 0x01, 0x00]);
                } else {
                    // As EmberZNet does: the value's full length, with an error status.
                    ezsp_status(
                        out,
                        sl,
                        EzspStatus::ERROR_INVALID_VALUE,
                        SlStatus::INVALID_PARAMETER,
                    );
                    out.extend_from_slice(&[2, 0x00, 0x00]);
                }
            }
            // getMfgToken(tokenId) -> LV tokenData
            FrameId::GET_MFG_TOKEN => {
                let token = r.u8("tokenId").ok()?;
                let data: Vec<u8> = match token {
                    MFG_STRING => b"zigbee-otad".to_vec(),
                    MFG_BOARD_NAME => b"simulated NCP".to_vec(),
                    MFG_MANUF_ID => 0x1002u16.to_le_bytes().to_vec(),
                    // Unwritten: all 0xFF, so a host may burn a custom EUI-64 once.
                    MFG_CUSTOM_EUI_64 => vec![0xFF; 8],
                    _ => Vec::new(),
                };
                out.push(u8::try_from(data.len()).unwrap_or(0));
                out.extend_from_slice(&data);
            }
            // setMfgToken(tokenId, LV data) -> status
            FrameId::SET_MFG_TOKEN => put_status(out, sl, EmberStatus::ERR_FATAL, SlStatus::FAIL),
            // setConcentrator(on, type, minTime, maxTime, thresholds, maxHops) -> status
            FrameId::SET_CONCENTRATOR => {
                self.concentrator = r.u8("on").ok()? != 0;
                put_ok(out, sl);
            }
            // startScan(scanType, channelMask, duration) -> status; then per channel an
            // energyScanResultHandler (energy scan) and a scanCompleteHandler. The simulated
            // air is quiet and holds no other network.
            FrameId::START_SCAN => {
                let scan_type = r.u8("scanType").ok()?;
                let channels = r.u32("channelMask").ok()?;
                let _duration = r.u8("duration").ok()?;
                put_ok(out, sl);
                let mut callbacks = Vec::new();
                if scan_type == 0 {
                    for channel in 11..=26u8 {
                        if channels & (1 << channel) != 0 {
                            // energyScanResultHandler: channel, maxRssiValue
                            callbacks.push((
                                FrameId::ENERGY_SCAN_RESULT_HANDLER.0,
                                vec![channel, (-92i8).to_le_bytes()[0]],
                            ));
                        }
                    }
                }
                // scanCompleteHandler: channel, status
                let mut complete = vec![0];
                put_ok(&mut complete, sl);
                callbacks.push((FrameId::SCAN_COMPLETE_HANDLER.0, complete));
                *effect = Some(StackEffect::Callbacks(callbacks));
            }
            // setManufacturerCode(code) -> () before v14, status from v14
            FrameId::SET_MANUFACTURER_CODE => {
                self.manufacturer_code = r.u16("code").ok()?;
                if sl {
                    put_ok(out, sl);
                }
            }
            // leaveNetwork([options from v14]) -> status
            FrameId::LEAVE_NETWORK => {
                if view.network_up {
                    put_ok(out, sl);
                    *effect = Some(StackEffect::LeaveNetwork);
                } else {
                    put_status(out, sl, EmberStatus::INVALID_CALL, SlStatus::INVALID_STATE);
                }
            }
            // sendMulticast -> status, sequence
            FrameId::SEND_MULTICAST => {
                let aps_frame: [u8; 11] = r.array("apsFrame").ok()?;
                let _hops = r.u8("hops").ok()?;
                let message_tag = if sl {
                    let _broadcast_address = r.u16("broadcastAddr").ok()?;
                    let _alias = r.u16("alias").ok()?;
                    let _sequence = r.u8("sequence").ok()?;
                    r.u16("messageTag").ok()?
                } else {
                    let _nonmember_radius = r.u8("nonmemberRadius").ok()?;
                    u16::from(r.u8("messageTag").ok()?)
                };
                if view.network_up {
                    put_ok(out, sl);
                    *effect = Some(StackEffect::MulticastSent {
                        message_tag,
                        aps_frame,
                    });
                } else {
                    put_status(
                        out,
                        sl,
                        EmberStatus::NETWORK_DOWN,
                        SlStatus::ZIGBEE_NETWORK_DOWN,
                    );
                }
                out.push(aps_frame[10]);
            }
            // sendReply, sendManyToOneRouteRequest, setRadioPower, setRadioIeee802154CcaMode,
            // setLogicalAndRadioChannel, removeDevice, multiPhySetRadioPower -> status
            FrameId::SEND_REPLY
            | FrameId::SEND_MANY_TO_ONE_ROUTE_REQUEST
            | FrameId::SET_RADIO_IEEE802154_CCA_MODE
            | FrameId::SET_RADIO_POWER
            | FrameId::REMOVE_DEVICE
            | FrameId::SET_LOGICAL_AND_RADIO_CHANNEL
            | FrameId::MULTI_PHY_SET_RADIO_POWER => put_ok(out, sl),
            // readAndClearCounters, readCounters -> 41 × u16
            FrameId::READ_AND_CLEAR_COUNTERS | FrameId::READ_COUNTERS => {
                for _ in 0..COUNTER_COUNT {
                    out.put_u16_le(0);
                }
            }
            // v8–12 becomeTrustCenter(key) -> status
            FrameId::TOKEN_FACTORY_RESET if v <= 12 => put_ok(out, sl),
            // v13+ tokenFactoryReset(excludeOutgoingFC, excludeBootCounter) -> ()
            FrameId::TOKEN_FACTORY_RESET => {
                let keep_counter = r.u8("excludeOutgoingFC").ok()? != 0;
                let counter = self.network_frame_counter;
                *self = StackTables::new([0; 16]);
                if keep_counter {
                    self.network_frame_counter = counter;
                }
                *effect = Some(StackEffect::FactoryReset);
            }
            // getTokenCount -> u8: this NCP exposes no NVM3 tokens to the host
            FrameId::GET_TOKEN_COUNT => out.push(0),
            // getTokenInfo(index) -> status, EmberTokenInfo
            FrameId::GET_TOKEN_INFO => {
                index_status(out, sl, false);
                out.extend_from_slice(&[0; 8]);
            }
            // getTokenData(token, index) -> status [, LV32 data only on success]
            FrameId::GET_TOKEN_DATA => {
                put_status(out, sl, EmberStatus::NOT_FOUND, SlStatus::NOT_FOUND)
            }
            // setTokenData(token, index, LV32 data) -> status
            FrameId::SET_TOKEN_DATA => {
                put_status(out, sl, EmberStatus::NOT_FOUND, SlStatus::NOT_FOUND)
            }
            // customFrame(LV payload) -> status, LV reply: no XNCP extensions in this firmware
            FrameId::CUSTOM_FRAME => {
                put_status(out, sl, EmberStatus::INVALID_CALL, SlStatus::NOT_SUPPORTED);
                out.push(0);
            }
            _ => return Some(false),
        }
        Some(true)
    }
}
