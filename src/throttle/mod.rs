//! Resync throttle (in progress).
