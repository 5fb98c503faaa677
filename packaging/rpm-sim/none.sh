# drbd-agent-sim installs one file; nothing to do.
:
