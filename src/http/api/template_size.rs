//! How large the values a template builds can grow, read from its syntax tree before it runs.
//!
//! Fuel bounds the number of instructions a render runs and the output is capped, but neither
//! bounds the values built on the way: `{% set a = b ~ b %}` doubles a string in one instruction,
//! so twenty such lines, or twenty nested loops over `[a ~ a]`, or a chain of `replace` filters
//! build gigabytes that are never written anywhere. Every expression here gets an upper bound of
//! the form `k × V + c` bytes, where V is the size of the request's variables (no value taken
//! from them is larger) and c counts the template's own constants; the values bound to names
//! (`set`, `with`, `for`) are held together, so what counts is their sum with the expression
//! being built. A render is refused when the largest such sum, with this request's V, passes the
//! limit (`templates::VALUE_TO_OUTPUT` × the output cap).
//!
//! Only constructs whose growth can be bounded are accepted: expressions of variables,
//! constants, `~`, `+`, comparisons, conditions, filters of `SIZES` (with constant arguments
//! where an argument multiplies the size), `range`, `dict` and `loop.cycle`; statements `if`,
//! `for` (not recursive), `with`, `set` outside loops (a `set` in a loop body keeps its value
//! into the next iteration), `autoescape` and raw text. Refused with the construct and its line:
//! `*`, `**`, `%`, `namespace` and other calls, block `set`, `filter` blocks, `do`, filters not in
//! the table.
//!
//! Must not: accept a construct whose result is not bounded by its operands, or bound a value
//! by less than it can be.

use std::collections::HashMap;

use minijinja::machinery::ast::{self, BinOpKind, CallArg, Expr, Stmt, UnaryOpKind};
use minijinja::machinery::{WhitespaceConfig, parse};
use minijinja::syntax::SyntaxConfig;

/// An upper bound on a value's size in bytes: `per_variable × V + constant`, and whether the
/// value may be a list or map (whose text, where one is made of it, quotes and escapes every
/// string in it: up to `REPR` bytes per byte).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    pub per_variable: u64,
    pub constant: u64,
    pub container: bool,
}

/// Bytes a list's or map's text may take per byte of the strings in it (`\u{1f}` for one byte).
const REPR: u64 = 8;

impl Size {
    const SMALL: Size = Size { per_variable: 0, constant: 64, container: false };
    /// A variable, or anything read from one: of any type.
    const VARIABLE: Size = Size { per_variable: 1, constant: 0, container: true };

    fn plus(self, other: Size) -> Size {
        Size {
            per_variable: self.per_variable.saturating_add(other.per_variable),
            constant: self.constant.saturating_add(other.constant),
            container: self.container || other.container,
        }
    }

    fn max(self, other: Size) -> Size {
        Size {
            per_variable: self.per_variable.max(other.per_variable),
            constant: self.constant.max(other.constant),
            container: self.container || other.container,
        }
    }

    fn times(self, n: u64) -> Size {
        Size {
            per_variable: self.per_variable.saturating_mul(n),
            constant: self.constant.saturating_mul(n),
            container: self.container,
        }
    }

    /// The bound of this value made text (`~`, a text filter): a list or map is quoted.
    fn as_text(self) -> Size {
        let text = if self.container { self.times(REPR) } else { self };
        Size { container: false, ..text }
    }

    fn as_container(self) -> Size {
        Size { container: true, ..self }
    }

    /// The bound in bytes for variables of `variables` bytes.
    pub fn bytes(self, variables: u64) -> u64 {
        self.per_variable.saturating_mul(variables).saturating_add(self.constant)
    }
}

/// What a filter gives: text made of its input (a list or map input is quoted first), or a
/// value of any type.
#[derive(Clone, Copy, PartialEq)]
enum Gives {
    Text,
    Value,
}

/// How a filter's result relates to its input: at most `factor` times the input, plus its
/// arguments, or a factor taken from a constant argument.
#[derive(Clone, Copy)]
enum Growth {
    /// At most `factor` × the input, plus the arguments.
    Factor(u64),
    /// `join(sep)`: the input once more for every separator, so `(1 + len(sep))` × the input;
    /// the separator must be a constant string.
    Join,
    /// `indent(width)`: each line gains `width` (a constant integer, at most `MAX_WIDTH`).
    Indent,
    /// `replace(old, new)` with constant strings: at most `1 + len(new)` × the input.
    Replace,
    /// `map('filter', ...)`: the named filter's growth; `map(attribute=...)`: none.
    Map,
}

