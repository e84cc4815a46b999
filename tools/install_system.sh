#!/usr/bin/env bash
# Placeholder until the daemon lands (issue 4): the service install is not available yet.
echo "install.sh: --system is not available yet" >&2
exit 1
