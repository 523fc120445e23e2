//! Property: whatever a device asks, and whenever, no Image Block Response carries a byte that
//! is not at its offset in the image the device was offered, no block exceeds what the device
//! accepts, and no frame exceeds the coordinator's payload.

use super::*;

use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Block {
        offset: u32,
        period: Option<u16>,
    },
    Page {
        offset: u32,
        page_size: u16,
        spacing_ms: u16,
    },
    Retry,
    Wait(u64),
    ReplaceCatalog,
    UpgradeEnd(bool),
}

fn op(image_len: u32) -> impl Strategy<Value = Op> {
    let offset = 0..image_len + 100;
    prop_oneof![
        4 => (offset.clone(), proptest::option::of(0u16..2000))
            .prop_map(|(offset, period)| Op::Block { offset, period }),
        1 => (offset, 0u16..600, 0u16..300).prop_map(|(offset, page_size, spacing_ms)| Op::Page {
            offset,
            page_size,
            spacing_ms
        }),
        1 => Just(Op::Retry),
        2 => (0u64..400_000).prop_map(Op::Wait),
        1 => Just(Op::ReplaceCatalog),
        1 => any::<bool>().prop_map(Op::UpgradeEnd),
    ]
}

fn case() -> impl Strategy<Value = (u32, u8, u8, Vec<Op>)> {
    // 19 bytes: the longest fixed-size response (Upgrade End Response) must fit.
    (1u32..3_000, 0u8..=255, 19u8..=127).prop_flat_map(|(len, max, aps)| {
        (
            Just(len),
            Just(max),
            Just(aps),
            proptest::collection::vec(op(len), 1..60),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn blocks_stay_inside_the_offered_image_and_the_limits(
        (len, device_max, max_aps_payload, ops) in case()
    ) {
        let offered = OtaImage::new(new_key(), Bytes::from(pattern(len as usize, 7)))
            .unwrap()
            .shared();
        let (mut server, t0) = server_with(ServerConfig::default(), vec![offered.clone()]);
        server.set_max_aps_payload(max_aps_payload);
        let mut now = t0;
        server.handle_frame(DEV, &query(0, OLD, None), now);
        let mut last: Option<Vec<u8>> = None;
        let mut tsn = 1u8;
        for op in ops {
            let request = match op {
                Op::Block { offset, period } => {
                    Some(block_request(tsn, new_key(), offset, device_max, period))
                }
                Op::Page { offset, page_size, spacing_ms } => Some(frame_bytes(
                    tsn,
                    OtaCommand::ImagePageRequest(ImagePageRequest {
                        field_control: 0,
                        manufacturer_code: MFR,
                        image_type: IMAGE_TYPE,
                        file_version: NEW,
                        file_offset: offset,
                        maximum_data_size: device_max,
                        page_size,
                        response_spacing: spacing_ms,
                        request_node_address: None,
                    }),
                )),
                Op::Retry => last.clone(),
                Op::Wait(ms) => {
                    now += Duration::from_millis(ms);
                    while let Some(t) = server.poll_timeout().filter(|t| *t <= now) {
                        server.handle_timeout(t);
                        check(&mut server, &offered, device_max, max_aps_payload)?;
                    }
                    server.handle_timeout(now);
                    None
                }
                Op::ReplaceCatalog => {
                    let other = OtaImage::new(new_key(), Bytes::from(pattern(len as usize, 8)))
                        .unwrap()
                        .shared();
                    server.set_images(vec![other], now);
                    None
                }
                Op::UpgradeEnd(success) => Some(upgrade_end(
                    tsn,
                    if success { ZclStatus::SUCCESS } else { ZclStatus::ABORT },
                    new_key(),
                )),
            };
            if let Some(request) = request {
                server.handle_frame(DEV, &request, now);
                last = Some(request);
                tsn = tsn.wrapping_add(1);
            }
            check(&mut server, &offered, device_max, max_aps_payload)?;
        }
    }
}

fn check(
    server: &mut OtaServer,
    offered: &OtaImage,
    device_max: u8,
    max_aps_payload: u8,
) -> Result<(), TestCaseError> {
    while let Some(out) = server.poll_transmit() {
        prop_assert!(out.zcl_bytes.len() <= usize::from(max_aps_payload));
        let frame = decode(&out);
        if let OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
            file_version,
            file_offset,
            data,
            ..
        }) = &frame.command
        {
            prop_assert_eq!(*file_version, NEW);
            prop_assert!(!data.is_empty());
            prop_assert!(data.len() <= usize::from(device_max));
            let start = *file_offset as usize;
            let end = start + data.len();
            prop_assert!(end <= offered.read_all().unwrap().len());
            prop_assert_eq!(&data[..], &offered.read_all().unwrap()[start..end]);
        }
    }
    Ok(())
}
