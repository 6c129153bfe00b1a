//! `PUT/GET/DELETE /api/v1/templates/{name}`, `GET /api/v1/templates`: message templates an
//! API key stores by name, and their rendering for a send that names one (`template` +
//! `variables`, single or in a batch).
//!
//! A template has up to three parts (`subject`, `text`, `html`), each a minijinja source. They
//! are rendered in a sandbox: the environment has no loader (no `include`, `import` or
//! `extends`, no file or network access) and no macros, every render has a fuel budget (loops
//! and expressions stop when it runs out) and a recursion limit, and its output is capped at
//! the message size limit. Before a part is stored or rendered, `template_size` bounds every value
//! it can build from the size of the variables; constructs without such a bound (`*`, `namespace`,
//! a `set` inside a loop, ...) are refused, and a render whose bound passes twice the output cap
//! is not run. Undefined variables are errors (strict), so a misspelt name is a
//! 422 rather than an empty gap in the mail; `html` is HTML-escaped, `subject` and `text` are not.
//! Templates belong to the key that stored them (by key id): another key never sees them.
//! Must not: read files, reach the network, or render without a fuel budget.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use super::messages::SendRequest;
use crate::store::Template;
use crate::time::Timestamp;

/// Instructions one part's render may run (a loop over 10,000 items with a little work in
/// each fits; an endless or huge one stops).
pub const FUEL: u64 = 200_000;
/// The largest value a render may build (`template_size`), as a multiple of the output cap.
const VALUE_TO_OUTPUT: u64 = 2;
/// Nesting depth of loops, blocks and calls within a render.
const RECURSION: usize = 64;
/// Bytes of one part's source.
const MAX_SOURCE: usize = 256 * 1024;
/// Characters of a template's name.
const MAX_NAME: usize = 128;
/// The parts a template may have, in the order they are checked.
const PARTS: [&str; 3] = ["subject", "text", "html"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutRequest {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<usize>,
    /// The `next` of the page before (the last name it listed).
    pub cursor: Option<String>,
}

/// A template as the API shows it.
fn to_json(t: &Template) -> Value {
    json!({
        "name": t.name, "subject": t.subject, "text": t.text, "html": t.html,
        "created_at": t.created_at.iso8601(), "updated_at": t.updated_at.iso8601(),
    })
}

/// A name of 1 to 128 letters, digits, `.`, `_` and `-` (it goes into a URL path).
fn check_name(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(Problem::invalid("name", format!("1 to {MAX_NAME} letters, digits, `.`, `_` or `-`"))) }
}

/// The sandbox every part is compiled and rendered in.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| if name == "html" { AutoEscape::Html } else { AutoEscape::None });
    env
}

/// Variables a template must be able to take at `PUT`: a part whose values could pass the
/// render limit with this much is refused at once rather than at every send.
const PLAIN_VARIABLES: u64 = 1024;

/// Each part given compiles and bounds its values; a 422 naming the first that does not.
fn compile(parts: &[(&str, Option<&String>)], max_output: u64) -> Result<(), Problem> {
    let env = environment();
    for (part, source) in parts {
        let Some(source) = source else { continue };
        if source.len() > MAX_SOURCE {
            return Err(Problem::invalid(*part, format!("{} bytes; at most {MAX_SOURCE}", source.len())));
        }
        env.template_from_named_str(part, source).map_err(|e| Problem::invalid(*part, describe(&e)))?;
        let largest =
            super::template_size::largest_value(source).map_err(|r| Problem::invalid(*part, unbounded(&r)))?;
        let (bytes, max_value) = (largest.bytes(PLAIN_VARIABLES), max_output.saturating_mul(VALUE_TO_OUTPUT));
        if bytes > max_value {
            return Err(Problem::invalid(
                *part,
                format!(
                    "with {PLAIN_VARIABLES} bytes of variables a value could reach {bytes} bytes; at most {max_value}"
                ),
            ));
        }
    }
    Ok(())
}

/// Why a construct is refused.
fn unbounded(r: &super::template_size::Refused) -> String {
    format!("{r}: not allowed in templates (the values it builds have no bound)")
}

