//! The simulated stack's tables (UG100 §5 "Networking Frames", §7 "Messaging Frames"): the
//! address table, child data, source routes and the concentrator's discovery mode, the
//! multicast table, extended timeouts, and the green-power tables a v17 host clears.

use super::*;

impl StackTables {
    /// The address, child, source-route, multicast and green-power table frames.
    /// `Some(false)`: not one of these frames; `None`: malformed parameters.
    pub(super) fn answer_tables(&mut self, cx: &mut Cx<'_>) -> Option<bool> {
        let (frame_id, view, r, out, _, v, sl) = cx.parts();
        match frame_id {
            // getParentChildParameters -> childCount, parentEui64, parentNodeId
            FrameId::GET_PARENT_CHILD_PARAMETERS => {
                out.push(u8::try_from(view.children.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(&[0; 8]);
                out.put_u16_le(0xFFFF);
            }
            // getChildData(index) -> status, EmberChildData (V7 in v8/v9, V10 from v10)
            FrameId::GET_CHILD_DATA => {
                let index = usize::from(r.u8("index").ok()?);
                match view.children.get(index) {
                    Some((nwk, eui64)) => {
                        put_ok(out, sl);
                        out.extend_from_slice(eui64);
                        out.push(NODE_TYPE_END_DEVICE);
                        out.put_u16_le(*nwk);
                        // phy, power, timeout
                        out.extend_from_slice(&[0, 1, 8]);
                        if v >= 10 {
                            out.put_u32_le(0x0003_0000);
                        }
                    }
                    None => {
                        put_status(out, sl, EmberStatus::NOT_JOINED, SlStatus::NOT_FOUND);
                        out.extend_from_slice(&[0; 8]);
                        out.push(0);
                        out.put_u16_le(0xFFFF);
                        out.extend_from_slice(&[0, 0, 0]);
                        if v >= 10 {
                            out.put_u32_le(0);
                        }
                    }
                }
            }
            // setSourceRouteDiscoveryMode(mode) -> remainingTime (ms to the next MTORR)
            FrameId::SET_SOURCE_ROUTE_DISCOVERY_MODE => {
                let mode = r.u8("mode").ok()?;
                out.put_u32_le(if mode == 0 { 0 } else { 60_000 });
            }
            // v8–13 getAddressTableRemoteEui64; v14+ getAddressTableInfo
            FrameId::GET_ADDRESS_TABLE_INFO => {
                let index = usize::from(r.u8("index").ok()?);
                let entry = view.children.get(index);
                if sl {
                    match entry {
                        Some((nwk, eui64)) => {
                            put_ok(out, sl);
                            out.put_u16_le(*nwk);
                            out.extend_from_slice(eui64);
                        }
                        None => {
                            out.put_u32_le(SlStatus::NOT_FOUND.0);
                            out.put_u16_le(0xFFFF);
                            out.extend_from_slice(&[0; 8]);
                        }
                    }
                } else {
                    out.extend_from_slice(&entry.map_or([0; 8], |(_, eui64)| *eui64));
                }
            }
            // v8–13 getAddressTableRemoteNodeId; unused in v14–16; v17 gpClearProxyTable -> ()
            FrameId::GP_CLEAR_PROXY_TABLE if v <= 13 => {
                let index = usize::from(r.u8("index").ok()?);
                out.put_u16_le(view.children.get(index).map_or(0xFFFF, |(nwk, _)| *nwk));
            }
            FrameId::GP_CLEAR_PROXY_TABLE if v >= 17 => {}
            // getMulticastTableEntry(index) -> status, entry
            FrameId::GET_MULTICAST_TABLE_ENTRY => {
                let index = usize::from(r.u8("index").ok()?);
                match self.multicast.get(index) {
                    Some(&(group, endpoint, network)) => {
                        put_ok(out, sl);
                        out.put_u16_le(group);
                        out.push(endpoint);
                        out.push(network);
                    }
                    None => {
                        index_status(out, sl, false);
                        out.extend_from_slice(&[0; 4]);
                    }
                }
            }
            // setMulticastTableEntry(index, entry) -> status
            FrameId::SET_MULTICAST_TABLE_ENTRY => {
                let index = usize::from(r.u8("index").ok()?);
                let group = r.u16("multicastId").ok()?;
                let endpoint = r.u8("endpoint").ok()?;
                let network = r.u8("networkIndex").ok()?;
                let stored =
                    replace_entry(self.multicast.get_mut(index), (group, endpoint, network));
                index_status(out, sl, stored);
            }
            // setExtendedTimeout(eui64, bool) -> () before v14, status from v14
            FrameId::SET_EXTENDED_TIMEOUT => {
                if sl {
                    put_ok(out, sl);
                }
            }
            // getExtendedTimeout(eui64) -> bool before v14; status (OK: extended) from v14
            FrameId::GET_EXTENDED_TIMEOUT => {
                if sl {
                    out.put_u32_le(SlStatus::NOT_FOUND.0);
                } else {
                    out.push(0);
                }
            }
            // replaceAddressTableEntry(index, eui64, id, extended) -> status, old entry
            FrameId::REPLACE_ADDRESS_TABLE_ENTRY => {
                put_ok(out, sl);
                out.extend_from_slice(&[0; 8]);
                out.put_u16_le(0xFFFF);
                out.push(0);
            }
            // setSourceRoute(destination, relays) -> status
            FrameId::SET_SOURCE_ROUTE => {
                let destination = r.u16("destination").ok()?;
                let count = r.u8("relayCount").ok()?;
                let relays = (0..count)
                    .map(|_| r.u16("relay"))
                    .collect::<Result<Vec<_>, _>>()
                    .ok()?;
                self.source_routes.retain(|(d, _)| *d != destination);
                self.source_routes.push((destination, relays));
                put_ok(out, sl);
            }
            // setChildData(index, data) -> status
            FrameId::SET_CHILD_DATA => put_ok(out, sl),
            // getSourceRouteTableFilledSize / TotalSize -> u8
            FrameId::GET_SOURCE_ROUTE_TABLE_FILLED_SIZE => {
                out.push(u8::try_from(self.source_routes.len()).unwrap_or(u8::MAX))
            }
            FrameId::GET_SOURCE_ROUTE_TABLE_TOTAL_SIZE => out.push(SOURCE_ROUTE_TABLE_SIZE),
            // gpSinkTableClearAll -> (); v17 gpProxyTableRemoveEntry(index) -> ()
            FrameId::GP_SINK_TABLE_CLEAR_ALL => {}
            FrameId::GP_PROXY_TABLE_REMOVE_ENTRY if v >= 17 => {}
            _ => return Some(false),
        }
        Some(true)
    }
}
