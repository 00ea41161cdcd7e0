//! Compiled conditions: expression trees with fields resolved, lists expanded, macros inlined
//! and every literal prepared for its operator (sets, lower-cased needles, glob sets, CIDR
//! sets), so evaluating one allocates nothing.

use std::collections::{HashMap, HashSet};

use aho_corasick::AhoCorasick;
use globset::{Glob, GlobSet, GlobSetBuilder};
use ipnet::IpNet;

use super::field::{Cx, Field, Val, strings_in};
use super::lang::{CmpOp, Expr, Item};
use crate::intel::IpSet;

/// A compiled condition.
#[derive(Debug, Clone)]
pub enum Cond {
    And(Box<[Cond]>),
    Or(Box<[Cond]>),
    Not(Box<Cond>),
    Const(bool),
    Test(Field, Test),
    Exists(Field),
    Any(Field, Box<Cond>),
    All(Field, Box<Cond>),
}

/// An operator with its prepared operand.
#[derive(Debug, Clone)]
pub enum Test {
    Eq(Literals),
    Num(CmpOp, f64),
    StartsWith(Box<[Box<str>]>),
    EndsWith(Box<[Box<str>]>),
    /// Substrings, found in one pass whatever their number (Aho-Corasick).
    Contains(AhoCorasick),
    /// The same, ASCII-case-insensitively.
    IContains(AhoCorasick),
    Glob(GlobSet),
    Cidr(IpSet),
    PathPrefix(Box<[Box<str>]>),
}

/// The literals of `=` / `in`: strings, and the numbers and booleans among them.
#[derive(Debug, Clone, Default)]
pub struct Literals {
    small: Vec<Box<str>>,
    large: HashSet<Box<str>>,
    nums: Vec<f64>,
    bools: [bool; 2],
}

impl Literals {
    fn new(items: Vec<String>) -> Literals {
        let mut l = Literals::default();
        for s in &items {
            if let Ok(n) = s.parse::<f64>() {
                l.nums.push(n);
            }
            match s.as_str() {
                "true" => l.bools[1] = true,
                "false" => l.bools[0] = true,
                _ => {}
            }
        }
        // A handful of strings compare faster one by one than through a hash.
        if items.len() <= 8 {
            l.small = items.into_iter().map(Box::from).collect();
        } else {
            l.large = items.into_iter().map(Box::from).collect();
        }
        l
    }

    fn has_str(&self, s: &str) -> bool {
        if self.large.is_empty() {
            self.small.iter().any(|x| x.as_ref() == s)
        } else {
            self.large.contains(s)
        }
    }

    fn matches(&self, v: &Val<'_>) -> bool {
        match v {
            Val::Str(s) => self.has_str(s),
            Val::Num(n) => self.nums.contains(n),
            Val::Bool(b) => self.bools[usize::from(*b)],
            Val::Compound(_) => false,
        }
    }
}

/// Named lists and macros a condition may use.
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub lists: HashMap<String, Vec<String>>,
    pub macros: HashMap<String, Expr>,
}

/// Compiles an expression. Errors say what is wrong in words (the caller names the rule).
pub fn compile(e: &Expr, names: &Names) -> Result<Cond, String> {
    compile_in(e, names, &mut Vec::new())
}

fn compile_in(e: &Expr, names: &Names, expanding: &mut Vec<String>) -> Result<Cond, String> {
    Ok(match e {
        Expr::And(parts) => Cond::And(cheapest_first(
            parts
                .iter()
                .map(|p| compile_in(p, names, expanding))
                .collect::<Result<_, _>>()?,
        )),
        Expr::Or(parts) => Cond::Or(cheapest_first(
            parts
                .iter()
                .map(|p| compile_in(p, names, expanding))
                .collect::<Result<_, _>>()?,
        )),
        Expr::Not(inner) => Cond::Not(Box::new(compile_in(inner, names, expanding)?)),
        Expr::Const(b) => Cond::Const(*b),
        Expr::Name(n) => {
            let Some(m) = names.macros.get(n) else {
                return Err(format!(
                    "`{n}` is neither a macro nor a field followed by an operator"
                ));
            };
            if expanding.contains(n) {
                return Err(format!("macro `{n}` refers to itself"));
            }
            expanding.push(n.clone());
            let c = compile_in(m, names, expanding)?;
            expanding.pop();
            c
        }
        Expr::Exists(f) => Cond::Exists(Field::parse(f)?),
        Expr::Quantified {
            all,
            collection,
            body,
        } => {
            let field = Field::parse(collection)?;
            if !field.reads_body() && !matches!(field, Field::It(_)) {
                return Err(format!(
                    "`{collection}` is not a list of objects to iterate over"
                ));
            }
            let body = Box::new(compile_in(body, names, expanding)?);
            if *all {
                Cond::All(field, body)
            } else {
                Cond::Any(field, body)
            }
        }
        Expr::Compare { field, op, value } => {
            let f = Field::parse(field)?;
            let items = expand(value, names);
            match op {
                CmpOp::Ne => Cond::Not(Box::new(Cond::Test(f, Test::Eq(Literals::new(items))))),
                _ => Cond::Test(f, test(*op, items)?),
            }
        }
    })
}

