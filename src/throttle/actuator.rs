//! The actuator: `drbdsetup peer-device-options` on the SyncTarget node,
//! and `drbdsetup show --json` to read the options in force. Thin I/O around
//! the pure command lines of [`super::options`].
//!
//! The rate is set on the SyncTarget side (DRBD paces resync requests
//! there). DRBD also applies c-min-rate on the SyncSource, per resync read,
//! when the peer is not Primary; there only `--c-min-rate` is set (to 0) and
//! given back (see [`super::sources`]). `c-plan-ahead` is never touched.

use tokio::sync::watch;

use crate::drbd::{CommandError, DrbdTools};

use super::options::{
    extract_peer_options, restore_args, throttle_args, PeerKey, PeerOptions, ShowError,
};
use super::rate::KibPerSec;
use super::sources::{source_args, source_restore_args};

/// Why reading or setting options failed.
#[derive(Debug, thiserror::Error)]
pub enum ActuatorError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Show(#[from] ShowError),
}

/// Runs the DRBD tools for the throttle.
#[derive(Debug, Clone)]
pub struct Actuator {
    /// The tools in force (a configuration reload may switch them).
    tools: watch::Receiver<DrbdTools>,
}

impl Actuator {
    pub fn new(tools: DrbdTools) -> Self {
        // With the sender gone the receiver keeps the last value for good.
        Self::following(watch::channel(tools).1)
    }

    /// An actuator that always uses the latest tools sent on `tools`.
    pub fn following(tools: watch::Receiver<DrbdTools>) -> Self {
        Self { tools }
    }

    fn tools(&self) -> DrbdTools {
        self.tools.borrow().clone()
    }

    /// The options in force (`drbdsetup show --json RES`).
    pub async fn read(&self, key: &PeerKey) -> Result<PeerOptions, ActuatorError> {
        let out = self
            .tools()
            .drbdsetup(&["show", "--json", key.resource.as_str()])
            .await?;
        Ok(extract_peer_options(&out.stdout, key)?)
    }

    /// Sets the agent's rate and neutralises c-min-rate.
    pub async fn set(&self, key: &PeerKey, rate: KibPerSec) -> Result<(), ActuatorError> {
        self.run(throttle_args(key, rate)).await
    }

    /// Puts the recorded options back.
    pub async fn restore(
        &self,
        key: &PeerKey,
        recorded: &PeerOptions,
    ) -> Result<(), ActuatorError> {
        self.run(restore_args(key, recorded)).await
    }

    /// SyncSource side: sets c-min-rate to 0, nothing else.
    pub async fn set_source(&self, key: &PeerKey) -> Result<(), ActuatorError> {
        self.run(source_args(key)).await
    }

    /// SyncSource side: puts the recorded c-min-rate back.
    pub async fn restore_source(
        &self,
        key: &PeerKey,
        c_min_rate_kib: u64,
    ) -> Result<(), ActuatorError> {
        self.run(source_restore_args(key, c_min_rate_kib)).await
    }

    async fn run(&self, args: Vec<String>) -> Result<(), ActuatorError> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.tools().drbdsetup(&args).await?;
        Ok(())
    }
}
