-- Version 3: cluster-wide connection limits. A node connecting to a destination first takes
-- one of its `max_connections_per_destination` slots: a row leased to the node until
-- `lease_until` (renewed while the connection lives, reset when it closes). A slot whose lease
-- ended is free again, so a dead node's connections stop counting once their leases end.
CREATE TABLE destination_slots (
    destination TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    owner       TEXT,
    lease_until BIGINT NOT NULL,
    PRIMARY KEY (destination, slot)
);
CREATE INDEX destination_slots_owner ON destination_slots (owner) WHERE owner IS NOT NULL;
