//! Static analysis of Jinja chat templates (GGUF `tokenizer.chat_template`, Hugging Face
//! `tokenizer_config.json`) for server-side template injection.
//!
//! Chat templates are rendered by the inference server on every request. A server that renders
//! them outside a sandbox (llama-cpp-python before 0.2.72, CVE-2024-34359) runs whatever Python
//! the template can reach through attribute access: `().__class__.__base__.__subclasses__()`,
//! `cycler.__init__.__globals__.os.popen(...)` and the like. The template is parsed with
//! minijinja's parser (never rendered) and every attribute chain is classified:
//!
//! - `critical`: a chain reaches an interpreter escape (`__globals__`, `__builtins__`,
//!   `__import__`, `__subclasses__`, `__mro__`, `__base__(s)`, `__code__`, …), or any dunder
//!   reached from a Jinja global that SSTI payloads start from (`cycler`, `joiner`, `lipsum`,
//!   `namespace`, `self`, `request`, `config`, …).
//! - `high`: any other dunder or private (`_x`) attribute, or attributes such as `popen`,
//!   `system`, `eval`, `exec`, `subprocess`; a string constant that spells an escape name (usable
//!   with `|attr` or `str.format`).
//! - `medium`: `|attr(...)` with a name computed at render time; variables named like modules
//!   (`os`, `subprocess`, `eval`); `low`: bare use of an SSTI gadget global.
//!
//! Names built from constants are folded first (`'__cla' ~ 'ss__'`, `['__', 'class', '__']|join`,
//! `'__ssalc__'|reverse`, `'%sclass%s'|format('__', '__')`, `{% set a = '__glo' %}`), so
//! splitting a name does not hide it. Templates minijinja cannot parse are analysed token by
//! token (identifiers after `.`, string literals and their `~`/`+` concatenations) and say so.

use std::collections::HashMap;

use aigis_report::Severity;
use minijinja::machinery::{self, Span, WhitespaceConfig, ast};
use minijinja::syntax::SyntaxConfig;

/// Templates longer than this are not analysed (reported as not scanned by the caller).
pub(crate) const MAX_TEMPLATE_LEN: usize = 1024 * 1024;
/// Signals kept per template; more are summarised by the count.
const MAX_SIGNALS: usize = 64;
/// Depth of the AST walk; minijinja's parser already refuses nesting past 150.
const MAX_DEPTH: usize = 256;

/// Names whose reach means arbitrary Python: the escape routes out of the template's objects.
const ESCAPES: &[&str] = &[
    "__globals__",
    "__builtins__",
    "__import__",
    "__subclasses__",
    "__mro__",
    "__base__",
    "__bases__",
    "__code__",
    "__func__",
    "__self__",
    "__loader__",
    "__spec__",
    "__getattribute__",
    "__reduce__",
    "__reduce_ex__",
    "func_globals",
    "f_globals",
    "gi_frame",
    "cr_frame",
    "tb_frame",
    "f_back",
];

/// Attribute names that only make sense when reaching for the OS or the interpreter.
const DANGEROUS_ATTRS: &[&str] = &[
    "os",
    "sys",
    "subprocess",
    "builtins",
    "importlib",
    "_module",
];

/// Functions of `os`, `subprocess` and the interpreter: high when called as a method (a
/// namespace attribute that happens to be called `system` is not a finding).
const DANGEROUS_CALLS: &[&str] = &[
    "popen",
    "system",
    "eval",
    "exec",
    "execfile",
    "compile",
    "import_module",
    "check_output",
    "check_call",
    "getoutput",
    "getstatusoutput",
    "spawnv",
    "spawnl",
    "execv",
    "execve",
    "load_module",
];

/// Jinja (and Flask) globals that SSTI payloads start from.
const GADGET_ROOTS: &[&str] = &[
    "cycler",
    "joiner",
    "lipsum",
    "namespace",
    "range",
    "dict",
    "self",
    "request",
    "config",
    "url_for",
    "get_flashed_messages",
    "g",
    "session",
];

/// Variables named like modules or builtins that a benign template never uses.
const MODULE_VARS: &[&str] = &[
    "os",
    "sys",
    "subprocess",
    "eval",
    "exec",
    "__import__",
    "__builtins__",
    "builtins",
    "importlib",
    "popen",
];

