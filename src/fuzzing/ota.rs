//! Fuzz entry points for the `ota` module.

use crate::ota::{InspectReport, OtaFile, OtaHeader, payload};

/// Parses `data` as an OTA file and checks the invariants of a successful parse: the served image
/// is `image_size` bytes from the magic, every sub-element lies inside it, the header re-encodes
/// to itself, the report renders (including the integrity checks), and the image alone parses to the same header and elements.
pub fn parse_file(data: &[u8]) {
    let _ = payload::check(data);
    let Ok(file) = OtaFile::parse(data.to_vec()) else {
        return;
    };
    let header = file.header();
    let image = file.image_bytes();
    assert_eq!(image.len(), header.image_size as usize);
    assert!(image.starts_with(&crate::ota::OTA_MAGIC));
    assert_eq!(
        file.magic_offset() + image.len() + file.trailing_bytes(),
        data.len()
    );
    let image_end = file.magic_offset() + image.len();
    for element in file.sub_elements() {
        assert!(element.data_offset + element.length as usize <= image_end);
        assert_eq!(
            file.sub_element_data(element).len(),
            element.length as usize
        );
    }

    let mut encoded = Vec::new();
    header.encode(&mut encoded);
    assert_eq!(OtaHeader::decode(&encoded).ok().as_ref(), Some(header));

    let report = InspectReport::from(&file);
    let _ = report.to_string();
    assert_eq!(report.offered, file.verify_integrity().is_ok());
    assert!(serde_json::to_string(&report).is_ok());

    let Ok(alone) = OtaFile::parse(image.to_vec()) else {
        unreachable!("the served image must parse on its own");
    };
    assert_eq!(alone.header(), header);
    assert_eq!(alone.framing().name(), file.framing().name());
    let tags = |f: &OtaFile| -> Vec<(u16, u32)> {
        f.sub_elements()
            .iter()
            .map(|e| (e.tag.0, e.length))
            .collect()
    };
    assert_eq!(tags(&alone), tags(&file));
}
