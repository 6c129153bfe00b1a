//! The learning filter's SQL on PostgreSQL: one sample trained in one transaction (the
//! sample row locked, tokens upserted in sorted order so that two nodes training at once
//! cannot deadlock), and the model read for one prediction.
//!
//! Must not: decide what a sample does to the counts (`store::learner::step` does).

use super::pool::Conn;
use crate::store::learner::{
    Label, Learned, LearnerLimits, Model, Sample, TokenCount, TrainSource, kept, step, to_prune,
};
use crate::store::{MessageId, StoreError};
use crate::time::Timestamp;

fn label_of(s: Option<String>) -> Result<Option<Label>, StoreError> {
    s.map(|l| Label::parse(&l).ok_or_else(|| StoreError::Corrupt(format!("learner sample label `{l}`")))).transpose()
}

fn source_of(s: &str) -> Result<TrainSource, StoreError> {
    TrainSource::parse(s).ok_or_else(|| StoreError::Corrupt(format!("learner sample source `{s}`")))
}

const SELECT: &str = "SELECT label, source, tokens FROM learner_samples WHERE digest = $1 FOR UPDATE";
const INSERT: &str = "INSERT INTO learner_samples (digest, bounce_id, original, label, source, tokens, at)
                      VALUES ($1, $2, $3, NULL, $4, $5, $6) ON CONFLICT DO NOTHING";
const UPDATE: &str = "UPDATE learner_samples SET label = $2, source = $3, original = coalesce(original, $4)
                      WHERE digest = $1";
const COUNT: &str = "INSERT INTO learner_tokens (token, forged, genuine, last_seen)
                     SELECT t, GREATEST($2::bigint, 0), GREATEST($3::bigint, 0), $4 FROM unnest($1::text[]) AS u(t)
                     ON CONFLICT (token) DO UPDATE SET
                       forged = GREATEST(learner_tokens.forged + $2::bigint, 0),
                       genuine = GREATEST(learner_tokens.genuine + $3::bigint, 0),
                       last_seen = GREATEST(learner_tokens.last_seen, $4)";
const GONE: &str = "DELETE FROM learner_tokens WHERE token = ANY($1::text[]) AND forged = 0 AND genuine = 0";
const TOTAL: &str = "UPDATE learner_totals SET messages = GREATEST(messages + $1::bigint, 0) WHERE label = $2";
const SIZE: &str = "SELECT count(*) FROM learner_tokens";
const PRUNE: &str = "DELETE FROM learner_tokens WHERE token IN
                       (SELECT token FROM learner_tokens ORDER BY forged + genuine, last_seen LIMIT $1)";
const SAMPLES: &str = "SELECT count(*) FROM learner_samples";
const FORGET: &str =
    "DELETE FROM learner_samples WHERE digest IN (SELECT digest FROM learner_samples ORDER BY at LIMIT $1)";

