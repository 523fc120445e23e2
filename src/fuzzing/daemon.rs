//! Fuzz entry points for what the daemon reads back from `state_dir`: the history log and the
//! installer's decisions (`control.json`).

use crate::daemon::history::{MAGIC, decode_log, encode_record};
use crate::server::ControlState;

/// Decodes `data` as a history segment (as is, and behind the magic). It must never panic; the
/// whole records plus the ignored tail must account for every byte, and the records must
/// encode back to exactly the bytes they were read from.
pub fn history_log(data: &[u8]) {
    let mut framed = MAGIC.to_vec();
    framed.extend_from_slice(data);
    for input in [data, framed.as_slice()] {
        if let Ok(decoded) = decode_log(input) {
            assert_eq!(decoded.valid_len + decoded.ignored_bytes, input.len());
            let mut again = MAGIC.to_vec();
            for record in &decoded.records {
                again.extend(encode_record(record));
            }
            let reread = decode_log(&again).map(|d| d.records);
            assert_eq!(reread.as_ref(), Ok(&decoded.records));
        }
    }
    // The control state: parsing never panics, and what parses round-trips.
    if let Ok(state) = serde_json::from_slice::<ControlState>(data) {
        let text = serde_json::to_vec(&state).unwrap_or_default();
        assert_eq!(
            serde_json::from_slice::<ControlState>(&text).ok(),
            Some(state)
        );
    }
}
