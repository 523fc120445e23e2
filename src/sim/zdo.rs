//! The simulated NCP's own ZDO server (Zigbee specification §2.4.3–2.4.4): a host that sends a
//! ZDO request to the coordinator itself (node 0x0000; zigpy does at start-up to read the
//! coordinator's descriptors) gets the answer a real stack's ZDO gives, looped back as an
//! incoming message. Requests it does not serve get `NOT_SUPPORTED` (0x84).
//!
//! ```
//! use zigbee_otad::sim::zdo::{OwnNode, answer};
//! let node = OwnNode { manufacturer_code: 0x1002, ieee: [1, 0, 0, 0, 0, 0, 0, 0], endpoints: vec![] };
//! // Node_Desc_req for 0x0000, transaction 7 -> Node_Desc_rsp (0x8002), SUCCESS.
//! let (cluster, payload) = answer(&node, 0x0002, &[7, 0x00, 0x00]).unwrap();
//! assert_eq!(cluster, 0x8002);
//! assert_eq!(&payload[..4], &[7, 0x00, 0x00, 0x00]);
//! ```

use crate::ezsp::command::AddEndpoint;
use crate::wire::PutLe;

/// ZDO status SUCCESS.
const SUCCESS: u8 = 0x00;
/// ZDO status NOT_SUPPORTED.
const NOT_SUPPORTED: u8 = 0x84;
/// The coordinator's network address.
const OWN_NWK: u16 = 0x0000;

/// What the ZDO server knows about its own node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnNode {
    /// The manufacturer code in the node descriptor (`setManufacturerCode`).
    pub manufacturer_code: u16,
    /// The node's EUI-64, in wire order.
    pub ieee: [u8; 8],
    /// The endpoints the host registered (`addEndpoint`).
    pub endpoints: Vec<AddEndpoint>,
}

/// The response (cluster, payload) to ZDO request `cluster` with `payload` (transaction
/// sequence first), or `None` for a response cluster or an empty request.
pub fn answer(node: &OwnNode, cluster: u16, payload: &[u8]) -> Option<(u16, Vec<u8>)> {
    if cluster & 0x8000 != 0 {
        return None;
    }
    let (&transaction, request) = payload.split_first()?;
    let mut out = vec![transaction];
    match cluster {
        // NWK_addr_req / IEEE_addr_req -> status, IEEE, NWK (single device response)
        0x0000 | 0x0001 => {
            out.push(SUCCESS);
            out.extend_from_slice(&node.ieee);
            out.put_u16_le(OWN_NWK);
        }
        // Node_Desc_req -> status, NWK, node descriptor (13 bytes)
        0x0002 => {
            out.push(SUCCESS);
            out.put_u16_le(OWN_NWK);
            // Coordinator; 2.4 GHz; MAC capabilities: alternate PAN coordinator, FFD, mains,
            // receiver on when idle, allocate address.
            out.extend_from_slice(&[0x00, 0x40, 0x8F]);
            out.put_u16_le(node.manufacturer_code);
            out.push(0x52); // maximum buffer size
            out.put_u16_le(0x0080); // maximum incoming transfer size
            out.put_u16_le(0x2C41); // server mask: primary trust centre, stack compliance rev 22
            out.put_u16_le(0x0080); // maximum outgoing transfer size
            out.push(0x00); // descriptor capabilities
        }
        // Simple_Desc_req (NWK, endpoint) -> status, NWK, length, simple descriptor
        0x0004 => {
            let endpoint = request.get(2).copied();
            match node.endpoints.iter().find(|e| Some(e.endpoint) == endpoint) {
                Some(e) => {
                    let mut descriptor = vec![e.endpoint];
                    descriptor.put_u16_le(e.profile_id);
                    descriptor.put_u16_le(e.device_id);
                    descriptor.push(e.device_version);
                    for clusters in [&e.input_clusters, &e.output_clusters] {
                        descriptor.push(u8::try_from(clusters.len()).unwrap_or(u8::MAX));
                        for cluster in clusters.iter().take(usize::from(u8::MAX)) {
                            descriptor.put_u16_le(*cluster);
                        }
                    }
                    out.push(SUCCESS);
                    out.put_u16_le(OWN_NWK);
                    out.push(u8::try_from(descriptor.len()).unwrap_or(u8::MAX));
                    out.extend_from_slice(&descriptor);
                }
                None => {
                    // NOT_ACTIVE: no such endpoint.
                    out.push(0x83);
                    out.put_u16_le(OWN_NWK);
                    out.push(0);
                }
            }
        }
        // Active_EP_req -> status, NWK, count, endpoints
        0x0005 => {
            out.push(SUCCESS);
            out.put_u16_le(OWN_NWK);
            out.push(u8::try_from(node.endpoints.len()).unwrap_or(u8::MAX));
            out.extend(node.endpoints.iter().map(|e| e.endpoint));
        }
        _ => out.push(NOT_SUPPORTED),
    }
    Some((cluster | 0x8000, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> OwnNode {
        OwnNode {
            manufacturer_code: 0x1049,
            ieee: [1, 2, 3, 4, 5, 6, 7, 8],
            endpoints: vec![AddEndpoint {
                endpoint: 1,
                profile_id: 0x0104,
                device_id: 0x0005,
                device_version: 0,
                input_clusters: vec![0x0019],
                output_clusters: vec![],
            }],
        }
    }

    #[test]
    fn descriptors_of_the_own_node() {
        let (cluster, node_desc) = answer(&node(), 0x0002, &[3, 0, 0]).unwrap();
        assert_eq!(cluster, 0x8002);
        assert_eq!(node_desc.len(), 1 + 1 + 2 + 13);
        assert_eq!(&node_desc[7..9], &0x1049u16.to_le_bytes());
        let (_, active) = answer(&node(), 0x0005, &[4, 0, 0]).unwrap();
        assert_eq!(active, [4, 0, 0, 0, 1, 1]);
        let (_, simple) = answer(&node(), 0x0004, &[5, 0, 0, 1]).unwrap();
        assert_eq!(
            simple,
            [5, 0, 0, 0, 10, 1, 0x04, 0x01, 0x05, 0, 0, 1, 0x19, 0, 0]
        );
        let (_, missing) = answer(&node(), 0x0004, &[6, 0, 0, 9]).unwrap();
        assert_eq!(missing, [6, 0x83, 0, 0, 0]);
    }

    #[test]
    fn other_requests_are_not_supported_and_responses_ignored() {
        assert_eq!(
            answer(&node(), 0x0031, &[9, 0]),
            Some((0x8031, vec![9, NOT_SUPPORTED]))
        );
        assert_eq!(answer(&node(), 0x8002, &[9]), None);
        assert_eq!(answer(&node(), 0x0002, &[]), None);
    }
}
