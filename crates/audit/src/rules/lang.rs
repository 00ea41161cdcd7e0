//! The condition language: parsing text into an expression tree.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | primary
//! primary := "(" expr ")" | ("any" | "all") "(" FIELD "," expr ")" | FIELD OP value
//!          | FIELD "exists" | FIELD "not" OP value | MACRO | "true" | "false"
//! value   := "(" item ("," item)* ")" | item            item := WORD | 'text' | "text" | NUMBER
//! OP      := = == != < <= > >= in startswith endswith contains icontains glob cidr pmatch
//! ```
//!
//! It reads like Falco's rule conditions, which the people who write Kubernetes detections
//! already know; CEL (what admission policies use) was the other candidate, but the `cel` crate
//! evaluates over owned values built per event, and the catalogue must run allocation-free at
//! hundreds of thousands of events per second, so the language is small and compiled here.

use std::fmt;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Const(bool),
    /// A macro or named condition, resolved when compiling.
    Name(String),
    Compare {
        field: String,
        op: CmpOp,
        value: Vec<Item>,
    },
    Exists(String),
    Quantified {
        all: bool,
        collection: String,
        body: Box<Expr>,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    StartsWith,
    EndsWith,
    Contains,
    IContains,
    Glob,
    Cidr,
    /// Path prefix: `/etc` matches `/etc` and `/etc/x`, not `/etcx`.
    PathPrefix,
}

impl CmpOp {
    fn from_word(w: &str) -> Option<CmpOp> {
        Some(match w {
            "=" | "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            "in" => CmpOp::In,
            "startswith" => CmpOp::StartsWith,
            "endswith" => CmpOp::EndsWith,
            "contains" => CmpOp::Contains,
            "icontains" => CmpOp::IContains,
            "glob" => CmpOp::Glob,
            "cidr" => CmpOp::Cidr,
            "pmatch" => CmpOp::PathPrefix,
            _ => return None,
        })
    }
}

/// A literal in a value list; bare words may name lists.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Word(String),
    Text(String),
}

impl Item {
    pub fn text(&self) -> &str {
        match self {
            Item::Word(s) | Item::Text(s) => s,
        }
    }
}

/// A syntax error at a byte offset of the condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Text(String),
    Symbol(&'static str),
    Open,
    Close,
    Comma,
}

/// Conditions longer than this are refused (a rule is a few lines, not a program).
pub const MAX_CONDITION: usize = 64 << 10;
/// Nesting depth of parentheses and `not`.
pub const MAX_DEPTH: usize = 64;

pub fn parse(text: &str) -> Result<Expr, SyntaxError> {
    if text.len() > MAX_CONDITION {
        return Err(SyntaxError {
            offset: 0,
            message: format!("condition longer than {MAX_CONDITION} bytes"),
        });
    }
    let toks = lex(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        len: text.len(),
    };
    let e = p.expr()?;
    if p.pos < p.toks.len() {
        return Err(p.error("unexpected text after the end of the condition"));
    }
    Ok(e)
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, SyntaxError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            _ if c.is_ascii_whitespace() => i += 1,
            b'(' => {
                out.push((start, Tok::Open));
                i += 1;
            }
            b')' => {
                out.push((start, Tok::Close));
                i += 1;
            }
            b',' => {
                out.push((start, Tok::Comma));
                i += 1;
            }
            b'\'' | b'"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => {
                            return Err(SyntaxError {
                                offset: start,
                                message: "unterminated string".into(),
                            });
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') if b.get(i + 1).is_some() => {
                            // Only the quote and the backslash are escapes.
                            let n = b[i + 1];
                            if n == c || n == b'\\' {
                                s.push(n as char);
                                i += 2;
                            } else {
                                s.push('\\');
                                i += 1;
                            }
                        }
                        Some(_) => {
                            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
                            s.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                out.push((start, Tok::Text(s)));
            }
            b'=' | b'!' | b'<' | b'>' => {
                let two = b.get(i + 1) == Some(&b'=');
                let sym = match (c, two) {
                    (b'=', true) => "==",
                    (b'=', false) => "=",
                    (b'!', true) => "!=",
                    (b'<', true) => "<=",
                    (b'<', false) => "<",
                    (b'>', true) => ">=",
                    (b'>', false) => ">",
                    _ => {
                        return Err(SyntaxError {
                            offset: start,
                            message: "`!` must be followed by `=`".into(),
                        });
                    }
                };
                i += if two { 2 } else { 1 };
                out.push((start, Tok::Symbol(sym)));
            }
            _ => {
                while i < b.len()
                    && !b[i].is_ascii_whitespace()
                    && !matches!(
                        b[i],
                        b'(' | b')' | b',' | b'=' | b'!' | b'<' | b'>' | b'\'' | b'"'
                    )
                {
                    i += 1;
                }
                out.push((start, Tok::Word(text[start..i].to_string())));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
    len: usize,
}

