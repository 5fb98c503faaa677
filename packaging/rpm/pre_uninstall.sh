# drbd-agent %preun: $1 = 0 on removal (stop and disable), 1 on an upgrade.
if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop drbd-agent.service >/dev/null 2>&1 || :
    fi
    systemctl --no-reload disable drbd-agent.service >/dev/null 2>&1 || :
fi
