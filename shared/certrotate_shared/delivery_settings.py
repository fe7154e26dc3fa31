"""How a service keeps its work going when something fails: attempts and pauses at a failing
message, restarts of a stopped consumer, how long a SEPM call may take, and the name this
replica holds its leases under."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DeliverySettings(BaseModel):
    """Retries, restarts, SEPM time limits and the replica's identity."""

    max_delivery_attempts: int = Field(
        default=5,
        ge=1,
        description=(
            "Attempts at a message (or a worker's long-running job) that fails with a "
            "permanent or unknown error, before the command is answered with its typed "
            "failure event (a message without one is parked in the DLQ, and that is reported "
            "to its saga). Transient errors (network, timeouts, SEPM 5xx/429, database or "
            "vault unavailable) are not counted: they are waited out with back-off."
        ),
    )
    retry_base_delay_s: float = Field(
        default=0.2,
        gt=0,
        description=(
            "First pause (seconds) between attempts at a failing message; doubles with each "
            "attempt."
        ),
    )
    transient_retry_max_delay_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Longest pause (seconds) before a message held by a transient error is tried "
            "again; its partition waits meanwhile, other partitions flow."
        ),
    )
    consumer_restart_base_s: float = Field(
        default=1.0,
        gt=0,
        description=(
            "First pause (seconds) before a consumer that stopped on an error (a failed "
            "offset commit, a lost broker) is restarted; doubles with each failure. /readyz "
            "fails while it is down."
        ),
    )
    consumer_restart_max_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest pause (seconds) between restarts of a consumer that keeps failing.",
    )
    sepm_connect_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="How long (real seconds) connecting to a SEPM REST API may take.",
    )
    sepm_read_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long (real seconds) a SEPM REST answer may take once connected.",
    )
    instance_id: str = Field(
        default="",
        description=(
            "Identity of this replica in the leases of long-running work; empty = host name,"
            " process id and a random suffix."
        ),
    )
