//! Rules as data: YAML files of lists, macros and rules, compiled once into a [`RuleSet`].
//!
//! ```yaml
//! lists:
//!   - name: sensitive_host_paths
//!     items: [/, /proc, /etc, /var/run/docker.sock]
//! macros:
//!   - name: pod_write
//!     condition: verb in (create, update, patch) and resource = pods
//! rules:
//!   - id: osprey.sensitive-host-path
//!     title: Pod mounts a sensitive host path
//!     type: Persistence:Kubernetes/ContainerWithSensitiveMount
//!     severity: High
//!     catalogue: [C23]
//!     mitre: { tactic: TA0004, technique: T1611 }
//!     condition: pod_write and pod.volumes.hostPath.path pmatch sensitive_host_paths
//!     exceptions: [ "namespace = monitoring and name startswith node-exporter" ]
//! exceptions:            # allow-list entries for rules defined elsewhere
//!   - rule: osprey.sensitive-host-path
//!     condition: user.name = system:serviceaccount:ci:deployer
//! disable: [osprey.audit-trail]
//! ```
//!
//! Files are read in order (the built-in catalogue first, then `--rules DIR` files by name); a
//! later list or macro of the same name replaces the earlier one unless it says `append: true`,
//! a later rule of the same id replaces it. Errors name the file, and the rule and offset of a
//! bad condition.

pub mod cond;
pub mod field;
pub mod lang;

use std::collections::HashMap;
use std::path::Path;

use osprey_model::{Severity, SeverityLabel};
use serde::Deserialize;

use cond::{Cond, Names, compile};
use field::Field;

/// The catalogue shipped in the binary.
pub const BUILTIN: &[(&str, &str)] = &[
    ("builtin/lists.yaml", include_str!("../../rules/lists.yaml")),
    (
        "builtin/access.yaml",
        include_str!("../../rules/access.yaml"),
    ),
    ("builtin/intel.yaml", include_str!("../../rules/intel.yaml")),
    (
        "builtin/workloads.yaml",
        include_str!("../../rules/workloads.yaml"),
    ),
    ("builtin/rbac.yaml", include_str!("../../rules/rbac.yaml")),
    (
        "builtin/secrets.yaml",
        include_str!("../../rules/secrets.yaml"),
    ),
    (
        "builtin/cluster.yaml",
        include_str!("../../rules/cluster.yaml"),
    ),
    (
        "builtin/anomaly.yaml",
        include_str!("../../rules/anomaly.yaml"),
    ),
];

/// Limits on rule files.
pub const MAX_RULE_FILE: u64 = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("{file}: rule {rule}: {message}")]
    Rule {
        file: String,
        rule: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    lists: Vec<ListDef>,
    #[serde(default)]
    macros: Vec<MacroDef>,
    #[serde(default)]
    rules: Vec<RuleDef>,
    #[serde(default)]
    exceptions: Vec<ExceptionDef>,
    #[serde(default)]
    disable: Vec<String>,
    /// Rules shipped disabled (they need lists filled in first) to turn on.
    #[serde(default)]
    enable: Vec<String>,
    #[serde(default)]
    suppressions: Vec<SuppressionDef>,
}

/// A saved filter that archives new findings it matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuppressionDef {
    name: String,
    /// A glob over finding types (`PrivilegeEscalation:Kubernetes/*`); all types when absent.
    #[serde(default, rename = "type")]
    kind: Option<String>,
    condition: String,
    #[serde(default)]
    reason: String,
}

/// A compiled suppression rule.
#[derive(Debug, Clone)]
pub struct SuppressionRule {
    pub name: String,
    pub reason: String,
    kind: Option<globset::GlobMatcher>,
    cond: Cond,
}

