//! The learning filter's SQL on SQLite: one sample trained (in the writer thread's
//! transaction) and the model read for one prediction (on the reader connection).
//!
//! Must not: decide what a sample does to the counts (`store::learner::step` does).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::store::learner::{
    Label, Learned, LearnerLimits, Model, Sample, TokenCount, TrainSource, kept, step, to_prune,
};
use crate::store::{MessageId, StoreError};
use crate::time::Timestamp;

type Stored = (Option<Label>, TrainSource, Vec<String>);

fn label_of(s: Option<String>) -> Result<Option<Label>, StoreError> {
    s.map(|l| Label::parse(&l).ok_or_else(|| StoreError::Corrupt(format!("learner sample label `{l}`")))).transpose()
}

fn source_of(s: &str) -> Result<TrainSource, StoreError> {
    TrainSource::parse(s).ok_or_else(|| StoreError::Corrupt(format!("learner sample source `{s}`")))
}

fn tokens_of(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("learner sample tokens: {e}")))
}

/// Runs inside the writer's savepoint.
pub(super) fn learn(tx: &Transaction<'_>, s: &Sample, limits: &LearnerLimits) -> Result<Learned, StoreError> {
    let row: Option<(Option<String>, String, String)> = tx
        .prepare_cached("SELECT label, source, tokens FROM learner_samples WHERE digest = ?1")?
        .query_row([&s.digest], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let stored: Option<Stored> = match row {
        Some((label, source, tokens)) => Some((label_of(label)?, source_of(&source)?, tokens_of(&tokens)?)),
        None => None,
    };
    let state = stored.as_ref().map(|(l, src, _)| (*l, *src));
    let st = step(state, s.label, s.source);
    // A stored sample is counted with the tokens it was first counted with.
    let mut tokens = stored.as_ref().map_or_else(|| s.tokens.clone(), |(_, _, t)| t.clone());
    tokens.sort();
    tokens.dedup();
    let at = s.at.millis();
    if let Some(old) = st.untrain {
        count(tx, &tokens, old, -1, at)?;
    }
    if let Some(new) = st.train {
        count(tx, &tokens, new, 1, at)?;
    }
    let (label, source) = kept(state, &st, s.source);
    if stored.is_none() {
        let json = serde_json::to_string(&tokens).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.prepare_cached(
            "INSERT INTO learner_samples (digest, bounce_id, original, label, source, tokens, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            s.digest,
            s.bounce.as_ref().map(|b| &b.0),
            s.original.as_ref().map(|o| &o.0),
            label.map(Label::as_str),
            source.as_str(),
            json,
            at
        ])?;
    } else {
        tx.prepare_cached(
            "UPDATE learner_samples SET label = ?2, source = ?3, original = coalesce(original, ?4) WHERE digest = ?1",
        )?
        .execute(params![
            s.digest,
            label.map(Label::as_str),
            source.as_str(),
            s.original.as_ref().map(|o| &o.0)
        ])?;
    }
    prune(tx, limits)?;
    Ok(st.outcome)
}

/// Adds `delta` to the counts of `tokens` under `label` and to its total.
fn count(tx: &Transaction<'_>, tokens: &[String], label: Label, delta: i64, at: i64) -> Result<(), StoreError> {
    let (f, g) = match label {
        Label::Forged => (delta, 0),
        Label::Genuine => (0, delta),
    };
    let mut up = tx.prepare_cached(
        "INSERT INTO learner_tokens (token, forged, genuine, last_seen) VALUES (?1, max(?2, 0), max(?3, 0), ?4)
         ON CONFLICT (token) DO UPDATE SET forged = max(forged + ?2, 0), genuine = max(genuine + ?3, 0),
                                          last_seen = max(last_seen, ?4)",
    )?;
    let mut gone = tx.prepare_cached("DELETE FROM learner_tokens WHERE token = ?1 AND forged = 0 AND genuine = 0")?;
    for t in tokens {
        up.execute(params![t, f, g, at])?;
        if delta < 0 {
            gone.execute([t])?;
        }
    }
    tx.prepare_cached("UPDATE learner_totals SET messages = max(messages + ?1, 0) WHERE label = ?2")?
        .execute(params![delta, label.as_str()])?;
    Ok(())
}

/// Keeps the model within `limits`: the least useful tokens (seen least often, then longest
/// ago) go first; the oldest samples are forgotten (their counts stay).
fn prune(tx: &Transaction<'_>, limits: &LearnerLimits) -> Result<(), StoreError> {
    let size: i64 = tx.prepare_cached("SELECT count(*) FROM learner_tokens")?.query_row([], |r| r.get(0))?;
    let n = to_prune(size.max(0) as u64, limits);
    if n > 0 {
        tx.prepare_cached(
            "DELETE FROM learner_tokens WHERE token IN
               (SELECT token FROM learner_tokens ORDER BY forged + genuine, last_seen LIMIT ?1)",
        )?
        .execute([n as i64])?;
    }
    let samples: i64 = tx.prepare_cached("SELECT count(*) FROM learner_samples")?.query_row([], |r| r.get(0))?;
    let over = samples.max(0) as u64;
    if over > limits.max_samples {
        tx.prepare_cached(
            "DELETE FROM learner_samples WHERE digest IN (SELECT digest FROM learner_samples ORDER BY at LIMIT ?1)",
        )?
        .execute([(over - limits.max_samples) as i64])?;
    }
    Ok(())
}

pub(super) fn sample(c: &Connection, bounce: &MessageId) -> Result<Option<Sample>, StoreError> {
    let row = c
        .prepare_cached("SELECT digest, original, label, source, tokens, at FROM learner_samples WHERE bounce_id = ?1")?
        .query_row([&bounce.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .optional()?;
    let Some((digest, original, label, source, tokens, at)) = row else { return Ok(None) };
    Ok(Some(Sample {
        digest,
        bounce: Some(bounce.clone()),
        original: original.map(MessageId),
        tokens: tokens_of(&tokens)?,
        label: label_of(label)?,
        source: source_of(&source)?,
        at: Timestamp(at),
    }))
}

pub(super) fn model(c: &Connection, tokens: &[String]) -> Result<Model, StoreError> {
    let mut m = Model::default();
    let mut totals = c.prepare_cached("SELECT label, messages FROM learner_totals")?;
    let rows = totals.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (label, n) = row?;
        match label_of(Some(label))? {
            Some(Label::Forged) => m.forged_messages = n.max(0) as u64,
            Some(Label::Genuine) => m.genuine_messages = n.max(0) as u64,
            None => {}
        }
    }
    let size: i64 = c.prepare_cached("SELECT count(*) FROM learner_tokens")?.query_row([], |r| r.get(0))?;
    m.size = size.max(0) as u64;
    let mut one = c.prepare_cached("SELECT forged, genuine FROM learner_tokens WHERE token = ?1")?;
    for t in tokens {
        if m.tokens.contains_key(t) {
            continue;
        }
        let counts = one.query_row([t], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).optional()?;
        if let Some((f, g)) = counts {
            m.tokens.insert(t.clone(), TokenCount { forged: f.max(0) as u64, genuine: g.max(0) as u64 });
        }
    }
    Ok(m)
}
