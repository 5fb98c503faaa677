//! What the daemon's tasks share at run time: the replication state and its
//! stream counters ([`Shared`], written by the events2 supervisor, read by
//! the metrics exporter, the API, the throttle, the pressure publisher and
//! the LINSTOR reporter), and the token that stops them all
//! ([`CancellationToken`]: the daemon cancels it on shutdown, or drops the
//! guard holding it).
//!
//! A leaf: it depends on the model alone, so no reader of the state depends
//! on the events2 driver (`drbd`) to reach it.

mod shared;

pub use shared::{AliveGuard, ChangedSince, DrbdState, Shared, StreamStats};
pub use tokio_util::sync::CancellationToken;
