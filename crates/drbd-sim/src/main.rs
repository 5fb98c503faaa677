//! `drbd-sim`: the DRBD simulator (see `drbd_sim`). Also runs as
//! `drbdsetup`/`drbdadm` when invoked through a symlink of that name.
fn main() {
    std::process::exit(drbd_sim::cli::main());
}