/// Gadget globals whose bare use is notable (not `namespace`, `range`, `dict`: templates use them).
const NOTABLE_GADGETS: &[&str] = &[
    "cycler",
    "joiner",
    "lipsum",
    "self",
    "request",
    "config",
    "url_for",
    "get_flashed_messages",
];

/// One suspicious construct in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signal {
    /// Rule id suffix shared by every caller: `AIG-CHATTEMPLATE-<code>`.
    pub(crate) rule: &'static str,
    pub(crate) severity: Severity,
    pub(crate) message: String,
    /// The template text at the construct, with its line and column.
    pub(crate) evidence: String,
}

/// What the analysis found.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    pub(crate) signals: Vec<Signal>,
    /// Set when minijinja could not parse the template and the token-level analysis ran.
    pub(crate) parse_error: Option<String>,
    /// Set when even tokenising failed: nothing was analysed.
    pub(crate) unreadable: Option<String>,
}

impl Analysis {
    fn push(&mut self, signal: Signal) {
        if self.signals.len() < MAX_SIGNALS && !self.signals.contains(&signal) {
            self.signals.push(signal);
        }
    }
}

/// Analyses one template without rendering it.
pub(crate) fn analyse(template: &str) -> Analysis {
    let mut analysis = Analysis::default();
    if template.len() > MAX_TEMPLATE_LEN {
        analysis.unreadable = Some(format!(
            "template of {} bytes is above the {MAX_TEMPLATE_LEN}-byte limit",
            template.len()
        ));
        return analysis;
    }
    let source = strip_extension_tags(template);
    match machinery::parse(
        &source,
        "chat_template",
        syntax(),
        WhitespaceConfig::default(),
    ) {
        Ok(stmt) => {
            let mut walk = Walk {
                source: &source,
                consts: HashMap::new(),
                out: &mut analysis,
            };
            walk.stmt(&stmt, 0);
        }
        Err(err) => {
            analysis.parse_error = Some(err.to_string());
            token_analysis(&source, &mut analysis);
        }
    }
    analysis
}

/// The default delimiters. `SyntaxConfig` is a unit struct unless minijinja's `custom_syntax`
/// feature is on (another crate in the build may turn it on), so it is built with `default()`.
#[allow(clippy::default_constructed_unit_structs)]
fn syntax() -> SyntaxConfig {
    SyntaxConfig::default()
}

/// Hugging Face's renderer adds `{% generation %}…{% endgeneration %}` (assistant-mask markers)
/// that minijinja does not know; they carry no expressions, so they are blanked out (same length,
/// so spans stay right).
fn strip_extension_tags(template: &str) -> String {
    let mut out = template.to_owned();
    for tag in ["generation", "endgeneration"] {
        for open in ["{%-", "{%"] {
            for close in ["-%}", "%}"] {
                for pad in [" ", ""] {
                    let needle = format!("{open}{pad}{tag}{pad}{close}");
                    out = out.replace(&needle, &" ".repeat(needle.len()));
                }
            }
        }
    }
    out
}

fn is_dunder(name: &str) -> bool {
    name.len() > 4 && name.starts_with("__") && name.ends_with("__")
}

fn escape_in(text: &str) -> Option<&'static str> {
    ESCAPES
        .iter()
        .find(|e| e.starts_with("__") && text.contains(**e))
        .copied()
}

struct Walk<'s, 'a> {
    source: &'s str,
    /// `{% set name = <constant> %}` seen so far.
    consts: HashMap<String, Folded>,
    out: &'a mut Analysis,
}

/// One step of an attribute chain: the name accessed (if it folds to a constant) and where.
struct Step {
    name: Option<String>,
    /// Whether the link's value is called (`x.popen(...)`).
    called: bool,
    /// Whether the link is an `|attr(...)` filter.
    via_attr: bool,
    span: Span,
}

impl Walk<'_, '_> {
    fn evidence(&self, span: Span) -> String {
        let start = span.start_offset as usize;
        let end = (span.end_offset as usize).min(start + 160);
        let text = self.source.get(start..end).unwrap_or("");
        format!("line {}:{}: {text}", span.start_line, span.start_col + 1)
    }

    fn signal(&mut self, rule: &'static str, severity: Severity, message: String, span: Span) {
        let evidence = self.evidence(span);
        self.out.push(Signal {
            rule,
            severity,
            message,
            evidence,
        });
    }

