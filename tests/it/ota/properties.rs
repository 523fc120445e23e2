//! Properties: built files parse back; the daemon library never offers a file that fails verification.

use super::*;

fn arb_file() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(
            (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40)),
            0..4,
        ),
        proptest::collection::vec(any::<u8>(), 0..8),
        proptest::collection::vec(any::<u8>(), 0..8),
        any::<bool>(),
    )
        .prop_map(|(elements, prefix, trailing, hardware)| {
            let mut h = header();
            if hardware {
                h.hardware_versions = Some(HardwareVersions {
                    minimum: HardwareVersion(1),
                    maximum: HardwareVersion(2),
                });
            }
            let mut builder = OtaFileBuilder::new(h).trailing(trailing);
            if !prefix.is_empty() {
                builder = builder.prefix(prefix);
            }
            for (tag, data) in elements {
                builder = builder.sub_element(TagId(tag), data);
            }
            builder.build()
        })
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = OtaFile::parse(bytes);
    }

    #[test]
    fn parse_never_panics_on_mutated_files(
        file in arb_file(),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<proptest::sample::Index>(),
    ) {
        let mut bytes = file;
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(file) = OtaFile::parse(bytes.clone()) {
            prop_assert_eq!(file.image_bytes().len(), file.header().image_size as usize);
            let _ = InspectReport::from(&file).to_string();
        }
        let cut = cut.index(bytes.len() + 1);
        let _ = OtaFile::parse(bytes[..cut].to_vec());
    }

    #[test]
    fn built_files_parse_back(file in arb_file()) {
        let parsed = OtaFile::parse(file.clone()).unwrap();
        prop_assert_eq!(*parsed.framing(), Framing::Complete);
        let end = parsed.magic_offset() + parsed.header().image_size as usize;
        prop_assert_eq!(parsed.image_bytes(), &file[parsed.magic_offset()..end]);
    }
}

#[test]
fn the_daemon_library_never_offers_a_file_that_fails_verification() {
    use zigbee_otad::config::Config;
    use zigbee_otad::daemon::images;

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("images");
    std::fs::create_dir(&folder).unwrap();
    let good = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, gbl())
        .build();
    let mut other = header();
    other.image_type = ImageType(0x00CE);
    let broken = OtaFileBuilder::new(other)
        .sub_element(
            TagId::UPGRADE_IMAGE,
            GblBuilder::new().corrupt_crc().build(),
        )
        .build();
    std::fs::write(folder.join("good.ota"), &good).unwrap();
    std::fs::write(folder.join("broken.ota"), &broken).unwrap();
    let path = crate::common::offline_config(
        dir.path(),
        dir.path(),
        &format!(
            "[[catalog.source]]\nkind = \"directory\"\npath = \"{}\"\n",
            folder.display()
        ),
    );
    let library = images::load(&Config::load(&path).unwrap());
    assert_eq!(library.images.len(), 1, "{:?}", library.skipped);
    assert_eq!(
        library.images[0].read_all().unwrap().as_ref(),
        good.as_slice()
    );
    assert_eq!(library.skipped.len(), 1);
    assert!(
        library.skipped[0].contains("broken.ota: not offered: upgrade image payload is invalid"),
        "the reason names the file and the defect: {}",
        library.skipped[0]
    );
    // The status socket shows it under its source.
    assert_eq!(library.sources[0].skipped_count, 1);
    assert_eq!(library.sources[0].skipped, library.skipped);
}
