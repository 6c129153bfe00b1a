-- Version 12: account protection (issue 19; SQLite's version 10). When a login's password
-- was last set (for `login.password_max_age`; logins from before are counted from this
-- migration), its app passwords (SMTP credentials: the SHA-256 of a random secret, named,
-- each with its last use), and its second factor (the TOTP secret, the last time step used,
-- so a code is accepted once) with its recovery codes (SHA-256 of random codes, each usable once).
ALTER TABLE mailboxes ADD COLUMN password_changed_at BIGINT;
UPDATE mailboxes SET password_changed_at = (extract(epoch FROM now()) * 1000)::bigint
 WHERE password_hash IS NOT NULL;
CREATE TABLE app_passwords (
    address      TEXT NOT NULL,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    last_used_ip TEXT,
    PRIMARY KEY (address, name)
);
CREATE UNIQUE INDEX app_passwords_hash ON app_passwords (address, secret_hash);
CREATE TABLE second_factors (
    address    TEXT PRIMARY KEY,
    secret     BYTEA NOT NULL,
    enabled_at BIGINT NOT NULL,
    last_step  BIGINT
);
CREATE TABLE recovery_codes (
    address   TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (address, code_hash)
);
