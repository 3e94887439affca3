#!/bin/sh
# Reports whether the app's settings are in place.
if [ -r "$(dirname "$0")/app.conf" ]; then
    echo healthy
else
    echo "missing app.conf" >&2
    exit 1
fi
