//! How large the values a template builds can grow, read from its syntax tree before it runs.
//!
//! Fuel bounds the number of instructions a render runs and the output is capped, but neither
//! bounds the values built on the way: `{% set a = b ~ b %}` doubles a string in one instruction,
//! so twenty such lines, or twenty nested loops over `[a ~ a]`, or a chain of `tojson` filters
//! build gigabytes that are never written anywhere. Every expression here gets an upper bound of
//! the form `k × V + c` bytes, where V is the size of the request's variables (no value taken
//! from them is larger) and c counts the template's own constants; a render is refused when the
//! largest bound, with this request's V, passes the limit (`templates::MAX_VALUE`).
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

/// An upper bound on a value's size in bytes: `per_variable × V + constant`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    pub per_variable: u64,
    pub constant: u64,
}

impl Size {
    const SMALL: Size = Size { per_variable: 0, constant: 64 };
    const VARIABLE: Size = Size { per_variable: 1, constant: 0 };

    fn plus(self, other: Size) -> Size {
        Size {
            per_variable: self.per_variable.saturating_add(other.per_variable),
            constant: self.constant.saturating_add(other.constant),
        }
    }

    fn max(self, other: Size) -> Size {
        Size { per_variable: self.per_variable.max(other.per_variable), constant: self.constant.max(other.constant) }
    }

    fn times(self, n: u64) -> Size {
        Size { per_variable: self.per_variable.saturating_mul(n), constant: self.constant.saturating_mul(n) }
    }

    /// The bound in bytes for variables of `variables` bytes.
    pub fn bytes(self, variables: u64) -> u64 {
        self.per_variable.saturating_mul(variables).saturating_add(self.constant)
    }
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
}

/// The filters a template may use, and how each one grows its input. Escaping filters grow a
/// character into at most six (`&#x27;`, `\u003c`), `urlencode` into three (`%2F`).
const SIZES: &[(&str, Growth)] = &[
    ("safe", Growth::Factor(1)),
    ("escape", Growth::Factor(6)),
    ("e", Growth::Factor(6)),
    ("lower", Growth::Factor(1)),
    ("upper", Growth::Factor(1)),
    ("title", Growth::Factor(1)),
    ("capitalize", Growth::Factor(1)),
    ("trim", Growth::Factor(1)),
    ("length", Growth::Factor(1)),
    ("count", Growth::Factor(1)),
    ("dictsort", Growth::Factor(2)),
    ("items", Growth::Factor(2)),
    ("reverse", Growth::Factor(1)),
    ("split", Growth::Factor(1)),
    ("lines", Growth::Factor(1)),
    ("default", Growth::Factor(1)),
    ("d", Growth::Factor(1)),
    ("round", Growth::Factor(1)),
    ("abs", Growth::Factor(1)),
    ("int", Growth::Factor(1)),
    ("float", Growth::Factor(1)),
    ("attr", Growth::Factor(1)),
    ("first", Growth::Factor(1)),
    ("last", Growth::Factor(1)),
    ("min", Growth::Factor(1)),
    ("max", Growth::Factor(1)),
    ("sort", Growth::Factor(1)),
    ("list", Growth::Factor(1)),
    ("string", Growth::Factor(1)),
    ("bool", Growth::Factor(1)),
    ("slice", Growth::Factor(1)),
    ("sum", Growth::Factor(1)),
    ("select", Growth::Factor(1)),
    ("reject", Growth::Factor(1)),
    ("selectattr", Growth::Factor(1)),
    ("rejectattr", Growth::Factor(1)),
    ("map", Growth::Factor(1)),
    ("unique", Growth::Factor(1)),
    ("groupby", Growth::Factor(2)),
    ("chain", Growth::Factor(1)),
    ("zip", Growth::Factor(1)),
    ("tojson", Growth::Factor(6)),
    ("urlencode", Growth::Factor(3)),
    ("join", Growth::Join),
    ("indent", Growth::Indent),
    ("replace", Growth::Replace),
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
    let mut walk = Walk { peak: Size::default(), names: HashMap::new(), in_loop: false };
    walk.stmt(&tree)?;
    Ok(walk.peak)
}

