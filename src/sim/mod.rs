//! The node simulator: scripted stories printed as drbdsetup would.

pub mod story;