pub(super) async fn learn(c: &mut Conn, s: &Sample, limits: &LearnerLimits) -> Result<Learned, StoreError> {
    let select = c.stmt(SELECT).await?;
    let insert = c.stmt(INSERT).await?;
    let update = c.stmt(UPDATE).await?;
    let count = c.stmt(COUNT).await?;
    let gone = c.stmt(GONE).await?;
    let total = c.stmt(TOTAL).await?;
    let size = c.stmt(SIZE).await?;
    let prune = c.stmt(PRUNE).await?;
    let samples = c.stmt(SAMPLES).await?;
    let forget = c.stmt(FORGET).await?;
    let mut tokens = s.tokens.clone();
    tokens.sort();
    tokens.dedup();
    let at = s.at.millis();
    let tx = c.client.transaction().await?;
    // A new sample is inserted without a label first, so that concurrent callers serialise
    // on its row; `fresh` says this call made it.
    let bounce = s.bounce.as_ref().map(|b| b.0.clone());
    let original = s.original.as_ref().map(|o| o.0.clone());
    let fresh = tx.execute(&insert, &[&s.digest, &bounce, &original, &s.source.as_str(), &tokens, &at]).await? > 0;
    let row = tx.query_one(&select, &[&s.digest]).await?;
    let stored_tokens: Vec<String> = row.try_get(2)?;
    let state = if fresh { None } else { Some((label_of(row.try_get(0)?)?, source_of(row.try_get::<_, &str>(1)?)?)) };
    let st = step(state, s.label, s.source);
    let mut tokens = stored_tokens;
    tokens.sort();
    tokens.dedup();
    for (label, delta) in [(st.untrain, -1i64), (st.train, 1i64)] {
        let Some(label) = label else { continue };
        let (f, g) = match label {
            Label::Forged => (delta, 0i64),
            Label::Genuine => (0i64, delta),
        };
        tx.execute(&count, &[&tokens, &f, &g, &at]).await?;
        if delta < 0 {
            tx.execute(&gone, &[&tokens]).await?;
        }
        tx.execute(&total, &[&delta, &label.as_str()]).await?;
    }
    let (label, source) = kept(state, &st, s.source);
    tx.execute(&update, &[&s.digest, &label.map(Label::as_str), &source.as_str(), &original]).await?;
    let n: i64 = tx.query_one(&size, &[]).await?.try_get(0)?;
    let cut = to_prune(n.max(0) as u64, limits);
    if cut > 0 {
        tx.execute(&prune, &[&(cut as i64)]).await?;
    }
    let kept_samples: i64 = tx.query_one(&samples, &[]).await?.try_get(0)?;
    let kept_samples = kept_samples.max(0) as u64;
    if kept_samples > limits.max_samples {
        tx.execute(&forget, &[&((kept_samples - limits.max_samples) as i64)]).await?;
    }
    tx.commit().await?;
    Ok(st.outcome)
}

pub(super) async fn sample(c: &mut Conn, bounce: &MessageId) -> Result<Option<Sample>, StoreError> {
    let stmt =
        c.stmt("SELECT digest, original, label, source, tokens, at FROM learner_samples WHERE bounce_id = $1").await?;
    let Some(r) = c.client.query_opt(&stmt, &[&bounce.0]).await? else { return Ok(None) };
    Ok(Some(Sample {
        digest: r.try_get(0)?,
        bounce: Some(bounce.clone()),
        original: r.try_get::<_, Option<String>>(1)?.map(MessageId),
        label: label_of(r.try_get(2)?)?,
        source: source_of(r.try_get::<_, &str>(3)?)?,
        tokens: r.try_get(4)?,
        at: Timestamp(r.try_get(5)?),
    }))
}

pub(super) async fn model(c: &mut Conn, tokens: &[String]) -> Result<Model, StoreError> {
    let totals = c.stmt("SELECT label, messages FROM learner_totals").await?;
    let size = c.stmt(SIZE).await?;
    let counts = c.stmt("SELECT token, forged, genuine FROM learner_tokens WHERE token = ANY($1::text[])").await?;
    let mut m = Model::default();
    for r in c.client.query(&totals, &[]).await? {
        let n: i64 = r.try_get(1)?;
        match label_of(r.try_get(0)?)? {
            Some(Label::Forged) => m.forged_messages = n.max(0) as u64,
            Some(Label::Genuine) => m.genuine_messages = n.max(0) as u64,
            None => {}
        }
    }
    let n: i64 = c.client.query_one(&size, &[]).await?.try_get(0)?;
    m.size = n.max(0) as u64;
    for r in c.client.query(&counts, &[&tokens]).await? {
        let (f, g): (i64, i64) = (r.try_get(1)?, r.try_get(2)?);
        m.tokens.insert(r.try_get(0)?, TokenCount { forged: f.max(0) as u64, genuine: g.max(0) as u64 });
    }
    Ok(m)
}