/// The filters a template may use (minijinja's `builtins` without `json` and `urlencode`), how
/// each one grows its input, and what it gives. Escaping grows a character into at most six
/// (`&#x27;`); a text filter given a list or map quotes it first (`Size::as_text`).
const SIZES: &[(&str, Growth, Gives)] = &[
    ("safe", Growth::Factor(1), Gives::Text),
    ("escape", Growth::Factor(6), Gives::Text),
    ("e", Growth::Factor(6), Gives::Text),
    ("lower", Growth::Factor(1), Gives::Text),
    ("upper", Growth::Factor(1), Gives::Text),
    ("title", Growth::Factor(1), Gives::Text),
    ("capitalize", Growth::Factor(1), Gives::Text),
    ("trim", Growth::Factor(1), Gives::Text),
    ("length", Growth::Factor(1), Gives::Value),
    ("count", Growth::Factor(1), Gives::Value),
    ("dictsort", Growth::Factor(2), Gives::Value),
    ("items", Growth::Factor(2), Gives::Value),
    ("reverse", Growth::Factor(1), Gives::Value),
    ("split", Growth::Factor(1), Gives::Value),
    ("lines", Growth::Factor(1), Gives::Value),
    ("default", Growth::Factor(1), Gives::Value),
    ("d", Growth::Factor(1), Gives::Value),
    ("round", Growth::Factor(1), Gives::Value),
    ("abs", Growth::Factor(1), Gives::Value),
    ("int", Growth::Factor(1), Gives::Value),
    ("float", Growth::Factor(1), Gives::Value),
    ("attr", Growth::Factor(1), Gives::Value),
    ("first", Growth::Factor(1), Gives::Value),
    ("last", Growth::Factor(1), Gives::Value),
    ("min", Growth::Factor(1), Gives::Value),
    ("max", Growth::Factor(1), Gives::Value),
    ("sort", Growth::Factor(1), Gives::Value),
    ("list", Growth::Factor(1), Gives::Value),
    ("string", Growth::Factor(1), Gives::Text),
    ("bool", Growth::Factor(1), Gives::Value),
    ("slice", Growth::Factor(1), Gives::Value),
    ("sum", Growth::Factor(1), Gives::Value),
    ("select", Growth::Factor(1), Gives::Value),
    ("reject", Growth::Factor(1), Gives::Value),
    ("selectattr", Growth::Factor(1), Gives::Value),
    ("rejectattr", Growth::Factor(1), Gives::Value),
    ("map", Growth::Map, Gives::Value),
    ("unique", Growth::Factor(1), Gives::Value),
    ("groupby", Growth::Factor(2), Gives::Value),
    ("chain", Growth::Factor(1), Gives::Value),
    ("zip", Growth::Factor(1), Gives::Value),
    ("join", Growth::Join, Gives::Text),
    ("indent", Growth::Indent, Gives::Text),
    ("replace", Growth::Replace, Gives::Text),
];

/// The widest `indent` accepted.
const MAX_WIDTH: u64 = 100;

/// A construct the bound cannot be computed for: what it is, and its line.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub what: String,
    pub line: usize,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (line {})", self.what, self.line)
    }
}

/// The bound on the largest value any expression of `source` builds; a syntax error is left
/// to the compiler (its message is the one callers see), and reads as no bound here.
pub fn largest_value(source: &str) -> Result<Size, Refused> {
    let Ok(tree) = parse(source, "template", SyntaxConfig, WhitespaceConfig::default()) else {
        return Ok(Size::default());
    };
    let mut walk = Walk { peak: Size::default(), held: Size::default(), names: HashMap::new(), in_loop: false };
    walk.stmt(&tree)?;
    Ok(walk.peak)
}

