//! Fuzz entry point for the status socket's protocol (issue 18): one request line as a local
//! client could send it.

use crate::daemon::socket::Request;

/// Parses `data` as a socket request. It may not panic; an accepted request survives a round
/// trip, and only `status` is read-only (every other request needs the control privilege).
pub fn request(data: &[u8]) {
    let Ok(request) = serde_json::from_slice::<Request>(data) else {
        return;
    };
    assert_eq!(request.is_control(), !matches!(request, Request::Status));
    if let Request::PermitJoin { seconds } = request {
        // The wire type bounds it to a u8; the daemon refuses 255 itself.
        assert!(u16::from(seconds) <= 255);
    }
    if let Ok(text) = serde_json::to_vec(&request) {
        assert!(matches!(serde_json::from_slice::<Request>(&text), Ok(again) if again == request));
    }
}