struct Walk<'a> {
    /// The largest bound seen so far.
    peak: Size,
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

    /// Walks `body` with the names bound so far; what it binds is gone after it.
    fn scoped(&mut self, body: &'a [Stmt<'a>], bind: &[(&'a str, Size)], in_loop: bool) -> Result<(), Refused> {
        let (names, was_in_loop) = (self.names.clone(), self.in_loop);
        self.names.extend(bind.iter().copied());
        self.in_loop = in_loop;
        let walked = self.stmts(body);
        (self.names, self.in_loop) = (names, was_in_loop);
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
                let items = self.expr(&f.iter)?;
                let mut bind = Vec::new();
                targets(&f.target, items, &mut bind).map_err(|what| Refused { what, line: line_of(f) })?;
                // `loop.previtem` and the like are items too.
                bind.push(("loop", items.plus(Size::SMALL)));
                if let Some(filter) = &f.filter_expr {
                    let names = self.names.clone();
                    self.names.extend(bind.iter().copied());
                    let checked = self.expr(filter);
                    self.names = names;
                    checked?;
                }
                self.scoped(&f.body, &bind, true)?;
                self.stmts(&f.else_body)
            }
            Stmt::WithBlock(w) => {
                let mut bind = Vec::new();
                for (target, value) in &w.assignments {
                    let size = self.expr(value)?;
                    targets(target, size, &mut bind).map_err(|what| Refused { what, line: line_of(w) })?;
                }
                self.scoped(&w.body, &bind, self.in_loop)
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
                }
                Ok(())
            }
            Stmt::AutoEscape(a) => self.stmts(&a.body),
            Stmt::SetBlock(s) => Err(Refused { what: "a block `set`".into(), line: line_of(s) }),
            Stmt::FilterBlock(f) => Err(Refused { what: "a `filter` block".into(), line: line_of(f) }),
            Stmt::Do(d) => Err(Refused { what: "`do`".into(), line: line_of(d) }),
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
                Some(s) => Size { per_variable: 0, constant: s.len() as u64 },
                None => Size::SMALL,
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
                    BinOpKind::Concat | BinOpKind::Add | BinOpKind::ScAnd | BinOpKind::ScOr => left.plus(right),
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
                let line = line_of(f);
                let Some((_, growth)) = SIZES.iter().find(|(name, _)| *name == f.name) else {
                    return Err(Refused { what: format!("the filter `{}`", f.name), line });
                };
                let constant = |i: usize| match f.args.get(i) {
                    Some(CallArg::Pos(Expr::Const(c))) => Some(c.value.clone()),
                    _ => None,
                };
                let factor = match growth {
                    Growth::Factor(n) => *n,
                    Growth::Join => match f.args.len() {
                        0 => 1,
                        _ => match constant(0).as_ref().and_then(|v| v.as_str().map(str::len)) {
                            Some(len) => 1 + len as u64,
                            None => {
                                return Err(Refused {
                                    what: "`join` with a separator that is not a constant string".into(),
                                    line,
                                });
                            }
                        },
                    },
                    Growth::Indent => match constant(0).and_then(|v| u64::try_from(v).ok()) {
                        Some(width) if width <= MAX_WIDTH => 1 + width,
                        _ if f.args.is_empty() => 5,
                        _ => {
                            return Err(Refused {
                                what: format!("`indent` wider than {MAX_WIDTH} or not a constant"),
                                line,
                            });
                        }
                    },
                    Growth::Replace => match (constant(0), constant(1)) {
                        (Some(_), Some(new)) if new.as_str().is_some() => 1 + new.as_str().map_or(0, str::len) as u64,
                        _ => {
                            return Err(Refused {
                                what: "`replace` with arguments that are not constant strings".into(),
                                line,
                            });
                        }
                    },
                };
                input.times(factor).plus(args)
            }
            Expr::Test(t) => {
                self.expr(&t.expr)?;
                self.args(&t.args)?;
                Size::SMALL
            }
            Expr::GetAttr(g) => self.expr(&g.expr)?,
            Expr::GetItem(g) => {
                self.expr(&g.subscript_expr)?;
                self.expr(&g.expr)?
            }
            Expr::Call(c) => {
                let args = self.args(&c.args)?;
                match &c.expr {
                    // At most 100,000 numbers (minijinja's bound on `range`).
                    Expr::Var(v) if v.id == "range" => Size { per_variable: 0, constant: 100_000 * 16 },
                    Expr::Var(v) if v.id == "dict" => args.plus(Size::SMALL),
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
                total
            }
            Expr::Map(m) => {
                let mut total = Size::SMALL;
                for e in m.keys.iter().chain(&m.values) {
                    total = total.plus(self.expr(e)?).plus(Size::SMALL);
                }
                total
            }
        };
        self.peak = self.peak.max(size);
        Ok(size)
    }
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
                 <a href=\"https://shop.test/o/{{ order.id|urlencode }}\">{{ first ~ ' ' ~ last }}</a>\
                 {% for row in rows %}<tr class=\"{{ loop.cycle('odd', 'even') }}\">{{ row|join(', ') }}</tr>{% endfor %}\
                 {% with total = order.total %}{{ total }}{% endwith %}{% set greeting = 'Hi ' ~ name %}{{ greeting }}";
        let size = bound(t);
        assert!(size.per_variable <= 4, "{size:?}");
    }

    #[test]
    fn doubling_is_counted_however_it_is_written() {
        let mut lines = String::new();
        for i in 0..40 {
            lines.push_str(&format!("{{% set v{} = v{i} ~ v{i} %}}", i + 1));
        }
        assert_eq!(bound(&lines).per_variable, 1 << 40);
        let mut nested = String::new();
        for i in 0..40 {
            nested.push_str(&format!("{{% for v{} in [v{i} ~ v{i}] %}}", i + 1));
        }
        nested.push_str(&"{% endfor %}".repeat(40));
        assert!(bound(&nested).per_variable >= 1 << 40);
        let chain = format!("{{{{ v{} }}}}", "|tojson".repeat(30));
        assert_eq!(bound(&chain).per_variable, 6u64.pow(24).saturating_mul(6u64.pow(6)));
        assert_eq!(bound("{{ a ~ a ~ a ~ a }}").per_variable, 4);
        assert_eq!(bound("{{ x|replace('a', 'aaaa') }}").per_variable, 5);
        assert_eq!(bound("{{ x|join('--') }}").per_variable, 3);
        assert_eq!(bound("{% with b = a ~ a %}{% with c = b ~ b %}{{ c }}{% endwith %}{% endwith %}").per_variable, 4);
        // What a `with` binds is gone after it.
        assert_eq!(bound("{% with b = a ~ a %}{% endwith %}{{ b }}").per_variable, 2);
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