/// Conditions have no side effects, so the parts of `and`/`or` are evaluated cheapest first:
/// a verb or resource comparison settles most events before a body is parsed or a list of
/// substrings searched.
fn cheapest_first(mut parts: Vec<Cond>) -> Box<[Cond]> {
    parts.sort_by_key(Cond::cost);
    parts.into_boxed_slice()
}

/// Values with list names replaced by the lists' items.
fn expand(value: &[Item], names: &Names) -> Vec<String> {
    let mut out = Vec::new();
    for item in value {
        match item {
            Item::Word(w) => match names.lists.get(w) {
                Some(list) => out.extend(list.iter().cloned()),
                None => out.push(w.clone()),
            },
            Item::Text(t) => out.push(t.clone()),
        }
    }
    out
}

fn boxed(items: Vec<String>) -> Box<[Box<str>]> {
    items.into_iter().map(Box::from).collect()
}

fn test(op: CmpOp, items: Vec<String>) -> Result<Test, String> {
    Ok(match op {
        CmpOp::Eq | CmpOp::In => Test::Eq(Literals::new(items)),
        CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
            let [one] = items.as_slice() else {
                return Err("a comparison takes one number".into());
            };
            let n = one
                .parse::<f64>()
                .map_err(|_| format!("{one:?} is not a number"))?;
            Test::Num(op, n)
        }
        CmpOp::StartsWith => Test::StartsWith(boxed(items)),
        CmpOp::EndsWith => Test::EndsWith(boxed(items)),
        CmpOp::Contains | CmpOp::IContains => {
            let ac = AhoCorasick::builder()
                .ascii_case_insensitive(op == CmpOp::IContains)
                .build(&items)
                .map_err(|e| format!("cannot search for {items:?}: {e}"))?;
            if op == CmpOp::IContains {
                Test::IContains(ac)
            } else {
                Test::Contains(ac)
            }
        }
        CmpOp::PathPrefix => Test::PathPrefix(boxed(
            items
                .into_iter()
                .map(|s| {
                    let t = s.trim_end_matches('/');
                    if t.is_empty() {
                        "/".into()
                    } else {
                        t.to_string()
                    }
                })
                .collect(),
        )),
        CmpOp::Glob => {
            let mut b = GlobSetBuilder::new();
            for g in &items {
                b.add(Glob::new(g).map_err(|e| format!("bad glob {g:?}: {e}"))?);
            }
            Test::Glob(b.build().map_err(|e| e.to_string())?)
        }
        CmpOp::Cidr => {
            let mut nets = Vec::new();
            for s in &items {
                let n = s
                    .parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
                nets.push(n.trunc());
            }
            Test::Cidr(IpSet::from_nets(nets))
        }
        CmpOp::Ne => unreachable!("handled by the caller"),
    })
}

fn path_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return path == "/";
    }
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

impl Test {
    fn on_str(&self, s: &str) -> bool {
        match self {
            Test::Eq(l) => l.has_str(s),
            Test::Num(..) => false,
            Test::StartsWith(p) => p.iter().any(|p| s.starts_with(p.as_ref())),
            Test::EndsWith(p) => p.iter().any(|p| s.ends_with(p.as_ref())),
            Test::Contains(ac) | Test::IContains(ac) => ac.is_match(s),
            Test::Glob(g) => g.is_match(s),
            Test::Cidr(set) => s
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| set.contains(ip)),
            Test::PathPrefix(p) => p.iter().any(|p| path_prefix(s, p)),
        }
    }

    fn matches(&self, v: &Val<'_>) -> bool {
        match (self, v) {
            (Test::Eq(l), v) => l.matches(v),
            (Test::Num(op, x), Val::Num(n)) => match op {
                CmpOp::Lt => n < x,
                CmpOp::Le => n <= x,
                CmpOp::Gt => n > x,
                CmpOp::Ge => n >= x,
                _ => false,
            },
            (Test::Num(op, x), Val::Str(s)) => s
                .parse::<f64>()
                .is_ok_and(|n| Test::Num(*op, *x).matches(&Val::Num(n))),
            (_, Val::Str(s)) => self.on_str(s),
            // Substring tests look inside objects (a ConfigMap's data, a command line list).
            (Test::Contains(_) | Test::IContains(_), Val::Compound(c)) => {
                strings_in(c, &mut |s| self.on_str(s))
            }
            _ => false,
        }
    }
}

