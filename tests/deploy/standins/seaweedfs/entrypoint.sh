#!/bin/sh
# As in the real image: the arguments are weed's (server, -dir=..., -s3, ...).
exec /opt/moto/bin/python /usr/bin/weed.py "$@"
