//! The stored values of the learning filter for mailer-daemon mail (`feedback::learn`): how
//! often each token was seen in forged and in genuine bounces, how many of each were trained,
//! and the samples (a message's tokens and label) that let a label be changed later.
//!
//! [`step`] is the one decision both backends apply when a sample comes in (train, relabel,
//! or leave alone), so SQLite and PostgreSQL keep the same counts.
//! Must not: compute features or probabilities (that is `feedback::learn`), or hold SQL.

use std::collections::HashMap;

use super::MessageId;
use crate::time::Timestamp;

/// What a bounce was: the two classes the filter learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    Forged,
    Genuine,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Forged => "forged",
            Label::Genuine => "genuine",
        }
    }

    pub fn parse(s: &str) -> Option<Label> {
        match s {
            "forged" => Some(Label::Forged),
            "genuine" => Some(Label::Genuine),
            _ => None,
        }
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who gave a sample its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainSource {
    /// A verdict `feedback::verify` made with certainty (or none, for a sample only recorded).
    Auto,
    /// The operator: `mailerd bounce train`, the API's verdict route, the dashboard.
    Operator,
}

impl TrainSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TrainSource::Auto => "auto",
            TrainSource::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<TrainSource> {
        match s {
            "auto" => Some(TrainSource::Auto),
            "operator" => Some(TrainSource::Operator),
            _ => None,
        }
    }
}

/// One message for the filter: its tokens and, when known, its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// SHA-256 (hex) of the raw message: the same message is one sample however often it is
    /// trained.
    pub digest: String,
    /// Our queue id of the received bounce, when the daemon read it (the API names it).
    pub bounce: Option<MessageId>,
    /// Our message the bounce is about, when the verifier could tell (for API scopes).
    pub original: Option<MessageId>,
    /// The message's features, sorted and without repeats.
    pub tokens: Vec<String>,
    /// None: recorded only, so that the operator can label it later.
    pub label: Option<Label>,
    pub source: TrainSource,
    pub at: Timestamp,
}

/// What `Store::learn` did with a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// A new sample without a label: kept, nothing counted.
    Recorded,
    /// Counted under its label (new, or recorded before without one).
    Trained,
    /// Had the other label: its counts moved from that label to this one.
    Relabelled,
    /// Nothing changed (the same label again, no label, or an automatic label where the
    /// operator had given one).
    Unchanged,
}

impl Learned {
    pub fn as_str(self) -> &'static str {
        match self {
            Learned::Recorded => "recorded",
            Learned::Trained => "trained",
            Learned::Relabelled => "relabelled",
            Learned::Unchanged => "unchanged",
        }
    }
}

/// How often a token was seen, in messages of each label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCount {
    pub forged: u64,
    pub genuine: u64,
}

/// The part of the model one prediction needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    /// Messages trained as forged and as genuine.
    pub forged_messages: u64,
    pub genuine_messages: u64,
    /// The counts of the tokens asked for that the model knows.
    pub tokens: HashMap<String, TokenCount>,
    /// Tokens in the whole model.
    pub size: u64,
}

/// The bounds of the stored model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnerLimits {
    /// Tokens kept; beyond, the least useful (seen least often, then longest ago) are pruned
    /// down to nine tenths of it.
    pub max_tokens: u64,
    /// Samples kept for relabelling; beyond, the oldest are forgotten (their counts stay).
    pub max_samples: u64,
}

impl Default for LearnerLimits {
    fn default() -> Self {
        LearnerLimits { max_tokens: 100_000, max_samples: 20_000 }
    }
}

/// The counts to take away and add for one sample, and what that amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub untrain: Option<Label>,
    pub train: Option<Label>,
    pub outcome: Learned,
}

/// The decision for a sample coming in (`label` from `source`) given the stored one, if any
/// (its label and source).
pub fn step(stored: Option<(Option<Label>, TrainSource)>, label: Option<Label>, source: TrainSource) -> Step {
    let none = Step { untrain: None, train: None, outcome: Learned::Unchanged };
    match (stored, label) {
        (None, None) => Step { outcome: Learned::Recorded, ..none },
        (None, Some(l)) => Step { train: Some(l), outcome: Learned::Trained, ..none },
        (Some(_), None) => none,
        (Some((Some(old), _)), Some(l)) if old == l => none,
        // The operator's word stands against the automatic one.
        (Some((Some(_), TrainSource::Operator)), Some(_)) if source == TrainSource::Auto => none,
        (Some((Some(old), _)), Some(l)) => Step { untrain: Some(old), train: Some(l), outcome: Learned::Relabelled },
        (Some((None, _)), Some(l)) => Step { train: Some(l), outcome: Learned::Trained, ..none },
    }
}

/// The label and source a stored sample keeps after `step`.
pub fn kept(
    stored: Option<(Option<Label>, TrainSource)>,
    s: &Step,
    source: TrainSource,
) -> (Option<Label>, TrainSource) {
    match (s.train, stored) {
        (Some(l), _) => (Some(l), source),
        (None, Some(st)) => st,
        (None, None) => (None, source),
    }
}

/// How many tokens to prune when the model holds `size` of them: none up to the cap, else
/// down to nine tenths of it (so pruning is not run on every sample).
pub fn to_prune(size: u64, limits: &LearnerLimits) -> u64 {
    if size <= limits.max_tokens { 0 } else { size - limits.max_tokens * 9 / 10 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_train_relabel_and_respect_the_operator() {
        use Label::*;
        use TrainSource::*;
        assert_eq!(step(None, None, Auto).outcome, Learned::Recorded);
        assert_eq!(
            step(None, Some(Forged), Auto),
            Step { untrain: None, train: Some(Forged), outcome: Learned::Trained }
        );
        assert_eq!(step(Some((Some(Forged), Auto)), Some(Forged), Operator).outcome, Learned::Unchanged);
        assert_eq!(
            step(Some((Some(Forged), Auto)), Some(Genuine), Operator),
            Step { untrain: Some(Forged), train: Some(Genuine), outcome: Learned::Relabelled }
        );
        assert_eq!(step(Some((Some(Genuine), Operator)), Some(Forged), Auto).outcome, Learned::Unchanged);
        assert_eq!(step(Some((None, Auto)), Some(Genuine), Operator).outcome, Learned::Trained);
        assert_eq!(step(Some((Some(Genuine), Auto)), None, Auto).outcome, Learned::Unchanged);
        let s = step(Some((Some(Genuine), Operator)), Some(Forged), Auto);
        assert_eq!(kept(Some((Some(Genuine), Operator)), &s, Auto), (Some(Genuine), Operator));
    }

    #[test]
    fn pruning_starts_past_the_cap_and_goes_to_nine_tenths() {
        let l = LearnerLimits { max_tokens: 1000, max_samples: 10 };
        assert_eq!(to_prune(1000, &l), 0);
        assert_eq!(to_prune(1001, &l), 101);
        assert_eq!(Label::parse("forged"), Some(Label::Forged));
        assert_eq!(Label::parse("Forged"), None);
    }
}
