-- Version 13: the compromised-account detector (issue 19). Per sending account (an SMTP login
-- `user:ADDRESS`, an API key `apikey:ID`): when it was first seen, its messages and distinct
-- recipient domains per hour (the baseline), and the networks and From domains it used.
CREATE TABLE account_baselines (
    account    TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL
);
CREATE TABLE account_hours (
    account  TEXT NOT NULL,
    hour     INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    domains  INTEGER NOT NULL,
    PRIMARY KEY (account, hour)
);
CREATE TABLE account_seen (
    account    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (account, kind, value)
);
