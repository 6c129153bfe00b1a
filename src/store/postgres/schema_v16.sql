-- Version 16: the learning filter for mailer-daemon mail (issue 19, item 5; SQLite's
-- version 14). Token counts per label, the trained totals, and the samples kept so that a
-- label can be changed later; shared by every node of the cluster.
CREATE TABLE learner_tokens (
    token text PRIMARY KEY,
    forged bigint NOT NULL DEFAULT 0,
    genuine bigint NOT NULL DEFAULT 0,
    last_seen bigint NOT NULL
);
CREATE INDEX learner_tokens_usefulness ON learner_tokens ((forged + genuine), last_seen);
CREATE TABLE learner_totals (
    label text PRIMARY KEY CHECK (label IN ('forged', 'genuine')),
    messages bigint NOT NULL DEFAULT 0
);
INSERT INTO learner_totals (label, messages) VALUES ('forged', 0), ('genuine', 0);
CREATE TABLE learner_samples (
    digest text PRIMARY KEY,
    bounce_id text UNIQUE,
    original text,
    label text CHECK (label IN ('forged', 'genuine')),
    source text NOT NULL CHECK (source IN ('auto', 'operator')),
    tokens text[] NOT NULL,
    at bigint NOT NULL
);
CREATE INDEX learner_samples_at ON learner_samples (at);