impl Cond {
    pub fn eval(&self, cx: &Cx<'_, '_>) -> bool {
        match self {
            Cond::And(parts) => parts.iter().all(|p| p.eval(cx)),
            Cond::Or(parts) => parts.iter().any(|p| p.eval(cx)),
            Cond::Not(inner) => !inner.eval(cx),
            Cond::Const(b) => *b,
            Cond::Test(field, test) => cx.each(field, &mut |v| test.matches(&v)),
            Cond::Exists(field) => cx.each(field, &mut |_| true),
            Cond::Any(field, body) => cx.elements(field, &mut |el| {
                let inner = Cx {
                    event: cx.event,
                    intel: cx.intel,
                    it: Some(el),
                };
                body.eval(&inner)
            }),
            Cond::All(field, body) => {
                // All elements pass: no element fails (and there is at least one).
                let mut seen = false;
                let failed = cx.elements(field, &mut |el| {
                    seen = true;
                    let inner = Cx {
                        event: cx.event,
                        intel: cx.intel,
                        it: Some(el),
                    };
                    !body.eval(&inner)
                });
                seen && !failed
            }
        }
    }

    /// Values a top-level conjunct pins `field` to (`verb in (create, patch) and …`), used to
    /// index rules: `None` when the condition does not pin it.
    pub fn pinned(&self, field: &Field) -> Option<Vec<String>> {
        match self {
            Cond::Test(f, Test::Eq(l)) if f == field && l.large.is_empty() => {
                Some(l.small.iter().map(|s| s.to_string()).collect())
            }
            Cond::Test(f, Test::Eq(l)) if f == field => {
                Some(l.large.iter().map(|s| s.to_string()).collect())
            }
            Cond::And(parts) => parts.iter().find_map(|p| p.pinned(field)),
            Cond::Or(parts) => {
                let mut all = Vec::new();
                for p in parts.iter() {
                    all.extend(p.pinned(field)?);
                }
                Some(all)
            }
            _ => None,
        }
    }

    /// A rough cost of evaluating the condition, for ordering conjuncts.
    pub fn cost(&self) -> u32 {
        match self {
            Cond::Const(_) => 0,
            Cond::And(p) | Cond::Or(p) => p.iter().map(Cond::cost).sum::<u32>() + 1,
            Cond::Not(c) => c.cost(),
            Cond::Exists(f) => field_cost(f),
            Cond::Test(f, t) => {
                field_cost(f)
                    + match t {
                        Test::Eq(_) | Test::Num(..) => 1,
                        Test::StartsWith(p) | Test::EndsWith(p) | Test::PathPrefix(p) => {
                            1 + p.len() as u32 / 4
                        }
                        Test::Contains(_) | Test::IContains(_) | Test::Glob(_) => 4,
                        Test::Cidr(_) => 6,
                    }
            }
            Cond::Any(..) | Cond::All(..) => 60,
        }
    }

    /// Whether evaluating the condition reads a request or response body.
    pub fn reads_body(&self) -> bool {
        match self {
            Cond::And(p) | Cond::Or(p) => p.iter().any(Cond::reads_body),
            Cond::Not(c) => c.reads_body(),
            Cond::Const(_) => false,
            Cond::Test(f, _) | Cond::Exists(f) => f.reads_body(),
            Cond::Any(..) | Cond::All(..) => true,
        }
    }
}

