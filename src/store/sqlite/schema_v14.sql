-- Version 14: the learning filter for mailer-daemon mail (issue 19, item 5; PostgreSQL's
-- version 16). Token counts per label, the trained totals, and the samples kept so that a
-- label can be changed later. Bounded by `bounce.learner_max_tokens` (pruned by usefulness:
-- the least seen, then the oldest) and a fixed number of samples.
CREATE TABLE learner_tokens (
    token TEXT PRIMARY KEY,
    forged INTEGER NOT NULL DEFAULT 0,
    genuine INTEGER NOT NULL DEFAULT 0,
    last_seen INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX learner_tokens_usefulness ON learner_tokens ((forged + genuine), last_seen);
CREATE TABLE learner_totals (
    label TEXT PRIMARY KEY CHECK (label IN ('forged', 'genuine')),
    messages INTEGER NOT NULL DEFAULT 0
);
INSERT INTO learner_totals (label, messages) VALUES ('forged', 0), ('genuine', 0);
CREATE TABLE learner_samples (
    digest TEXT PRIMARY KEY,
    bounce_id TEXT UNIQUE,
    original TEXT,
    label TEXT CHECK (label IN ('forged', 'genuine')),
    source TEXT NOT NULL CHECK (source IN ('auto', 'operator')),
    tokens TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX learner_samples_at ON learner_samples (at);
