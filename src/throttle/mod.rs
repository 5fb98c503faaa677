//! Resync throttle: hold the application's write latency at its target and
//! let the resync have the rest.
//!
//! The law and its helpers are pure: [`Controller::step`] takes a [`LawPolicy`] and an
//! [`Observation`] (time passes as `obs.elapsed` and
//! `obs.reduced_redundancy_for`) and returns a [`Decision`]; [`allocate`]
//! splits one budget among resyncs sharing a disk or NIC;
//! [`ThrottleConfig`] is the `[throttle]` section with [`ThrottleConfig::validate`]
//! and [`ThrottleConfig::policy_for`]. Reading signals and running
//! `drbdsetup` belong to the edges: [`Actuator`] (drbdsetup
//! `peer-device-options` / `show --json`), [`JournalStore`] (the journal of
//! the options in force before the agent took charge) and [`Throttler`]
//! (the loop: diskstats → controller → actuator, state in [`ThrottleStatus`]).
//! Where this node is SyncSource (or PausedSyncS), the loop only sets
//! `--c-min-rate=0` ([`sync_sources`], [`source_args`]), journaled and
//! given back like the SyncTarget side. [`Throttler::run_reloadable`] takes
//! new `[throttle]` sections (SIGHUP) from a watch channel.
//!
//! # The law (one step per interval, default 1 s)
//!
//! A latency-headroom controller in the spirit of LEDBAT and blk-iolatency,
//! multiplicative in the rate, with feed-forward:
//!
//! 1. **Bounds.** ceiling = min(max-rate, the configured c-max-rate); floor =
//!    min-rate × 2^(reduced-redundancy time / floor-doubling) (the period
//!    halved with ≤ 1 UpToDate replica left), capped at floor-cap, never
//!    above the ceiling. The rate is always an integer in [floor, ceiling],
//!    ≥ 1 KiB/s (0 would mean "unlimited" to DRBD).
//! 2. **Feed-forward.** If foreground throughput rose by more than 15 % of
//!    its smoothed level (and 2 % of the ceiling), the resync yields the rise
//!    one for one: the disk's total load stays where it was, so the latency
//!    stays where it was — whatever the disk's capacity, which we never have
//!    to estimate. (If the latency was not known to be fine before — e.g.
//!    after an idle spell at full speed — a far miss is cut as in 4 too.) An
//!    app queue depth ≥ 2× the previous interval (and ≥ 1) cuts 25 %.
//! 3. **Idle.** No application writes: ×4 per interval, at least a quarter
//!    of the ceiling at once (full speed in ≤ 2 intervals).
//! 4. **Far miss.** One sample ≥ 2× target: rate × min(½, target/latency) —
//!    in M/M/1 the idle share must grow by latency/target.
//! 5. **Feedback.** The latency is smoothed (EWMA, weight 0.3). The set
//!    point is the target minus twice the samples' smoothed absolute
//!    deviation (at most 30 % under the target): the target is a limit for
//!    each interval, so a noisy signal is aimed under it. Then, with a ±10 %
//!    hold band around the set point:
//!    over the band (and this sample over the set point) → cut by
//!    0.5 × excess, between 5 % and 50 %; under the band (and this sample
//!    under) → grow by 0.5 × headroom, at most 25 %. Within ±25 % of the set
//!    point the rate moves only after 2 intervals without change, so the
//!    filter has seen the last move (no limit cycles from filter lag).
//!    A single sample over the band is not acted on (`Unconfirmed`).
//! 6. **Anti-windup.** After 3 intervals with DRBD resyncing at less than
//!    half the setpoint (`dbdt1`; the bottleneck is the network or the
//!    source), the rate stops growing.
//!
//! Without an app latency signal, the backing device's latency stands in
//! while the app is busy — on this node, or on the Primary whose replicated
//! writes land on this node's backing device (a Secondary SyncTarget, see
//! [`backing`]); with none at all the rate holds. `Statistic::P99`
//! compares a p99 with the target, estimated as 4.6 × mean when only the
//! mean is known (exponential tail).
//!
//! # The queue model (in front of all of the above)
//!
//! The feedback law climbs at most 25 % an interval and aims 15–30 % under
//! the target. [`model`] fits the shared bottleneck online instead: each
//! interval's (foreground + replicated + resync load, latency) is a sample
//! of `L = S / (1 − x/C)`, a straight line in `1/L` fitted with
//! forgetting. `law_model.rs` uses the fit: a set point from the measured
//! noise (the target itself on a quiet disk), a jump to the predicted
//! operating point when taking charge, after a foreground step (either way)
//! and after a hard miss, and trims towards the bias-corrected point in
//! between; before the first fit it probes by growing the load 10 %, 20 %,
//! 30 % … an interval. Without a usable fit (too few samples, no load
//! spread, not a queue, too uncertain, nonsense input) the rules 2–6 above
//! decide, and [`ModelReport::fallback`] says why. [`Controller::feedback_only`]
//! is the law without the model (for comparison).
//!
//! # Several resyncs on one disk or NIC
//!
//! Run one controller on the shared signal with floor = Σ floors and
//! ceiling = Σ ceilings; [`allocate`] gives each its floor, then the rest in
//! priority order (fewest UpToDate replicas, then least out of sync), each
//! up to its ceiling.

mod actuator;
mod allocate;
pub mod backing;
mod glob;
mod journal;
mod law;
mod law_bounds;
mod law_model;
pub mod model;
mod options;
mod policy;
mod rate;
mod runner;
mod sources;
mod targets;

pub use actuator::{Actuator, ActuatorError};
pub use allocate::{allocate, Allocation, Claim};
pub use glob::glob_match;
pub use journal::{Journal, JournalError, JournalIoError, JournalStore, Loaded, JOURNAL_FILE};
pub use law::*;
pub use law_model::{
    foreground_load, jump_rate, operating_rate, secant_load, setpoint, JumpTrigger, ModelReport,
    MEAN_TOLERANCE, NOISE_SIGMAS,
};
pub use model::{Fit, QueueModel, Rejected, Unfit};
pub use options::{
    extract_peer_options, is_ours, parse_kib, restore_args, throttle_args, PeerKey, PeerOptions,
    ShowError, DEFAULT_C_MAX_RATE, DEFAULT_C_MIN_RATE,
};
pub use policy::{
    parse_days, parse_time_of_day, Days, EffectivePolicy, Mode, PolicyEntry, PolicyOrigins,
    ScheduleError, ThrottleConfig, ThrottleConfigError, TimeOfDay, Window, INTERVAL_RANGE,
    TARGET_RANGE,
};
pub use rate::{parse_rate, KibPerSec, RateError};
pub use runner::{
    PeerPolicy, PeerStatus, SharedThrottleStatus, SourceStatus, ThrottleOptions, ThrottleStatus,
    Throttler,
};
pub use sources::{is_resync_source, source_args, source_restore_args, sync_sources};
pub use targets::{observation, sync_targets, to_restore, Target};
