//! A transcript of one whole session, kept as a reviewed file: any change in what goes over the
//! air shows up as a diff. Regenerate with UPDATE_TRANSCRIPTS=1 after checking the change.

use super::*;

fn label(bytes: &[u8]) -> String {
    let Ok(frame) = OtaFrame::decode(bytes) else {
        return "undecodable".into();
    };
    match &frame.command {
        OtaCommand::QueryNextImageRequest(q) => {
            format!(
                "QueryNextImageRequest version={:#010x}",
                q.current_file_version
            )
        }
        OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success {
            file_version,
            image_size,
            ..
        }) => {
            format!("QueryNextImageResponse SUCCESS version={file_version:#010x} size={image_size}")
        }
        OtaCommand::QueryNextImageResponse(r) => format!("QueryNextImageResponse {:?}", r.status()),
        OtaCommand::ImageBlockRequest(b) => format!(
            "ImageBlockRequest offset={} max={}",
            b.file_offset, b.maximum_data_size
        ),
        OtaCommand::ImagePageRequest(p) => format!(
            "ImagePageRequest offset={} page={} spacing={}ms",
            p.file_offset, p.page_size, p.response_spacing
        ),
        OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
            file_offset, data, ..
        }) => format!(
            "ImageBlockResponse SUCCESS offset={file_offset} len={}",
            data.len()
        ),
        OtaCommand::ImageBlockResponse(r) => format!("ImageBlockResponse {:?}", r.status()),
        OtaCommand::UpgradeEndRequest(u) => format!("UpgradeEndRequest {:?}", u.status),
        OtaCommand::UpgradeEndResponse(u) => format!(
            "UpgradeEndResponse current_time={} upgrade_time={}",
            u.current_time, u.upgrade_time
        ),
        OtaCommand::ImageNotify(n) => format!("ImageNotify jitter={}", n.query_jitter),
        OtaCommand::DefaultResponse(d) => format!("DefaultResponse {:?}", d.status),
        other => format!("{other:?}"),
    }
}

fn render(sim: &Sim) -> String {
    sim.transcript
        .iter()
        .map(|(t, from_server, nwk, bytes)| {
            let arrow = if *from_server {
                "server -> "
            } else {
                "server <- "
            };
            format!(
                "{:>9.3}s {arrow}0x{nwk:04x}  {}\n           {}\n",
                (*t - sim.t0).as_secs_f64(),
                label(bytes),
                hex(bytes)
            )
        })
        .collect()
}

fn check_transcript(name: &str, got: &str) {
    let path = crate::common::vectors_dir().join("server").join(name);
    if std::env::var_os("UPDATE_TRANSCRIPTS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        panic!(
            "transcript {name} differs from line {}:\n{}",
            line + 1,
            got.lines()
                .skip(line)
                .take(6)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn transcript_of_a_small_upgrade_with_a_page_and_a_busy_server() {
    let img = image(NEW, 180, 40);
    let config = ServerConfig {
        max_concurrent_transfers: 1,
        ..ServerConfig::default()
    };
    let mut sim = Sim::new(config, vec![img]);
    let mut first = device(0x1001, 0xAA01);
    first.hooks.fetch = Fetch::Pages {
        page_size: 100,
        response_spacing_ms: 50,
    };
    sim.add(first);
    let mut second = device(0x1002, 0xAA02);
    second.hooks.request_delay = Duration::from_millis(100);
    sim.add(second);
    assert!(sim.run_until(Duration::from_secs(600), |s| {
        s.count_events(|e| matches!(e, ServerEvent::UpgradeConfirmed { .. })) == 2
    }));
    check_transcript("transcript-small-upgrade.txt", &render(&sim));
}
