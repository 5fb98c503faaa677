//! The actuator: `drbdsetup peer-device-options` on the SyncTarget node,
//! and `drbdsetup show --json` to read the options in force. Thin I/O around
//! the pure command lines of [`super::options`].
//!
//! Only the SyncTarget side is acted on (DRBD paces resync requests there).
//! DRBD also applies c-min-rate on the SyncSource, per resync read, when the
//! peer is not Primary; neutralising it there is the job of the agent on the
//! source node (not done yet: this agent only acts where it is SyncTarget).
//! `c-plan-ahead` is never touched.

use crate::drbd::{CommandError, DrbdTools};

use super::options::{
    extract_peer_options, restore_args, throttle_args, PeerKey, PeerOptions, ShowError,
};
use super::rate::KibPerSec;

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
    tools: DrbdTools,
}

impl Actuator {
    pub fn new(tools: DrbdTools) -> Self {
        Self { tools }
    }

    /// The options in force (`drbdsetup show --json RES`).
    pub async fn read(&self, key: &PeerKey) -> Result<PeerOptions, ActuatorError> {
        let out = self
            .tools
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

    async fn run(&self, args: Vec<String>) -> Result<(), ActuatorError> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.tools.drbdsetup(&args).await?;
        Ok(())
    }
}
