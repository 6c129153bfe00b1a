-- Version 15: the compromised-account detector (issue 19; SQLite's version 13). Per sending
-- account (an SMTP login `user:ADDRESS`, an API key `apikey:ID`): when it was first seen, its
-- messages and distinct recipient domains per hour (the baseline), and the networks and From
-- domains it used. Shared by the cluster's nodes.
CREATE TABLE account_baselines (
    account    TEXT PRIMARY KEY,
    first_seen BIGINT NOT NULL
);
CREATE TABLE account_hours (
    account  TEXT NOT NULL,
    hour     BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    domains  BIGINT NOT NULL,
    PRIMARY KEY (account, hour)
);
CREATE TABLE account_seen (
    account    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    PRIMARY KEY (account, kind, value)
);