impl SuppressionRule {
    pub fn applies(&self, kind: &str, cx: &field::Cx<'_, '_>) -> bool {
        self.kind.as_ref().is_none_or(|g| g.is_match(kind)) && self.cond.eval(cx)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListDef {
    name: String,
    #[serde(default)]
    items: Vec<String>,
    #[serde(default)]
    append: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MacroDef {
    name: String,
    condition: String,
    #[serde(default)]
    append: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionDef {
    rule: String,
    condition: String,
}

/// A rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub severity: SeverityDef,
    /// Catalogue rows (`C22`) this rule implements.
    #[serde(default)]
    pub catalogue: Vec<String>,
    #[serde(default)]
    pub mitre: Option<MitreDef>,
    pub condition: String,
    #[serde(default)]
    pub exceptions: Vec<String>,
    /// Stages the rule reads (default: ResponseComplete; exec and attach also ResponseStarted).
    #[serde(default)]
    pub stages: Vec<String>,
    /// Fields whose values name "the same issue": occurrences with equal values update one
    /// finding. Default: cluster, user, namespace, resource and name.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Raise the severity when a condition also holds.
    #[serde(default)]
    pub escalate: Vec<EscalateDef>,
    #[serde(default)]
    pub threshold: Option<ThresholdDef>,
    #[serde(default)]
    pub sequence: Option<SequenceDef>,
    #[serde(default)]
    pub baseline: Option<BaselineDef>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `hacktool`, `sample`, … (free-form).
    #[serde(default)]
    pub tags: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SeverityDef {
    Label(String),
    Score(f64),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MitreDef {
    pub tactic: String,
    #[serde(default)]
    pub technique: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateDef {
    pub condition: String,
    pub severity: SeverityDef,
}

/// Fire when at least `count` matching events (or distinct values of `distinct`) share the
/// `by` fields within `window`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdDef {
    pub count: u32,
    pub window: String,
    #[serde(default)]
    pub distinct: Option<String>,
    #[serde(default)]
    pub by: Vec<String>,
}

/// Fire when the rule matches within `within` after rule `after` matched with the same `by`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceDef {
    pub after: String,
    pub within: String,
    #[serde(default)]
    pub by: Vec<String>,
}

/// Fire the first time a combination of `keys` is seen in a cluster, once the cluster's
/// learning period is over.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineDef {
    pub keys: Vec<String>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub def: RuleDef,
    pub file: String,
    pub severity: Severity,
    pub cond: Cond,
    pub exceptions: Vec<Cond>,
    pub escalate: Vec<(Cond, Severity)>,
    pub group_by: Vec<Field>,
    pub reads_body: bool,
    pub stage_started: bool,
    pub stage_complete: bool,
    pub threshold: Option<Threshold>,
    pub sequence: Option<Sequence>,
    pub baseline: Option<Vec<Field>>,
}

#[derive(Debug, Clone)]
pub struct Threshold {
    pub count: u32,
    pub window_us: i64,
    pub distinct: Option<Field>,
    pub by: Vec<Field>,
}

#[derive(Debug, Clone)]
pub struct Sequence {
    /// Index of the earlier rule in the set.
    pub after: usize,
    pub within_us: i64,
    pub by: Vec<Field>,
}

/// Every rule, compiled and indexed by verb and resource.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub suppressions: Vec<SuppressionRule>,
    /// Rules by resource; `any_resource` holds those not pinned to resources.
    by_resource: HashMap<String, Vec<usize>>,
    any_resource: Vec<usize>,
    /// Bit i set: the rule may match verb i of [`VERBS`] (bit 15: any other verb).
    verbs: Vec<u16>,
}

/// Verbs the index knows.
pub const VERBS: [&str; 9] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "proxy",
];

pub fn verb_bit(verb: &str) -> u16 {
    VERBS
        .iter()
        .position(|v| *v == verb)
        .map(|i| 1 << i)
        .unwrap_or(1 << 15)
}

/// Reads one score or label: Info 1.0, Low 2.0, Medium 5.0, High 8.0, Critical 9.0 (the
/// managed service's defaults within each band).
pub fn severity_of(def: &SeverityDef) -> Result<Severity, String> {
    match def {
        SeverityDef::Score(s) if (0.0..=10.0).contains(s) => Ok(Severity::from_score(*s)),
        SeverityDef::Score(s) => Err(format!("severity {s} is outside 0–10")),
        SeverityDef::Label(l) => {
            let label: SeverityLabel = l.parse()?;
            let score = match label {
                SeverityLabel::Untriaged | SeverityLabel::Info => 1.0,
                SeverityLabel::Low => 2.0,
                SeverityLabel::Medium => 5.0,
                SeverityLabel::High => 8.0,
                SeverityLabel::Critical => 9.0,
            };
            Ok(Severity {
                label,
                score: Some(score),
            })
        }
    }
}

/// Parses `30m`, `5m`, `7d`, `10s`, `2h` into microseconds.
pub fn duration_us(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("duration {text:?} needs a unit (s, m, h, d)"))?;
    let n: i64 = t[..split]
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    let unit = match &t[split..] {
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        u => {
            return Err(format!(
                "duration {text:?}: unknown unit {u:?} (s, m, h, d)"
            ));
        }
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("duration {text:?} too long"))
}

