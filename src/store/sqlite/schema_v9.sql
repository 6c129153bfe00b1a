-- Version 9: outbound TLS policies (issue 20). `mta_sts_policies` caches each recipient
-- domain's MTA-STS policy as fetched (the body is parsed again when read), with the TXT id it
-- was fetched under and when its max_age runs out; `tls_results` keeps the last TLS result of
-- a delivery session per domain, for `mailerd tls status`.
CREATE TABLE mta_sts_policies (
    domain     TEXT PRIMARY KEY,
    policy_id  TEXT NOT NULL,
    body       TEXT NOT NULL,
    fetched_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE tls_results (
    domain TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    result TEXT NOT NULL,
    detail TEXT NOT NULL,
    at     INTEGER NOT NULL
);
