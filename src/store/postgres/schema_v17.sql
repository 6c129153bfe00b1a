-- Version 17 (SQLite's version 15): TLS reporting (RFC 8460, issue 20). `tls_report_counts` holds the aggregate
-- TLS results of outbound sessions per UTC day, policy domain, policy, result and path: a
-- session adds one to its row's `sessions` (no row per session). A day's rows of a domain are
-- taken (read and deleted in one statement) when its daily report is made.
CREATE TABLE tls_report_counts (
    day          BIGINT NOT NULL,
    domain       TEXT NOT NULL,
    policy_type  TEXT NOT NULL,
    policy_id    TEXT NOT NULL,
    result       TEXT NOT NULL,
    mx_host      TEXT NOT NULL,
    receiving_ip TEXT NOT NULL,
    sending_ip   TEXT NOT NULL,
    policy_body  TEXT NOT NULL,
    sessions     BIGINT NOT NULL,
    PRIMARY KEY (day, domain, policy_type, policy_id, result, mx_host, receiving_ip, sending_ip)
);