/// Collects rule files, then compiles them.
#[derive(Default)]
pub struct Loader {
    names: Names,
    rules: Vec<(String, RuleDef)>,
    exceptions: Vec<(String, ExceptionDef)>,
    disabled: Vec<String>,
    enabled: Vec<String>,
    suppressions: Vec<(String, SuppressionDef)>,
}

impl Loader {
    /// A loader holding the built-in catalogue.
    pub fn builtin() -> Loader {
        let mut l = Loader::default();
        for (name, text) in BUILTIN {
            l.add_text(name, text)
                .expect("the built-in catalogue is tested");
        }
        l
    }

    /// Adds every `.yaml`/`.yml` file of a directory (sorted by name), or one file.
    pub fn add_path(&mut self, path: &Path) -> Result<(), RuleError> {
        let err = |message: String| RuleError::File {
            file: path.display().to_string(),
            message,
        };
        let mut files = Vec::new();
        if path.is_dir() {
            for entry in std::fs::read_dir(path).map_err(|e| err(e.to_string()))? {
                let p = entry.map_err(|e| err(e.to_string()))?.path();
                if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    files.push(p);
                }
            }
            files.sort();
            if files.is_empty() {
                return Err(err("no .yaml rule files in the directory".into()));
            }
        } else {
            files.push(path.to_path_buf());
        }
        for f in files {
            let name = f.display().to_string();
            let meta = std::fs::metadata(&f).map_err(|e| RuleError::File {
                file: name.clone(),
                message: e.to_string(),
            })?;
            if meta.len() > MAX_RULE_FILE {
                return Err(RuleError::File {
                    file: name,
                    message: format!("larger than the limit of {MAX_RULE_FILE} bytes"),
                });
            }
            let text = std::fs::read_to_string(&f).map_err(|e| RuleError::File {
                file: name.clone(),
                message: e.to_string(),
            })?;
            self.add_text(&name, &text)?;
        }
        Ok(())
    }

    /// Adds one file's text.
    pub fn add_text(&mut self, file: &str, text: &str) -> Result<(), RuleError> {
        let parsed: RuleFile = serde_saphyr::from_str(text).map_err(|e| RuleError::File {
            file: file.to_string(),
            message: e
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid YAML")
                .to_string(),
        })?;
        for l in parsed.lists {
            let entry = self.names.lists.entry(l.name).or_default();
            if !l.append {
                entry.clear();
            }
            entry.extend(l.items);
        }
        for m in parsed.macros {
            let e = lang::parse(&m.condition).map_err(|e| RuleError::File {
                file: file.to_string(),
                message: format!("macro {}: {e}", m.name),
            })?;
            let e = match (m.append, self.names.macros.remove(&m.name)) {
                (true, Some(old)) => lang::Expr::Or(vec![old, e]),
                _ => e,
            };
            self.names.macros.insert(m.name, e);
        }
        for r in parsed.rules {
            self.rules.retain(|(_, old)| old.id != r.id);
            self.rules.push((file.to_string(), r));
        }
        self.exceptions
            .extend(parsed.exceptions.into_iter().map(|e| (file.to_string(), e)));
        self.disabled.extend(parsed.disable);
        self.enabled.extend(parsed.enable);
        self.suppressions.extend(
            parsed
                .suppressions
                .into_iter()
                .map(|d| (file.to_string(), d)),
        );
        Ok(())
    }

    /// Keeps only the rules of `file` and those it names under `enable:`, each enabled, with
    /// the rules their sequences follow (a retro-hunt runs the rules it brings, not the
    /// catalogue; the catalogue's lists and macros stay available to them). Returns the ids
    /// kept; an `enable:` naming no rule is an error.
    pub fn select_file(&mut self, file: &str) -> Result<Vec<String>, RuleError> {
        let named: Vec<String> = self.enabled.clone();
        for id in &named {
            if !self.rules.iter().any(|(_, r)| &r.id == id) {
                return Err(RuleError::File {
                    file: file.to_string(),
                    message: format!("enable: no rule {id:?}"),
                });
            }
        }
        let mut keep: Vec<String> = self
            .rules
            .iter()
            .filter(|(f, r)| f == file || named.contains(&r.id))
            .map(|(_, r)| r.id.clone())
            .collect();
        // The rules a kept sequence follows, and theirs.
        let mut i = 0;
        while i < keep.len() {
            let after = self
                .rules
                .iter()
                .find(|(_, r)| r.id == keep[i])
                .and_then(|(_, r)| r.sequence.as_ref())
                .map(|s| s.after.clone());
            if let Some(after) = after
                && !keep.contains(&after)
            {
                keep.push(after);
            }
            i += 1;
        }
        self.rules.retain(|(_, r)| keep.contains(&r.id));
        for (_, r) in &mut self.rules {
            r.enabled = true;
        }
        self.disabled.clear();
        Ok(keep)
    }

    /// Compiles every enabled rule.
    pub fn compile(&self) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::default();
        let enabled: Vec<&(String, RuleDef)> = self
            .rules
            .iter()
            .filter(|(_, r)| {
                (r.enabled || self.enabled.contains(&r.id)) && !self.disabled.contains(&r.id)
            })
            .collect();
        for (file, def) in &enabled {
            let rule_err = |message: String| RuleError::Rule {
                file: file.clone(),
                rule: def.id.clone(),
                message,
            };
            let cond_of = |text: &str, what: &str| -> Result<Cond, RuleError> {
                let e = lang::parse(text).map_err(|e| rule_err(format!("{what}: {e}")))?;
                compile(&e, &self.names).map_err(|e| rule_err(format!("{what}: {e}")))
            };
            let fields = |names: &[String]| -> Result<Vec<Field>, RuleError> {
                names
                    .iter()
                    .map(|n| Field::parse(n).map_err(&rule_err))
                    .collect()
            };
            let cond = cond_of(&def.condition, "condition")?;
            let mut exceptions = Vec::new();
            for e in &def.exceptions {
                exceptions.push(cond_of(e, "exception")?);
            }
            for (_, e) in self.exceptions.iter().filter(|(_, e)| e.rule == def.id) {
                exceptions.push(cond_of(&e.condition, "exception")?);
            }
            let mut escalate = Vec::new();
            for e in &def.escalate {
                escalate.push((
                    cond_of(&e.condition, "escalate")?,
                    severity_of(&e.severity).map_err(&rule_err)?,
                ));
            }
            let group_by = if def.group_by.is_empty() {
                vec![
                    Field::Cluster,
                    Field::UserName,
                    Field::Namespace,
                    Field::Resource,
                    Field::Name,
                ]
            } else {
                fields(&def.group_by)?
            };
            let (mut started, mut complete) = (false, def.stages.is_empty());
            for s in &def.stages {
                match s.as_str() {
                    "ResponseStarted" => started = true,
                    "ResponseComplete" => complete = true,
                    other => {
                        return Err(rule_err(format!(
                            "stage {other:?} (rules read ResponseStarted or ResponseComplete)"
                        )));
                    }
                }
            }
            let threshold = match &def.threshold {
                Some(t) => Some(Threshold {
                    count: t.count.max(1),
                    window_us: duration_us(&t.window).map_err(&rule_err)?,
                    distinct: t
                        .distinct
                        .as_deref()
                        .map(Field::parse)
                        .transpose()
                        .map_err(&rule_err)?,
                    by: fields(&t.by)?,
                }),
                None => None,
            };
            let baseline = match &def.baseline {
                Some(b) if b.keys.is_empty() => {
                    return Err(rule_err("a baseline needs keys".into()));
                }
                Some(b) => Some(fields(&b.keys)?),
                None => None,
            };
            let reads_body = cond.reads_body();
            set.rules.push(Rule {
                severity: severity_of(&def.severity).map_err(&rule_err)?,
                def: (*def).clone(),
                file: file.clone(),
                cond,
                exceptions,
                escalate,
                group_by,
                reads_body,
                stage_started: started,
                stage_complete: complete,
                threshold,
                sequence: None,
                baseline,
            });
        }
        // Sequences refer to other rules by id.
        for i in 0..set.rules.len() {
            let Some(s) = set.rules[i].def.sequence.clone() else {
                continue;
            };
            let rule_err = |message: String| RuleError::Rule {
                file: set.rules[i].file.clone(),
                rule: set.rules[i].def.id.clone(),
                message,
            };
            let after = set
                .rules
                .iter()
                .position(|r| r.def.id == s.after)
                .ok_or_else(|| rule_err(format!("sequence after unknown rule {:?}", s.after)))?;
            let by =
                s.by.iter()
                    .map(|n| Field::parse(n).map_err(&rule_err))
                    .collect::<Result<_, _>>()?;
            set.rules[i].sequence = Some(Sequence {
                after,
                within_us: duration_us(&s.within).map_err(&rule_err)?,
                by,
            });
        }
        for (file, d) in &self.suppressions {
            let rule = compile_suppression(d, &self.names).map_err(|message| RuleError::File {
                file: file.clone(),
                message: format!("suppression {}: {message}", d.name),
            })?;
            set.suppressions.push(rule);
        }
        set.build_index();
        Ok(set)
    }
}

