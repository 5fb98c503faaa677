# drbd-agent %postun: $1 = 0 after removal, 1 or more after an upgrade
# (then the running agent is restarted onto the new binary).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart drbd-agent.service >/dev/null 2>&1 || :
    fi
fi
