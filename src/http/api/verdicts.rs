//! `POST /api/v1/bounces/{id}/verdict`: the operator's word on a bounce the daemon received
//! (`{id}` is our queue id of it), taught to the learned filter (`feedback::learn`).
//!
//! Body: `{"verdict": "forged"}` or `{"verdict": "genuine"}`. The daemon keeps the tokens of
//! every mailer-daemon message it reads (not its body), so the bounce can be labelled after
//! it was read and its body released; a label given before is replaced.
//! Scoped like the other bounce routes: a key with a domain scope may label only a bounce about
//! a message of its own (the verifier named it); any other id is 404 to it, as if unknown.
//! Must not: read or change anything outside the key's scope.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use crate::store::MessageId;
use crate::store::learner::{Label, TrainSource};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictRequest {
    pub verdict: String,
}

pub async fn set(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    Path(id): Path<String>,
    super::body::Json(req): super::body::Json<VerdictRequest>,
) -> Result<Json<Value>, Problem> {
    let Some(label) = Label::parse(req.verdict.trim()) else {
        return Err(Problem::invalid("verdict", format!("`{}` is not `forged` or `genuine`", req.verdict)));
    };
    let store = state.ctx.store.as_ref();
    let unknown = || Problem::not_found_at("id", format!("no bounce {id} known to the learned filter"));
    let Some(mut sample) = store.learner_sample(&MessageId(id.clone())).await? else { return Err(unknown()) };
    if !key.scope.is_all() {
        let Some(original) = &sample.original else { return Err(unknown()) };
        let facts = store.report_facts(original).await?;
        if !facts.is_some_and(|f| key.scope.covers_path(&f.reverse_path)) {
            return Err(unknown());
        }
    }
    let limits = state.verifier.learner.map(|l| l.limits).unwrap_or_default();
    sample.label = Some(label);
    sample.source = TrainSource::Operator;
    sample.at = crate::time::Timestamp::now();
    let tokens = sample.tokens.len();
    let learned = store.learn(sample, limits).await?;
    tracing::info!(bounce = %id, api_key = %key.name, verdict = label.as_str(), learned = learned.as_str(), "bounce verdict");
    Ok(Json(json!({"id": id, "verdict": label.as_str(), "learned": learned.as_str(), "tokens": tokens})))
}
