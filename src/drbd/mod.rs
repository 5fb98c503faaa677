//! The drbdsetup / drbdadm driver: one-shot commands with timeouts, the
//! supervised `drbdsetup events2` stream feeding the model, and the periodic
//! reconcile that compares the model with a fresh dump.

mod lines;
mod lost;
mod reconcile;
mod runner;
mod supervisor;

pub use crate::backoff::{Backoff, BackoffPolicy};
pub use crate::runtime::{AliveGuard, ChangedSince, DrbdState, Shared, StreamStats};
pub use lines::{Line, LineReader};
pub use lost::{LostBudget, LOST_DUMPS_PER_WINDOW, LOST_WINDOW};
pub use reconcile::{compare, describe, model_from_dump, Difference, Dump};
pub use runner::{run_command, CommandError, CommandOutput, DrbdTools, DEFAULT_COMMAND_TIMEOUT};
pub use supervisor::{
    apply_line, supervise, supervise_following, LineOutcome, LostDumpError, StreamEnd,
    SupervisorOptions, DUMP_ARGS, EVENTS2_ARGS,
};
