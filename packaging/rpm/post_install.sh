# drbd-agent %post: $1 = 1 on a fresh install, 2 or more on an upgrade
# (the restart on upgrade happens in %postun, once the old files are gone).
# The state directory is made here (cargo-generate-rpm cannot package an
# empty directory); the unit's StateDirectory= would make it too.
install -d -m 0750 /var/lib/drbd-agent
if [ "$1" -eq 1 ]; then
    systemctl enable drbd-agent.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || :
        systemctl start drbd-agent.service >/dev/null 2>&1 || :
    fi
fi
