//! Property tests: the parser never panics, and every field of a well-formed
//! line survives the parse whatever its neighbours are.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use drbd_model::events2::{parse_line, Body};
use proptest::prelude::*;

const KEYS: &[&str] = &[
    "role",
    "suspended",
    "disk",
    "replication",
    "peer-disk",
    "done",
    "eta",
    "size",
    "received",
    "may_promote",
    "established",
    "blocked",
    "write-ordering",
    "dbdt1",
    "helper",
    "status",
    "future-key",
    "open",
    "client",
    "quorum",
    "connection",
    "congested",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_line(&text);
    }

    #[test]
    fn arbitrary_tokens_never_panic(tokens in proptest::collection::vec("[a-z:,.0-9-]{0,12}", 0..12)) {
        let _ = parse_line(&tokens.join(" "));
    }

    #[test]
    fn any_values_keep_every_field(values in proptest::collection::vec(("[a-zA-Z0-9.,-]{1,10}", 0..KEYS.len()), 0..10)) {
        let mut line = String::from("change peer-device name:r0 peer-node-id:1 conn-name:b volume:0");
        for (value, key) in &values {
            line.push_str(&format!(" {}:{}", KEYS[*key], value));
        }
        let event = parse_line(&line).expect("identity is well formed");
        let Body::Object(object) = event.body else { panic!("object") };
        prop_assert_eq!(object.fields.len(), values.len());
    }
}