fn field_cost(f: &Field) -> u32 {
    match f {
        Field::Request(_) | Field::Response(_) | Field::Pod(_) | Field::PodContainers(_) => 40,
        Field::It(_) => 3,
        Field::UriParam(_) | Field::ResourcePath => 8,
        Field::UserGroups | Field::ImpersonatedGroups | Field::SourceIps => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Decoder, Event};
    use crate::intel::IntelHit;
    use crate::rules::lang::parse;

    fn names() -> Names {
        let mut n = Names::default();
        n.lists.insert(
            "writes".into(),
            vec!["create".into(), "update".into(), "patch".into()],
        );
        n.macros
            .insert("is_pod".into(), parse("resource = pods").unwrap());
        n.macros
            .insert("loop".into(), parse("loop and verb = get").unwrap());
        n
    }

    fn check(event: &str, cond: &str) -> bool {
        let c = compile(&parse(cond).unwrap(), &names()).unwrap();
        let mut out = None;
        Decoder::default().decode(event.as_bytes(), &mut |e: Event<'_>| {
            let hit = IntelHit::default();
            let cx = Cx {
                event: &e,
                intel: &hit,
                it: None,
            };
            out = Some(c.eval(&cx));
        });
        out.expect("an event")
    }

    const POD: &str = r#"{"kind":"Event","auditID":"1","verb":"create","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods/x/exec?command=sh&command=-c&command=cat%20%2Fetc%2Fshadow","user":{"username":"alice","groups":["dev","system:authenticated"]},"sourceIPs":["203.0.113.9"],"objectRef":{"resource":"pods","namespace":"default","name":"x"},"responseStatus":{"code":201},
      "requestObject":{"kind":"Pod","spec":{"hostPID":true,"containers":[{"name":"a","image":"nginx:1","securityContext":{"privileged":false}},{"name":"b","image":"busybox","securityContext":{"privileged":true,"capabilities":{"add":["NET_ADMIN"]}}}],"volumes":[{"name":"v","hostPath":{"path":"/var/run/docker.sock/"}}]},"data":{"aws_access_key_id":"x"}}}"#;

    #[test]
    fn fields_operators_and_quantifiers() {
        for (cond, want) in [
            ("verb in writes and is_pod", true),
            ("verb != create", false),
            ("user.groups = dev", true),
            ("user.groups in (ops, admin)", false),
            ("user.name startswith ali and user.name endswith ce", true),
            ("code >= 200 and code < 300", true),
            ("code > 201", false),
            ("source.ip cidr (203.0.113.0/24)", true),
            ("source.ip cidr 10.0.0.0/8", false),
            ("pod.hostPID = true", true),
            ("pod.hostNetwork = true", false),
            ("pod.hostNetwork exists", false),
            (
                "any(pod.containers, it.securityContext.privileged = true and it.image = busybox)",
                true,
            ),
            (
                "any(pod.containers, it.securityContext.privileged = true and it.image = nginx:1)",
                false,
            ),
            ("all(pod.containers, it.image exists)", true),
            (
                "all(pod.containers, it.securityContext.privileged = true)",
                false,
            ),
            (
                "pod.containers.securityContext.capabilities.add in (SYS_ADMIN, NET_ADMIN)",
                true,
            ),
            (
                "pod.volumes.hostPath.path pmatch (/var/run/docker.sock)",
                true,
            ),
            ("pod.volumes.hostPath.path pmatch (/var/run/docker)", false),
            ("pod.volumes.hostPath.path pmatch (/var)", true),
            ("request.data contains aws_access_key_id", true),
            ("request.data icontains AWS_ACCESS", true),
            ("uri.param.command = '-c'", true),
            ("uri.param.command contains '/etc/shadow'", true),
            ("uri.path glob '/api/v1/namespaces/*/pods/*/exec'", true),
            ("response exists", false),
            ("not (request exists)", false),
        ] {
            assert_eq!(check(POD, cond), want, "{cond}");
        }
    }

    #[test]
    fn compile_errors() {
        let e = compile(&parse("nope").unwrap(), &names()).unwrap_err();
        assert!(e.contains("nope"), "{e}");
        assert!(
            compile(&parse("loop").unwrap(), &names())
                .unwrap_err()
                .contains("itself")
        );
        assert!(
            compile(&parse("frobs = 1").unwrap(), &names())
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(compile(&parse("code > abc").unwrap(), &names()).is_err());
        assert!(compile(&parse("source.ip cidr 300.1.1.1").unwrap(), &names()).is_err());
        assert!(compile(&parse("any(verb, it = x)").unwrap(), &names()).is_err());
    }

    #[test]
    fn pinned_values_for_the_index() {
        let c = compile(
            &parse("verb in writes and resource = pods").unwrap(),
            &names(),
        )
        .unwrap();
        assert_eq!(
            c.pinned(&Field::Verb).unwrap(),
            ["create", "update", "patch"]
        );
        assert_eq!(c.pinned(&Field::Resource).unwrap(), ["pods"]);
        let c = compile(
            &parse("(verb = get and resource = secrets) or (verb = list and resource = pods)")
                .unwrap(),
            &names(),
        )
        .unwrap();
        assert_eq!(c.pinned(&Field::Resource).unwrap(), ["secrets", "pods"]);
        let c = compile(&parse("verb = get or user.name = x").unwrap(), &names()).unwrap();
        assert!(c.pinned(&Field::Verb).is_none());
        assert!(!c.reads_body());
    }
}