fn compile_suppression(d: &SuppressionDef, names: &Names) -> Result<SuppressionRule, String> {
    let e = lang::parse(&d.condition).map_err(|e| e.to_string())?;
    let cond = compile(&e, names)?;
    let kind = d
        .kind
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(|g| globset::Glob::new(g).map(|g| g.compile_matcher()))
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok(SuppressionRule {
        name: d.name.clone(),
        reason: d.reason.clone(),
        kind,
        cond,
    })
}

impl Loader {
    /// Compiles one suppression rule (a server's, kept outside rule files) against the
    /// loaded macros and lists; `kind` is a glob over finding types (empty: every type).
    pub fn suppression(
        &self,
        name: &str,
        kind: &str,
        condition: &str,
        reason: &str,
    ) -> Result<SuppressionRule, String> {
        compile_suppression(
            &SuppressionDef {
                name: name.to_string(),
                kind: Some(kind.to_string()),
                condition: condition.to_string(),
                reason: reason.to_string(),
            },
            &self.names,
        )
    }
}

impl RuleSet {
    /// The built-in catalogue alone.
    pub fn builtin() -> RuleSet {
        Loader::builtin()
            .compile()
            .expect("the built-in catalogue compiles")
    }

    fn build_index(&mut self) {
        self.by_resource.clear();
        self.any_resource.clear();
        self.verbs.clear();
        for (i, r) in self.rules.iter().enumerate() {
            let verbs = match r.cond.pinned(&Field::Verb) {
                Some(vs) => vs.iter().fold(0u16, |m, v| m | verb_bit(v)),
                None => u16::MAX,
            };
            self.verbs.push(verbs);
            match r.cond.pinned(&Field::Resource) {
                Some(rs) => {
                    for res in rs {
                        let list = self.by_resource.entry(res).or_default();
                        if !list.contains(&i) {
                            list.push(i);
                        }
                    }
                }
                None => self.any_resource.push(i),
            }
        }
    }

