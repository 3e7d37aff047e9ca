//! Methods other than GET and HEAD: 405 with Allow.

use super::Builder;

pub(super) fn add(b: &mut Builder<'_>) {
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let case = b.error(
            &format!("405: {method}"),
            method,
            "/bytes.bin",
            &[],
            405,
            "Method Not Allowed",
        );
        case.expect.push(("allow", "GET, HEAD".into()));
    }
}
