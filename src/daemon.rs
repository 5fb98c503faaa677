//! Wiring of the daemon.