    /// Indices of the rules that may match an event of this verb and resource, in rule order.
    pub fn candidates(&self, verb: &str, resource: &str, out: &mut Vec<usize>) {
        out.clear();
        let bit = verb_bit(verb);
        let pinned = self
            .by_resource
            .get(resource)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        out.extend(
            pinned
                .iter()
                .chain(&self.any_resource)
                .copied()
                .filter(|&i| self.verbs[i] & bit != 0),
        );
        out.sort_unstable();
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.def.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_compiles_and_indexes() {
        let set = RuleSet::builtin();
        assert!(set.rules.len() > 80, "{}", set.rules.len());
        let mut c = Vec::new();
        set.candidates("get", "leases", &mut c);
        assert!(
            c.len() < set.rules.len() / 2,
            "{} of {}",
            c.len(),
            set.rules.len()
        );
    }

    #[test]
    fn files_override_append_disable_and_except() {
        let mut l = Loader::default();
        l.add_text(
            "a.yaml",
            "lists: [{name: l, items: [a]}]\nrules:\n  - {id: r1, title: T, type: 'X:Kubernetes/Y', severity: High, condition: user.name in l}\n  - {id: r2, title: T, type: 'X:Kubernetes/Z', severity: 3.5, condition: verb = get}\n",
        )
        .unwrap();
        l.add_text(
            "b.yaml",
            "lists: [{name: l, items: [b], append: true}]\nexceptions: [{rule: r1, condition: namespace = ok}]\ndisable: [r2]\n",
        )
        .unwrap();
        let set = l.compile().unwrap();
        assert_eq!(set.rules.len(), 1);
        assert_eq!(set.rules[0].exceptions.len(), 1);
        assert_eq!(set.rules[0].severity.label, SeverityLabel::High);
        assert_eq!(
            set.rules[0].cond.pinned(&Field::UserName).unwrap(),
            ["a", "b"]
        );
    }

    #[test]
    fn errors_name_file_and_rule() {
        let mut l = Loader::default();
        let e = l
            .add_text("x.yaml", "rules: [{id: r, title: t}]")
            .unwrap_err();
        assert!(e.to_string().starts_with("x.yaml: "), "{e}");
        let e = l.add_text("x.yaml", "rulez: []").unwrap_err();
        assert!(e.to_string().contains("rulez"), "{e}");
        l.add_text(
            "y.yaml",
            "rules: [{id: r, title: t, type: 'A:B/C', severity: High, condition: 'verb = '}]",
        )
        .unwrap();
        let e = l.compile().unwrap_err().to_string();
        assert!(
            e.starts_with("y.yaml: rule r: condition: at offset 7"),
            "{e}"
        );
        let mut l = Loader::default();
        l.add_text(
            "z.yaml",
            "rules: [{id: r, title: t, type: 'A:B/C', severity: Severe, condition: 'verb = get'}]",
        )
        .unwrap();
        assert!(l.compile().unwrap_err().to_string().contains("Severe"));
        let mut l = Loader::default();
        l.add_text("w.yaml", "rules: [{id: r, title: t, type: 'A:B/C', severity: Low, condition: 'verb = get', threshold: {count: 3, window: 5x}}]").unwrap();
        assert!(
            l.compile()
                .unwrap_err()
                .to_string()
                .contains("unknown unit")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration_us("30m").unwrap(), 1_800_000_000);
        assert_eq!(duration_us("7d").unwrap(), 604_800_000_000);
        assert!(duration_us("5").is_err());
        assert!(duration_us("99999999999999d").is_err());
    }
}