struct Walk<'a> {
    /// The largest bound seen so far of what is held at once: the values bound to names, and
    /// the expression being built.
    peak: Size,
    /// The values bound to names in scope (each `set` counted, even of a name bound before).
    held: Size,
    /// Names bound by `set`, `with` and `for`, and their bounds; any other name is a variable.
    names: HashMap<&'a str, Size>,
    in_loop: bool,
}

fn line_of<T>(node: &ast::Spanned<T>) -> usize {
    node.span().start_line as usize
}

impl<'a> Walk<'a> {
    fn stmts(&mut self, body: &'a [Stmt<'a>]) -> Result<(), Refused> {
        body.iter().try_for_each(|s| self.stmt(s))
    }

    /// Runs `walk` with `bind` added to the names bound so far (and to what they hold); what
    /// it binds is gone after it.
    fn bound<T>(&mut self, bind: &[(&'a str, Size)], in_loop: bool, walk: impl FnOnce(&mut Self) -> T) -> T {
        let (names, held, was_in_loop) = (self.names.clone(), self.held, self.in_loop);
        self.names.extend(bind.iter().copied());
        self.held = bind.iter().fold(self.held, |held, (_, size)| held.plus(*size));
        self.in_loop = in_loop;
        let walked = walk(self);
        (self.names, self.held, self.in_loop) = (names, held, was_in_loop);
        walked
    }

    fn stmt(&mut self, stmt: &'a Stmt<'a>) -> Result<(), Refused> {
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr).map(drop),
            Stmt::EmitRaw(_) => Ok(()),
            Stmt::IfCond(c) => {
                self.expr(&c.expr)?;
                self.stmts(&c.true_body)?;
                self.stmts(&c.false_body)
            }
            Stmt::ForLoop(f) => {
                if f.recursive {
                    return Err(Refused { what: "a recursive loop".into(), line: line_of(f) });
                }
                // An item is no larger than the whole, and of any type.
                let items = self.expr(&f.iter)?.as_container();
                let mut bind = Vec::new();
                targets(&f.target, items, &mut bind).map_err(|what| Refused { what, line: line_of(f) })?;
                // `loop.previtem` and the like are items too.
                bind.push(("loop", items.plus(Size::SMALL)));
                if let Some(filter) = &f.filter_expr {
                    self.bound(&bind, true, |w| w.expr(filter))?;
                }
                self.bound(&bind, true, |w| w.stmts(&f.body))?;
                self.stmts(&f.else_body)
            }
            Stmt::WithBlock(w) => {
                let mut bind = Vec::new();
                for (target, value) in &w.assignments {
                    let size = self.expr(value)?;
                    targets(target, size, &mut bind).map_err(|what| Refused { what, line: line_of(w) })?;
                }
                self.bound(&bind, self.in_loop, |walk| walk.stmts(&w.body))
            }
            Stmt::Set(s) => {
                if self.in_loop {
                    let what = "`set` inside a loop (it carries into the next iteration): use `with`";
                    return Err(Refused { what: what.into(), line: line_of(s) });
                }
                let size = self.expr(&s.expr)?;
                let mut bind = Vec::new();
                targets(&s.target, size, &mut bind).map_err(|what| Refused { what, line: line_of(s) })?;
                for (name, size) in bind {
                    let bound = self.names.get(name).map_or(size, |old| old.max(size));
                    self.names.insert(name, bound);
                    self.held = self.held.plus(size);
                }
                self.peak = self.peak.max(self.held);
                Ok(())
            }
            Stmt::AutoEscape(a) => self.stmts(&a.body),
            Stmt::SetBlock(s) => Err(Refused { what: "a block `set`".into(), line: line_of(s) }),
            Stmt::FilterBlock(f) => Err(Refused { what: "a `filter` block".into(), line: line_of(f) }),
            Stmt::Do(d) => Err(Refused { what: "`do`".into(), line: line_of(d) }),
            // Macros, includes and loop controls are not compiled in (minijinja features); were
            // one turned on, its statements are refused until bounded here.
            #[allow(unreachable_patterns)]
            _ => Err(Refused { what: "this statement".into(), line: 0 }),
        }
    }

    fn args(&mut self, args: &'a [CallArg<'a>]) -> Result<Size, Refused> {
        let mut total = Size::default();
        for arg in args {
            let (CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e)) = arg;
            total = total.plus(self.expr(e)?);
        }
        Ok(total)
    }

    /// The bound of `expr`'s value; every subexpression's bound goes into `peak`.
    fn expr(&mut self, expr: &'a Expr<'a>) -> Result<Size, Refused> {
        let size = match expr {
            Expr::Var(v) => self.names.get(v.id).copied().unwrap_or(Size::VARIABLE),
            Expr::Const(c) => match c.value.as_str() {
                Some(s) => Size { per_variable: 0, constant: s.len() as u64, container: false },
                None => Size { per_variable: 0, constant: c.value.to_string().len() as u64 + 64, container: true },
            },
            Expr::Slice(s) => {
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part)?;
                }
                self.expr(&s.expr)?
            }
            Expr::UnaryOp(u) => {
                self.expr(&u.expr)?;
                match u.op {
                    UnaryOpKind::Not | UnaryOpKind::Neg => Size::SMALL,
                }
            }
            Expr::BinOp(b) => {
                let (left, right) = (self.expr(&b.left)?, self.expr(&b.right)?);
                match b.op {
                    BinOpKind::Concat => left.as_text().plus(right.as_text()),
                    BinOpKind::Add | BinOpKind::ScAnd | BinOpKind::ScOr => left.plus(right),
                    BinOpKind::Eq
                    | BinOpKind::Ne
                    | BinOpKind::Lt
                    | BinOpKind::Lte
                    | BinOpKind::Gt
                    | BinOpKind::Gte
                    | BinOpKind::In
                    | BinOpKind::Sub
                    | BinOpKind::Div
                    | BinOpKind::FloorDiv => Size::SMALL,
                    BinOpKind::Mul | BinOpKind::Pow | BinOpKind::Rem => {
                        return Err(Refused {
                            what: "`*`, `**` and `%` (a string or list repeated, or a number without bound)".into(),
                            line: line_of(b),
                        });
                    }
                }
            }
            Expr::Compare(c) => {
                self.expr(&c.expr)?;
                for op in &c.ops {
                    self.expr(&op.expr)?;
                }
                Size::SMALL
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr)?;
                let yes = self.expr(&i.true_expr)?;
                let no = match &i.false_expr {
                    Some(e) => self.expr(e)?,
                    None => Size::default(),
                };
                yes.max(no)
            }
            Expr::Filter(f) => {
                let input = match &f.expr {
                    Some(e) => self.expr(e)?,
                    None => Size::default(),
                };
                let args = self.args(&f.args)?;
                filtered(f.name, input, &f.args, line_of(f))?.plus(args)
            }
            Expr::Test(t) => {
                self.expr(&t.expr)?;
                self.args(&t.args)?;
                Size::SMALL
            }
            Expr::GetAttr(g) => self.expr(&g.expr)?.as_container(),
            Expr::GetItem(g) => {
                self.expr(&g.subscript_expr)?;
                self.expr(&g.expr)?.as_container()
            }
            Expr::Call(c) => {
                let args = self.args(&c.args)?;
                match &c.expr {
                    // At most 100,000 numbers (minijinja's bound on `range`).
                    Expr::Var(v) if v.id == "range" => {
                        Size { per_variable: 0, constant: 100_000 * 16, container: true }
                    }
                    Expr::Var(v) if v.id == "dict" => args.plus(Size::SMALL).as_container(),
                    Expr::GetAttr(g) if g.name == "cycle" && matches!(&g.expr, Expr::Var(v) if v.id == "loop") => args,
                    _ => {
                        return Err(Refused {
                            what: "a call other than `range`, `dict` or `loop.cycle`".into(),
                            line: line_of(c),
                        });
                    }
                }
            }
            Expr::List(l) => {
                let mut total = Size::SMALL;
                for item in &l.items {
                    total = total.plus(self.expr(item)?).plus(Size::SMALL);
                }
                total.as_container()
            }
            Expr::Map(m) => {
                let mut total = Size::SMALL;
                for e in m.keys.iter().chain(&m.values) {
                    total = total.plus(self.expr(e)?).plus(Size::SMALL);
                }
                total.as_container()
            }
        };
        self.peak = self.peak.max(size.plus(self.held));
        Ok(size)
    }
}