/// An error's text with its line, as a caller can act on it.
fn describe(e: &minijinja::Error) -> String {
    let what = e.detail().map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind()));
    match e.line() {
        Some(line) => format!("{what} (line {line})"),
        None => what,
    }
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    Path(name): Path<String>,
    super::body::Json(req): super::body::Json<PutRequest>,
) -> Result<Json<Value>, Problem> {
    check_name(&name)?;
    if req.text.is_none() && req.html.is_none() {
        return Err(Problem::invalid("text", "an empty template: give text, html or both"));
    }
    let max_output = state.ctx.config.limits.max_message_size;
    let parts = [("subject", req.subject.as_ref()), ("text", req.text.as_ref()), ("html", req.html.as_ref())];
    compile(&parts, max_output)?;
    let store = &state.ctx.store;
    let now = Timestamp::now();
    let created_at = store.template(&key.id, &name).await?.map_or(now, |t| t.created_at);
    let template = Template {
        api_key: key.id.clone(),
        name,
        subject: req.subject,
        text: req.text,
        html: req.html,
        created_at,
        updated_at: now,
    };
    store.put_template(template.clone()).await?;
    Ok(Json(to_json(&template)))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, Problem> {
    match state.ctx.store.template(&key.id, &name).await? {
        Some(t) => Ok(Json(to_json(&t))),
        None => Err(Problem::not_found_at("name", format!("no template {name}"))),
    }
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    if state.ctx.store.delete_template(&key.id, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found_at("name", format!("no template {name}")))
    }
}

/// A page of the key's templates by name; `next` is the cursor of the following page (null
/// after the last).
pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    super::body::Query(q): super::body::Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    let limit = super::body::page_limit(q.limit, 100, 1000)?;
    let list = state.ctx.store.templates(&key.id, q.cursor.as_deref(), limit).await?;
    let next = list.last().filter(|_| list.len() == limit).map(|t| t.name.clone());
    let templates: Vec<Value> = list.iter().map(to_json).collect();
    Ok(Json(json!({ "templates": templates, "next": next })))
}

/// The request with the template's parts rendered with its `variables` in place of `subject`,
/// `text` and `html`. A part the template has may not be in the request too (422 naming it);
/// a render error is a 422 naming `variables` (an undefined variable) or `template` (a fuel,
/// size or other error of the template), with the part and line in the detail.
pub fn apply(req: &SendRequest, template: &Template, max_output: usize) -> Result<SendRequest, Problem> {
    let empty = Map::new();
    let variables = req.variables.as_ref().unwrap_or(&empty);
    let given = [("subject", !req.subject.is_empty()), ("text", req.text.is_some()), ("html", req.html.is_some())];
    let sources = [&template.subject, &template.text, &template.html];
    let env = environment();
    let mut out: [Option<String>; 3] = [None, None, None];
    // No value taken from the variables is larger than their JSON.
    let variables_size = serde_json::to_string(variables).map_or(u64::MAX, |json| json.len() as u64);
    let max_value = (max_output as u64).saturating_mul(VALUE_TO_OUTPUT);
    for ((part, source), ((_, in_request), slot)) in PARTS.iter().zip(sources).zip(given.iter().zip(out.iter_mut())) {
        let Some(source) = source else { continue };
        if *in_request {
            return Err(Problem::invalid(*part, format!("given by the template `{}`: leave it out", template.name)));
        }
        // A template stored before its constructs were checked is checked here too.
        let name = &template.name;
        let largest = super::template_size::largest_value(source)
            .map_err(|r| Problem::invalid("template", format!("template `{name}`, {part}: {}", unbounded(&r))))?;
        let bytes = largest.bytes(variables_size);
        if bytes > max_value {
            return Err(Problem::invalid(
                "variables",
                format!(
                    "template `{name}`, {part}: with these variables ({variables_size} bytes) a value could reach \
                     {bytes} bytes; at most {max_value}"
                ),
            ));
        }
        let rendered = env
            .template_from_named_str(part, source)
            .and_then(|t| render_capped(&t, variables, max_output))
            .map_err(|e| {
                let field = if e.kind() == ErrorKind::UndefinedError { "variables" } else { "template" };
                Problem::invalid(field, format!("template `{}`, {part}: {}", template.name, describe(&e)))
            })?;
        *slot = Some(rendered);
    }
    let [subject, text, html] = out;
    Ok(SendRequest {
        subject: subject.unwrap_or_else(|| req.subject.clone()),
        text: text.or_else(|| req.text.clone()),
        html: html.or_else(|| req.html.clone()),
        template: None,
        variables: None,
        ..req.clone()
    })
}

/// Renders into a buffer that refuses to grow past `max` bytes.
fn render_capped(
    t: &minijinja::Template<'_, '_>,
    variables: &Map<String, Value>,
    max: usize,
) -> Result<String, minijinja::Error> {
    let mut out = Capped { buf: Vec::new(), max };
    t.render_captured_to(variables, &mut out)?;
    String::from_utf8(out.buf).map_err(|_| minijinja::Error::new(ErrorKind::InvalidOperation, "output is not UTF-8"))
}