impl Parser {
    fn error(&self, message: &str) -> SyntaxError {
        SyntaxError {
            offset: self.toks.get(self.pos).map(|t| t.0).unwrap_or(self.len),
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }

    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.1.clone());
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), SyntaxError> {
        if self.peek() == Some(&want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }

    fn deeper(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("condition nested too deeply"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        let mut parts = vec![self.and()?];
        while self.peek_word("or") {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or(Expr::Const(false))
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut parts = vec![self.unary()?];
        while self.peek_word("and") {
            self.pos += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or(Expr::Const(true))
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        if self.peek_word("not") {
            self.pos += 1;
            self.deeper()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        match self.next() {
            Some(Tok::Open) => {
                self.deeper()?;
                let e = self.expr()?;
                self.depth -= 1;
                self.expect(Tok::Close, "`)`")?;
                Ok(e)
            }
            Some(Tok::Word(w)) if (w == "any" || w == "all") && self.peek() == Some(&Tok::Open) => {
                self.pos += 1;
                let collection = match self.next() {
                    Some(Tok::Word(f)) => f,
                    _ => {
                        self.pos -= 1;
                        return Err(self.error("expected a field to iterate over"));
                    }
                };
                self.expect(Tok::Comma, "`,` after the collection")?;
                self.deeper()?;
                let body = self.expr()?;
                self.depth -= 1;
                self.expect(Tok::Close, "`)`")?;
                Ok(Expr::Quantified {
                    all: w == "all",
                    collection,
                    body: Box::new(body),
                })
            }
            Some(Tok::Word(w)) if w == "true" => Ok(Expr::Const(true)),
            Some(Tok::Word(w)) if w == "false" => Ok(Expr::Const(false)),
            Some(Tok::Word(w)) if matches!(w.as_str(), "and" | "or") => {
                self.pos -= 1;
                Err(self.error(&format!("`{w}` needs something on its left")))
            }
            Some(Tok::Word(w)) => self.after_word(w),
            Some(_) => {
                self.pos -= 1;
                Err(self.error("expected a field, a macro or `(`"))
            }
            None => Err(self.error("condition ends too early")),
        }
    }

    /// A word followed by an operator is a field; alone it is a macro name.
    fn after_word(&mut self, w: String) -> Result<Expr, SyntaxError> {
        if self.peek_word("exists") {
            self.pos += 1;
            return Ok(Expr::Exists(w));
        }
        let negate = self.peek_word("not")
            && matches!(self.toks.get(self.pos + 1).map(|t| &t.1), Some(Tok::Word(o)) if CmpOp::from_word(o).is_some());
        if negate {
            self.pos += 1;
        }
        let op = match self.peek() {
            Some(Tok::Word(o)) => CmpOp::from_word(o),
            Some(Tok::Symbol(s)) => CmpOp::from_word(s),
            _ => None,
        };
        let Some(op) = op else {
            return Ok(Expr::Name(w));
        };
        self.pos += 1;
        let value = self.value()?;
        let cmp = Expr::Compare {
            field: w,
            op,
            value,
        };
        Ok(if negate {
            Expr::Not(Box::new(cmp))
        } else {
            cmp
        })
    }

    fn value(&mut self) -> Result<Vec<Item>, SyntaxError> {
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let mut items = Vec::new();
            if self.peek() == Some(&Tok::Close) {
                self.pos += 1;
                return Ok(items);
            }
            loop {
                items.push(self.item()?);
                match self.next() {
                    Some(Tok::Comma) => {}
                    Some(Tok::Close) => return Ok(items),
                    _ => {
                        self.pos -= 1;
                        return Err(self.error("expected `,` or `)` in a list"));
                    }
                }
            }
        }
        Ok(vec![self.item()?])
    }

    fn item(&mut self) -> Result<Item, SyntaxError> {
        match self.next() {
            Some(Tok::Word(w)) => Ok(Item::Word(w)),
            Some(Tok::Text(t)) => Ok(Item::Text(t)),
            _ => {
                self.pos -= 1;
                Err(self.error("expected a value"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Item {
        Item::Word(s.into())
    }

    #[test]
    fn precedence_and_forms() {
        let e =
            parse("verb in (create, update) and not user.name startswith 'system:' or anonymous")
                .unwrap();
        let Expr::Or(parts) = e else { panic!("{e:?}") };
        assert_eq!(parts[1], Expr::Name("anonymous".into()));
        let Expr::And(a) = &parts[0] else { panic!() };
        assert_eq!(
            a[0],
            Expr::Compare {
                field: "verb".into(),
                op: CmpOp::In,
                value: vec![w("create"), w("update")]
            }
        );
        assert!(
            matches!(&a[1], Expr::Not(b) if matches!(**b, Expr::Compare { op: CmpOp::StartsWith, .. }))
        );
    }

    #[test]
    fn symbols_quantifiers_and_negated_ops() {
        assert_eq!(
            parse("code>=400").unwrap(),
            Expr::Compare {
                field: "code".into(),
                op: CmpOp::Ge,
                value: vec![w("400")]
            }
        );
        let e = parse("any(pod.containers, it.securityContext.privileged = true and it.image not startswith \"k8s.gcr.io/\")").unwrap();
        assert!(matches!(e, Expr::Quantified { all: false, .. }));
        assert_eq!(parse("name exists").unwrap(), Expr::Exists("name".into()));
        assert!(matches!(parse("ns not in (a,b)").unwrap(), Expr::Not(_)));
        assert_eq!(
            parse(r#"uri contains 'it\'s'"#).unwrap(),
            Expr::Compare {
                field: "uri".into(),
                op: CmpOp::Contains,
                value: vec![Item::Text("it's".into())]
            }
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        for (text, at) in [
            ("verb in (create", 15),
            ("(verb = get", 11),
            ("verb = ", 7),
            ("and verb = get", 0),
            ("verb = 'x", 7),
            ("verb = get get2 x", 11),
            ("verb ! get", 5),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.offset, at, "{text}: {e}");
        }
        let deep = format!("{}verb = get{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).unwrap_err().message.contains("deeply"));
    }
}