/// The bound of filter `name` applied to `input` with `args` (their own sizes not counted).
fn filtered(name: &str, input: Size, args: &[CallArg<'_>], line: usize) -> Result<Size, Refused> {
    let refused = |what: String| Err(Refused { what, line });
    let Some((_, growth, gives)) = SIZES.iter().find(|(n, _, _)| *n == name) else {
        return refused(format!("the filter `{name}`"));
    };
    let constant = |i: usize| match args.get(i) {
        Some(CallArg::Pos(Expr::Const(c))) => Some(c.value.clone()),
        _ => None,
    };
    let factor = match growth {
        Growth::Factor(n) => *n,
        Growth::Join => match (args.len(), constant(0).as_ref().and_then(|v| v.as_str().map(str::len))) {
            (0, _) => 1,
            (_, Some(len)) => 1 + len as u64,
            _ => return refused("`join` with a separator that is not a constant string".into()),
        },
        Growth::Indent => match constant(0).and_then(|v| u64::try_from(v).ok()) {
            Some(width) if width <= MAX_WIDTH => 1 + width,
            _ if args.is_empty() => 5,
            _ => return refused(format!("`indent` wider than {MAX_WIDTH} or not a constant")),
        },
        Growth::Replace => match (constant(0), constant(1).as_ref().and_then(|v| v.as_str().map(str::len))) {
            (Some(old), Some(len)) if old.as_str().is_some() => 1 + len as u64,
            _ => return refused("`replace` with arguments that are not constant strings".into()),
        },
        // Each item through the filter named by the first argument (with the rest), or each
        // item's attribute.
        Growth::Map => {
            let inner = constant(0).and_then(|v| v.as_str().map(str::to_string)).filter(|n| n != "map");
            return match (inner, args.first()) {
                (Some(inner), _) => filtered(&inner, input, &args[1..], line).map(Size::as_container),
                (_, Some(CallArg::Kwarg("attribute", _))) => Ok(input.as_container()),
                _ => refused("`map` other than of a listed filter by name or of an attribute".into()),
            };
        }
    };
    Ok(match gives {
        Gives::Text => input.as_text().times(factor),
        Gives::Value => input.times(factor).as_container(),
    })
}

/// The names a `for`, `set` or `with` target binds, each to `size` (an item of a tuple is no
/// larger than the tuple).
fn targets<'a>(target: &'a Expr<'a>, size: Size, out: &mut Vec<(&'a str, Size)>) -> Result<(), String> {
    match target {
        Expr::Var(v) => {
            out.push((v.id, size));
            Ok(())
        }
        Expr::List(l) => l.items.iter().try_for_each(|item| targets(item, size, out)),
        _ => Err("an assignment to something other than names".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(source: &str) -> Size {
        largest_value(source).unwrap_or_else(|e| panic!("{source}: {e}"))
    }

    fn refused(source: &str) -> Refused {
        largest_value(source).expect_err(source)
    }

    #[test]
    fn ordinary_templates_are_bounded_by_a_few_times_their_variables() {
        let t = "Dear {{ name|title }},\n{% for item in order.items %}- {{ item.name }}: {{ item.price|round(2) }}\n\
                 {% endfor %}{% if vip %}Thanks!{% else %}{{ footer|default('Bye') }}{% endif %}\n\
                 <a href=\"https://shop.test/o/{{ order.id|e }}\">{{ first ~ ' ' ~ last }}</a>\
                 {% for row in rows %}<tr class=\"{{ loop.cycle('odd', 'even') }}\">{{ row|join(', ') }}</tr>{% endfor %}\
                 {% with total = order.total %}{{ total }}{% endwith %}{% set greeting = 'Hi ' ~ name %}{{ greeting }}\
                 {{ names|map('upper')|join(', ') }}{{ people|map(attribute='name')|sort|first }}";
        let size = bound(t);
        // The largest: `names|map('upper')|join(', ')`, a variable made text (8: it may be a
        // list, quoted), its items joined as text again (8: the bound does not know they are
        // text now) with a separator of two bytes (3), beside `greeting` (8) held from its `set`.
        // With 100 KB of variables, 20 MB.
        assert_eq!(size.per_variable, 200, "{size:?}");
    }

    #[test]
    fn doubling_is_counted_however_it_is_written() {
        // A variable made text counts 8 (it may be a list, quoted); text made text counts 1.
        assert_eq!(bound("{{ a ~ a ~ a ~ a }}").per_variable, 32);
        assert_eq!(bound("{{ (a ~ '') ~ (a ~ '') }}").per_variable, 16);
        let mut lines = String::new();
        for i in 0..40 {
            lines.push_str(&format!("{{% set v{} = v{i} ~ v{i} %}}", i + 1));
        }
        // Every value is held: 16 + 32 + ... + 16 × 2^39.
        assert_eq!(bound(&lines).per_variable, 16 * ((1 << 40) - 1));
        let mut nested = String::new();
        for i in 0..40 {
            nested.push_str(&format!("{{% for v{} in [v{i} ~ v{i}] %}}", i + 1));
        }
        nested.push_str(&"{% endfor %}".repeat(40));
        assert!(bound(&nested).per_variable >= 1 << 40);
        // Quoting a list of text again and again: each turn may multiply it by 8.
        let mut quoted = "a".to_string();
        for _ in 0..25 {
            quoted = format!("([{quoted}] ~ '')");
        }
        assert!(bound(&format!("{{{{ {quoted} }}}}")).per_variable >= 1 << 60);
        let chain = format!("{{{{ v{} }}}}", "|string|escape".repeat(30));
        assert!(bound(&chain).per_variable >= 6u64.pow(20));
        let mapped = format!("{{{{ v{} }}}}", "|map('escape')".repeat(30));
        assert!(bound(&mapped).per_variable >= 6u64.pow(20));
        assert_eq!(bound("{{ x|replace('a', 'aaaa') }}").per_variable, 40);
        assert_eq!(bound("{{ x|join('--') }}").per_variable, 24);
        // `b` (16) and `c` (32) held, and `c` read (32 more: the bound counts a read as a copy).
        assert_eq!(bound("{% with b = a ~ a %}{% with c = b ~ b %}{{ c }}{% endwith %}{% endwith %}").per_variable, 80);
        // What a `with` binds is gone after it: `b` below is a variable again (8 a quote).
        assert_eq!(bound("{% with b = a ~ a ~ a ~ a %}{% endwith %}{{ b ~ b ~ b ~ b ~ b }}").per_variable, 40);
        // Values bound to names are held together: a thousand of 16 each.
        let many: String = (0..1000).map(|i| format!("{{% set w{i} = v ~ v %}}")).collect();
        assert_eq!(bound(&many).per_variable, 16_000);
    }

    #[test]
    fn constructs_without_a_bound_are_refused_with_their_line() {
        for (source, what) in [
            ("{{ 'x' * 100000000 }}", "`*`"),
            ("{{ 2 ** 200 }}", "`*`"),
            ("{% set ns = namespace(s='x') %}", "a call"),
            ("{% for i in range(9) %}{% set s = s ~ s %}{% endfor %}", "`set` inside a loop"),
            ("{% set s %}{% for i in range(9) %}x{% endfor %}{% endset %}", "a block `set`"),
            ("{% filter upper %}x{% endfilter %}", "a `filter` block"),
            ("{{ x|center(1000000000) }}", "the filter `center`"),
            ("{{ x|format(y) }}", "the filter `format`"),
            ("{{ x|replace(a, b) }}", "`replace`"),
            ("{{ x|join(sep) }}", "`join`"),
            ("{{ x|indent(100000000) }}", "`indent`"),
            ("{{ x.upper() }}", "a call"),
            ("{{ x|map('format', 'y') }}", "the filter `format`"),
            ("{{ x|map(y) }}", "`map`"),
            ("{% for x in y recursive %}{{ loop(x) }}{% endfor %}", "a recursive loop"),
        ] {
            let r = refused(source);
            assert!(r.what.contains(what), "{source}: {r}");
            assert_eq!(r.line, 1, "{source}");
        }
        assert_eq!(refused("line one\n\n{{ a * 2 }}").line, 3);
    }

    #[test]
    fn a_syntax_error_is_left_to_the_compiler() {
        assert_eq!(largest_value("{% for %}"), Ok(Size::default()));
    }
}