struct Capped {
    buf: Vec<u8>,
    max: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.max {
            return Err(std::io::Error::other(format!("the output exceeds {} bytes", self.max)));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> Template {
        Template {
            api_key: "k".into(),
            name: "t".into(),
            subject: Some("Hi {{ name }}".into()),
            text: Some(text.into()),
            html: Some("<p>{{ name }}</p>".into()),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn request(variables: Value) -> SendRequest {
        serde_json::from_value(json!({"from": "a@b.test", "to": ["c@d.test"], "template": "t", "variables": variables}))
            .unwrap()
    }

    #[test]
    fn parts_are_rendered_and_html_is_escaped() {
        let r = apply(&request(json!({"name": "<Ann>"})), &template("Dear {{ name }}"), 1 << 20).unwrap();
        assert_eq!((r.subject.as_str(), r.text.as_deref()), ("Hi <Ann>", Some("Dear <Ann>")));
        assert_eq!(r.html.as_deref(), Some("<p>&lt;Ann&gt;</p>"));
    }

    #[test]
    fn endless_loops_run_out_of_fuel_and_output_is_capped() {
        let e = apply(
            &request(json!({"name": "x"})),
            &template("{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}"),
            1 << 30,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("template"), "{e:?}");
        assert!(e.detail.contains("fuel"), "{}", e.detail);
        let e = apply(&request(json!({"name": "x"})), &template("{{ 'x' * 5000 }}"), 1000).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("template"), "{e:?}");
    }

    #[test]
    fn values_without_a_bound_are_refused_before_they_are_built() {
        // Forty doublings: a terabyte for one byte of variables, refused before the render.
        let doubling: String = (0..40).map(|i| format!("{{% set v{} = v{i} ~ v{i} %}}", i + 1)).collect();
        let e = apply(&request(json!({"name": "x", "v0": "x"})), &template(&doubling), 1 << 20).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("variables"), "{e:?}");
        assert!(e.detail.contains("could reach"), "{}", e.detail);
        // A stored template with a construct refused since is refused at the render too.
        let e = apply(&request(json!({"name": "x"})), &template("{% set ns = namespace(s=name) %}{{ ns.s }}"), 1 << 20)
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("template"), "{e:?}");
        assert!(e.detail.contains("a call other than"), "{}", e.detail);
        // At PUT: the construct, or a bound past the limit with a kilobyte of variables.
        let put = |text: &str| compile(&[("text", Some(&text.to_string()))], 1 << 20);
        let e = put("{{ name * 3 }}").unwrap_err();
        assert_eq!((e.field.as_deref(), e.detail.contains("line 1")), (Some("text"), true), "{e:?}");
        assert!(put(&doubling).unwrap_err().detail.contains("1024 bytes of variables"));
        assert!(put("Dear {{ name|title }}, {% for i in items %}{{ i.name ~ ': ' ~ i.price }}{% endfor %}").is_ok());
    }

    #[test]
    fn rendered_text_stays_within_its_bound() {
        // Strings that quote and escape the most: control characters, quotes, `<`, non-ASCII.
        let variables = json!({
            "a": ["\u{1}\u{2}\u{1f}", "<'\"&>", "\\", "é\u{301}", {"k": ["\u{7f}"]}],
            "s": "\u{1}<'\"é",
        });
        let Value::Object(map) = &variables else { unreachable!() };
        let size = serde_json::to_string(map).unwrap().len() as u64;
        for source in [
            "{{ a ~ a }}",
            "{{ ([a] ~ '') ~ ([[a], s] ~ '') }}",
            "{{ a|map('escape')|join('--') }}",
            "{{ a|string|escape }}",
            "{{ a|escape }}{{ s|escape }}{{ a|indent(4) }}",
            "{{ (a ~ s)|replace('é', 'xyz') }}",
            "{{ (a|list) if a is sequence else '' }}{{ a[4]|items|list }}",
        ] {
            let env = environment();
            let t = env.template_from_str(source).unwrap_or_else(|e| panic!("{source}: {e}"));
            let out = render_capped(&t, map, 1 << 20).unwrap_or_else(|e| panic!("{source}: {e}"));
            let bound = super::super::template_size::largest_value(source).unwrap().bytes(size);
            assert!(out.len() as u64 <= bound, "{source}: {} bytes, bound {bound}: {out}", out.len());
        }
    }

    #[test]
    fn an_undefined_variable_names_variables() {
        let e = apply(&request(json!({})), &template("x"), 1 << 20).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("variables"), "{e:?}");
        assert!(e.detail.contains("subject"), "{}", e.detail);
    }

    #[test]
    fn no_loader_no_includes() {
        let e = apply(&request(json!({"name": "x"})), &template("{% include '/etc/passwd' %}"), 1 << 20).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("template"), "{e:?}");
    }
}
