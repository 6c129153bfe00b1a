-- Version 6: secrets every node must share, such as the key that signs return paths (a bounce
-- reaching any node must verify against mail any node sent). The first node to start stores
-- its key; the others take it from here.
CREATE TABLE cluster_secrets (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