    fn stmts(&mut self, stmts: &[ast::Stmt<'_>], depth: usize) {
        for s in stmts {
            self.stmt(s, depth + 1);
        }
    }

    fn stmt(&mut self, stmt: &ast::Stmt<'_>, depth: usize) {
        use ast::Stmt as S;
        if depth > MAX_DEPTH {
            return;
        }
        let d = depth + 1;
        match stmt {
            S::Template(t) => self.stmts(&t.children, d),
            S::EmitExpr(e) => self.expr(&e.expr, d, false),
            S::EmitRaw(_) | S::Continue(_) | S::Break(_) => {}
            S::ForLoop(f) => {
                self.expr(&f.target, d, false);
                self.expr(&f.iter, d, false);
                if let Some(e) = &f.filter_expr {
                    self.expr(e, d, false);
                }
                self.stmts(&f.body, d);
                self.stmts(&f.else_body, d);
            }
            S::IfCond(i) => {
                self.expr(&i.expr, d, false);
                self.stmts(&i.true_body, d);
                self.stmts(&i.false_body, d);
            }
            S::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    self.expr(target, d, false);
                    self.expr(value, d, false);
                }
                self.stmts(&w.body, d);
            }
            S::Set(s) => {
                if let ast::Expr::Var(v) = &s.target {
                    match self.fold(&s.expr, 0) {
                        Some(value) => self.consts.insert(v.id.to_owned(), value),
                        None => self.consts.remove(v.id),
                    };
                }
                self.expr(&s.target, d, false);
                self.expr(&s.expr, d, false);
            }
            S::SetBlock(s) => {
                self.expr(&s.target, d, false);
                if let Some(f) = &s.filter {
                    self.expr(f, d, false);
                }
                self.stmts(&s.body, d);
            }
            S::AutoEscape(a) => {
                self.expr(&a.enabled, d, false);
                self.stmts(&a.body, d);
            }
            S::FilterBlock(f) => {
                self.expr(&f.filter, d, false);
                self.stmts(&f.body, d);
            }
            S::Block(b) => self.stmts(&b.body, d),
            S::Import(i) => {
                self.loads_template("import", i.span());
                self.expr(&i.expr, d, false);
                self.expr(&i.name, d, false);
            }
            S::FromImport(i) => {
                self.loads_template("from … import", i.span());
                self.expr(&i.expr, d, false);
            }
            S::Extends(e) => {
                self.loads_template("extends", e.span());
                self.expr(&e.name, d, false);
            }
            S::Include(i) => {
                self.loads_template("include", i.span());
                self.expr(&i.name, d, false);
            }
            S::Macro(m) => {
                self.exprs(&m.args, d);
                self.exprs(&m.defaults, d);
                self.stmts(&m.body, d);
            }
            S::CallBlock(c) => {
                self.call(&c.call, d, false);
                self.stmts(&c.macro_decl.body, d);
            }
            S::Do(c) => self.call(&c.call, d, false),
        }
    }

    /// `{% include %}` and friends: a chat template is self-contained; with a file-system loader
    /// configured these read other files on the server.
    fn loads_template(&mut self, tag: &str, span: Span) {
        self.signal(
            "003",
            Severity::Medium,
            format!("`{{% {tag} %}}` loads another template, which a chat template never needs"),
            span,
        );
    }

    fn exprs(&mut self, exprs: &[ast::Expr<'_>], depth: usize) {
        for e in exprs {
            self.expr(e, depth + 1, false);
        }
    }

    fn args(&mut self, args: &[ast::CallArg<'_>], depth: usize) {
        for a in args {
            match a {
                ast::CallArg::Pos(e)
                | ast::CallArg::Kwarg(_, e)
                | ast::CallArg::PosSplat(e)
                | ast::CallArg::KwargSplat(e) => self.expr(e, depth + 1, false),
            }
        }
    }

    fn call(&mut self, call: &ast::Call<'_>, depth: usize, in_chain: bool) {
        self.expr(&call.expr, depth + 1, in_chain);
        self.args(&call.args, depth);
    }

    /// Walks an expression; `in_chain` is set for the inner links of an attribute chain, which
    /// the chain's outermost link already classified.
    fn expr(&mut self, expr: &ast::Expr<'_>, depth: usize, in_chain: bool) {
        use ast::Expr as E;
        if depth > MAX_DEPTH {
            return;
        }
        let d = depth + 1;
        let is_link = match expr {
            E::GetAttr(_) | E::GetItem(_) | E::Call(_) => true,
            E::Filter(f) => f.name == "attr",
            _ => false,
        };
        if is_link && !in_chain {
            self.classify_chain(expr);
        }
        match expr {
            E::Var(v) => self.var(v.id, v.span()),
            E::Const(c) => {
                if let Some(escape) = c.value.as_str().and_then(escape_in) {
                    self.signal(
                        "002",
                        Severity::High,
                        format!(
                            "a string constant spells `{escape}`, usable with |attr or str.format"
                        ),
                        c.span(),
                    );
                }
            }
            E::Slice(s) => {
                self.expr(&s.expr, d, false);
                for e in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(e, d, false);
                }
            }
            E::UnaryOp(u) => self.expr(&u.expr, d, false),
            E::BinOp(b) => {
                self.fold_check(expr);
                self.expr(&b.left, d, false);
                self.expr(&b.right, d, false);
            }
            E::Compare(c) => {
                self.expr(&c.expr, d, false);
                for op in &c.ops {
                    self.expr(&op.expr, d, false);
                }
            }
            E::IfExpr(i) => {
                self.expr(&i.test_expr, d, false);
                self.expr(&i.true_expr, d, false);
                if let Some(e) = &i.false_expr {
                    self.expr(e, d, false);
                }
            }
            E::Filter(f) => {
                if f.name != "attr" {
                    self.fold_check(expr);
                }
                if let Some(e) = &f.expr {
                    self.expr(e, d, is_link);
                }
                self.args(&f.args, d);
            }
            E::Test(t) => {
                self.expr(&t.expr, d, false);
                self.args(&t.args, d);
            }
            E::GetAttr(g) => self.expr(&g.expr, d, true),
            E::GetItem(g) => {
                self.expr(&g.expr, d, true);
                self.expr(&g.subscript_expr, d, false);
            }
            E::Call(c) => self.call(c, d, true),
            E::List(l) => self.exprs(&l.items, d),
            E::Map(m) => {
                self.exprs(&m.keys, d);
                self.exprs(&m.values, d);
            }
        }
    }

    fn var(&mut self, id: &str, span: Span) {
        if MODULE_VARS.contains(&id) {
            self.signal(
                "003",
                Severity::Medium,
                format!(
                    "the template uses a variable named `{id}`, which a chat template never needs"
                ),
                span,
            );
        } else if NOTABLE_GADGETS.contains(&id) {
            self.signal(
                "004",
                Severity::Low,
                format!("the template uses `{id}`, a Jinja global that template-injection payloads start from"),
                span,
            );
        }
    }

    /// A folded string built from pieces (concatenation, join, reverse, format) that spells an
    /// escape name is reported even when it is not used as an attribute (yet).
    fn fold_check(&mut self, expr: &ast::Expr<'_>) {
        if let Some(text) = self.fold(expr, 0).and_then(Folded::into_str)
            && let Some(escape) = escape_in(&text)
        {
            self.signal(
                "002",
                Severity::High,
                format!("an expression builds the string `{escape}` from pieces"),
                expr.span(),
            );
        }
    }

    /// Collects the links of the chain ending at `expr` (outermost first) and its root variable.
    fn chain<'e>(&self, mut expr: &'e ast::Expr<'e>) -> (Option<&'e str>, Vec<Step>) {
        use ast::Expr as E;
        let mut steps = Vec::new();
        let mut called = false;
        for _ in 0..MAX_DEPTH {
            let was_called = std::mem::take(&mut called);
            expr = match expr {
                E::GetAttr(g) => {
                    steps.push(Step {
                        called: was_called,
                        name: Some(g.name.to_owned()),
                        via_attr: false,
                        span: g.span(),
                    });
                    &g.expr
                }
                E::GetItem(g) => {
                    steps.push(Step {
                        called: was_called,
                        name: self.fold(&g.subscript_expr, 0).and_then(Folded::into_str),
                        via_attr: false,
                        span: g.span(),
                    });
                    &g.expr
                }
                E::Filter(f) if f.name == "attr" => {
                    let name = match f.args.first() {
                        Some(ast::CallArg::Pos(e)) => self.fold(e, 0).and_then(Folded::into_str),
                        _ => None,
                    };
                    steps.push(Step {
                        called: was_called,
                        name,
                        via_attr: true,
                        span: f.span(),
                    });
                    match &f.expr {
                        Some(e) => e,
                        None => break,
                    }
                }
                E::Call(c) => {
                    called = true;
                    &c.expr
                }
                E::Var(v) => return (Some(v.id), steps),
                _ => break,
            };
        }
        (None, steps)
    }

    fn classify_chain(&mut self, expr: &ast::Expr<'_>) {
        let (root, steps) = self.chain(expr);
        let names: Vec<&str> = steps
            .iter()
            .rev()
            .filter_map(|s| s.name.as_deref())
            .collect();
        let path = names.join(".");
        let from_gadget = root.is_some_and(|r| GADGET_ROOTS.contains(&r));
        let escape = names.iter().find(|n| ESCAPES.contains(n));
        let dunder = names.iter().find(|n| is_dunder(n));
        let span = expr.span();
        let shown = format!("{}.{path}", root.unwrap_or("<expr>"));
        if let Some(escape) = escape {
            self.signal(
                "001",
                Severity::Critical,
                format!("attribute chain `{shown}` reaches `{escape}`: arbitrary Python when rendered outside a sandbox (CVE-2024-34359)"),
                span,
            );
        } else if let (true, Some(dunder)) = (from_gadget, dunder) {
            self.signal(
                "001",
                Severity::Critical,
                format!("attribute chain `{shown}` reaches `{dunder}` from the Jinja global `{}`, a known route to Python globals", root.unwrap_or("")),
                span,
            );
        } else if let Some(name) = names
            .iter()
            .copied()
            .find(|n| is_dunder(n) || n.starts_with('_') || DANGEROUS_ATTRS.contains(n))
            .or_else(|| {
                steps
                    .iter()
                    .filter(|s| s.called)
                    .filter_map(|s| s.name.as_deref())
                    .find(|n| DANGEROUS_CALLS.contains(n))
            })
        {
            self.signal(
                "002",
                Severity::High,
                format!(
                    "attribute chain `{shown}` accesses `{name}`, which a chat template never needs"
                ),
                span,
            );
        }
        for step in &steps {
            if step.name.is_none() && step.via_attr {
                self.signal(
                    "003",
                    Severity::Medium,
                    "`|attr()` with a name computed at render time".to_owned(),
                    step.span,
                );
            }
        }
    }

    /// Folds an expression of constants to its value, if it is one.
    fn fold(&self, expr: &ast::Expr<'_>, depth: usize) -> Option<Folded> {
        use ast::Expr as E;
        if depth > 32 {
            return None;
        }
        let d = depth + 1;
        match expr {
            E::Const(c) => {
                if let Some(s) = c.value.as_str() {
                    Some(Folded::Str(s.to_owned()))
                } else {
                    i64::try_from(c.value.clone()).ok().map(Folded::Int)
                }
            }
            E::Var(v) => self.consts.get(v.id).cloned(),
            E::UnaryOp(u) => match (&u.op, self.fold(&u.expr, d)?) {
                (ast::UnaryOpKind::Neg, Folded::Int(i)) => i.checked_neg().map(Folded::Int),
                _ => None,
            },
            E::List(l) => l
                .items
                .iter()
                .map(|e| self.fold(e, d))
                .collect::<Option<Vec<_>>>()
                .map(Folded::List),
            E::BinOp(b) => {
                let left = self.fold(&b.left, d)?;
                let right = self.fold(&b.right, d)?;
                fold_binop(b.op, left, right)
            }
            E::Filter(f) => {
                let value = self.fold(f.expr.as_ref()?, d)?;
                let args: Vec<Folded> = f
                    .args
                    .iter()
                    .map(|a| match a {
                        ast::CallArg::Pos(e) => self.fold(e, d),
                        _ => None,
                    })
                    .collect::<Option<_>>()?;
                fold_filter(f.name, value, &args)
            }
            E::Slice(s) => {
                let value = self.fold(&s.expr, d)?.into_str()?;
                let step = match &s.step {
                    Some(e) => match self.fold(e, d)? {
                        Folded::Int(i) => i,
                        _ => return None,
                    },
                    None => 1,
                };
                (s.start.is_none() && s.stop.is_none() && step == -1)
                    .then(|| Folded::Str(value.chars().rev().collect()))
            }
            _ => None,
        }
    }
}

mod fold;
mod tokens;

use fold::{Folded, fold_binop, fold_filter};
use tokens::token_analysis;

#[cfg(test)]
pub(crate) mod tests;
