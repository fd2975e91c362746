"""A scheduler whose lease lasts ``TTL`` seconds, so that a test pauses it past its lease in
a few seconds: ``python -m tests.faults.shortlease NATS_URL CONFIG TTL [SHARDS]``. The command line
keeps the deployment's TTL (the lease bucket's, which every scheduler shares)."""

from __future__ import annotations

import sys

from events.streams import Tuning
from runtime import cliopts, logs
from services.scheduler.shards import main
from services.scheduler.state import SchedulerOptions

if __name__ == "__main__":
    nats_url, config, ttl = sys.argv[1], sys.argv[2], float(sys.argv[3])
    shards = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    logs.setup("info")  # the log says when the lease is lost and held again
    tuning = Tuning(ack_wait=3.0)
    sys.exit(
        cliopts.run(main(SchedulerOptions(nats_url, config, tuning, lease_ttl=ttl, shards=shards)))
    )
