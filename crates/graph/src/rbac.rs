//! A cluster's RBAC as the graph keeps it: roles (their rules) and bindings (their role and
//! subjects), read from the objects a cluster snapshot lists or an audited write returned,
//! and who they let do what to a pod or a secret.
//!
//! Kubernetes' authorizer is evaluated here by hand: no crate evaluates RBAC objects
//! outside an API server. What counts is what RBAC grants through bindings, plus the
//! `system:masters` group, which the API server lets do anything. Other authorizers (a
//! webhook, node authorization) and group memberships an identity provider decides are not
//! known to the graph; a service account's own groups are.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Rules kept per role, subjects per binding, and entries per list of a rule: an object
/// with more is cut.
pub const MAX_RULES: usize = 512;
pub const MAX_SUBJECTS: usize = 512;
const MAX_LIST: usize = 128;
/// Longest name kept.
const MAX_TEXT: usize = 253;

/// The four kinds of RBAC object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RbacKind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

impl RbacKind {
    pub const ALL: [RbacKind; 4] = [
        RbacKind::Role,
        RbacKind::ClusterRole,
        RbacKind::RoleBinding,
        RbacKind::ClusterRoleBinding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RbacKind::Role => "Role",
            RbacKind::ClusterRole => "ClusterRole",
            RbacKind::RoleBinding => "RoleBinding",
            RbacKind::ClusterRoleBinding => "ClusterRoleBinding",
        }
    }

    /// The kind of an object's `kind` field.
    pub fn of_kind(kind: &str) -> Option<RbacKind> {
        RbacKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The kind a resource of `rbac.authorization.k8s.io` holds (`rolebindings`, …).
    pub fn of_resource(resource: &str) -> Option<RbacKind> {
        Some(match resource {
            "roles" => RbacKind::Role,
            "clusterroles" => RbacKind::ClusterRole,
            "rolebindings" => RbacKind::RoleBinding,
            "clusterrolebindings" => RbacKind::ClusterRoleBinding,
            _ => return None,
        })
    }

    fn namespaced(self) -> bool {
        matches!(self, RbacKind::Role | RbacKind::RoleBinding)
    }
}

/// A policy rule (resource rules only: non-resource URLs grant nothing on pods or secrets).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
}

/// Who a binding binds: a `User`, a `Group` or a `ServiceAccount` (with its namespace).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

impl Subject {
    /// The username it authenticates as (`None` for a group).
    pub fn username(&self) -> Option<String> {
        match self.kind.as_str() {
            "User" => Some(self.name.clone()),
            "ServiceAccount" => Some(format!(
                "system:serviceaccount:{}:{}",
                self.namespace, self.name
            )),
            _ => None,
        }
    }
}

/// What an RBAC object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    Role {
        rules: Vec<Rule>,
    },
    Binding {
        /// `Role` or `ClusterRole`.
        role_kind: RbacKind,
        role_name: String,
        subjects: Vec<Subject>,
    },
}

/// An RBAC object of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RbacObject {
    pub kind: RbacKind,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    pub name: String,
    pub body: Body,
}

impl RbacObject {
    /// The object an API response or a snapshot item holds, when it is one of the four
    /// kinds (`kind` is taken from the object, else from `kind`).
    pub fn of(kind: Option<RbacKind>, object: &Value) -> Option<RbacObject> {
        RbacObject::in_namespace(kind, object, "")
    }

    /// As [`RbacObject::of`], in `namespace` when the object does not name its own (a
    /// create's request object takes it from the URL).
    pub fn in_namespace(
        kind: Option<RbacKind>,
        object: &Value,
        namespace: &str,
    ) -> Option<RbacObject> {
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .and_then(RbacKind::of_kind)
            .or(kind)?;
        let name = text(object.pointer("/metadata/name"))?;
        let namespace = if kind.namespaced() {
            text(object.pointer("/metadata/namespace"))
                .or_else(|| (!namespace.is_empty()).then(|| namespace.to_string()))?
        } else {
            String::new()
        };
        let body = match kind {
            RbacKind::Role | RbacKind::ClusterRole => Body::Role {
                rules: list(object.get("rules"), MAX_RULES)
                    .filter_map(rule)
                    .collect(),
            },
            RbacKind::RoleBinding | RbacKind::ClusterRoleBinding => {
                let role_kind = object
                    .pointer("/roleRef/kind")
                    .and_then(Value::as_str)
                    .and_then(RbacKind::of_kind)
                    .filter(|k| matches!(k, RbacKind::Role | RbacKind::ClusterRole))?;
                if kind == RbacKind::ClusterRoleBinding && role_kind == RbacKind::Role {
                    return None;
                }
                Body::Binding {
                    role_kind,
                    role_name: text(object.pointer("/roleRef/name"))?,
                    subjects: list(object.get("subjects"), MAX_SUBJECTS)
                        .filter_map(|s| {
                            let kind = text(s.get("kind"))?;
                            let namespace = text(s.get("namespace")).unwrap_or_else(|| {
                                // A service account without a namespace is the binding's.
                                if kind == "ServiceAccount" {
                                    namespace.clone()
                                } else {
                                    String::new()
                                }
                            });
                            Some(Subject {
                                name: text(s.get("name"))?,
                                kind,
                                namespace,
                            })
                        })
                        .collect(),
                }
            }
        };
        Some(RbacObject {
            kind,
            namespace,
            name,
            body,
        })
    }

    /// `Kind namespace/name` (`Kind name` when cluster-scoped).
    pub fn label(&self) -> String {
        label(self.kind, &self.namespace, &self.name)
    }
}

fn label(kind: RbacKind, namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        format!("{} {name}", kind.as_str())
    } else {
        format!("{} {namespace}/{name}", kind.as_str())
    }
}

fn rule(v: &Value) -> Option<Rule> {
    let strings = |key: &str| -> Vec<String> {
        list(v.get(key), MAX_LIST)
            .filter_map(|s| text(Some(s)).or_else(|| (s.as_str() == Some("")).then(String::new)))
            .collect()
    };
    let r = Rule {
        api_groups: strings("apiGroups"),
        resources: strings("resources"),
        verbs: strings("verbs"),
        resource_names: strings("resourceNames"),
    };
    (!r.resources.is_empty() && !r.verbs.is_empty()).then_some(r)
}

fn list(v: Option<&Value>, max: usize) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten().take(max)
}

fn text(v: Option<&Value>) -> Option<String> {
    let s = v?.as_str()?;
    (!s.is_empty() && s.len() <= MAX_TEXT).then(|| s.to_string())
}

/// What is asked: a verb on a resource (`pods/exec`) of an API group (`""` is the core
/// group), in a namespace.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub verbs: &'a [&'a str],
    pub namespace: &'a str,
}

/// A subject granted a request, how, and on which names (`None`: every name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub subject: Subject,
    /// `RoleBinding ns/b → ClusterRole r`.
    pub via: String,
    pub names: Option<Vec<String>>,
    /// Granted in every namespace (a cluster role binding, or the superuser group), not only
    /// the request's.
    pub cluster_wide: bool,
}

impl Grant {
    /// Whether it covers the object named `name`.
    pub fn covers(&self, name: &str) -> bool {
        self.names
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }
}

/// The group the API server lets do anything, whatever RBAC says.
pub const SUPERUSER_GROUP: &str = "system:masters";

/// A cluster's roles and bindings.
#[derive(Debug, Default)]
pub struct Rbac {
    roles: std::collections::HashMap<(RbacKind, String, String), Vec<Rule>>,
    bindings: Vec<RbacObject>,
}

impl Rbac {
    pub fn new(objects: impl IntoIterator<Item = RbacObject>) -> Rbac {
        let mut rbac = Rbac::default();
        for o in objects {
            match o.body {
                Body::Role { rules } => {
                    rbac.roles.insert((o.kind, o.namespace, o.name), rules);
                }
                Body::Binding { .. } => rbac.bindings.push(o),
            }
        }
        rbac.bindings
            .sort_by(|a, b| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)));
        rbac
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.bindings.is_empty()
    }

    /// Objects known.
    pub fn len(&self) -> usize {
        self.roles.len() + self.bindings.len()
    }

    /// The namespaces role bindings are in, and `""` (where only cluster-wide bindings
    /// apply).
    pub fn namespaces_and_cluster(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .bindings
            .iter()
            .filter(|b| b.kind == RbacKind::RoleBinding)
            .map(|b| b.namespace.clone())
            .collect();
        v.push(String::new());
        v.sort();
        v.dedup();
        v
    }

    /// Every subject a binding grants the request, with how (the `system:masters` group
    /// first, which needs no binding).
    pub fn grants(&self, request: &Request<'_>) -> Vec<Grant> {
        let mut out = vec![Grant {
            subject: Subject {
                kind: "Group".into(),
                name: SUPERUSER_GROUP.into(),
                namespace: String::new(),
            },
            via: "the API server's superuser group".into(),
            names: None,
            cluster_wide: true,
        }];
        for b in &self.bindings {
            let Body::Binding {
                role_kind,
                role_name,
                subjects,
            } = &b.body
            else {
                continue;
            };
            if b.kind == RbacKind::RoleBinding && b.namespace != request.namespace {
                continue;
            }
            let role_namespace = match role_kind {
                RbacKind::Role => b.namespace.clone(),
                _ => String::new(),
            };
            let Some(rules) =
                self.roles
                    .get(&(*role_kind, role_namespace.clone(), role_name.clone()))
            else {
                continue;
            };
            let Some(names) = allowed_names(rules, request) else {
                continue;
            };
            let via = format!(
                "{} → {}",
                b.label(),
                label(*role_kind, &role_namespace, role_name)
            );
            for s in subjects {
                out.push(Grant {
                    subject: s.clone(),
                    via: via.clone(),
                    names: names.clone(),
                    cluster_wide: b.kind == RbacKind::ClusterRoleBinding,
                });
            }
        }
        out
    }

    /// Whether `subject` (a username, with the groups it is known to be in) is granted the
    /// request on `name`, and how.
    pub fn can(
        &self,
        username: &str,
        groups: &[String],
        request: &Request<'_>,
        name: &str,
    ) -> Vec<String> {
        self.grants(request)
            .into_iter()
            .filter(|g| g.covers(name) && binds(&g.subject, username, groups))
            .map(|g| g.via)
            .collect()
    }
}

/// The names the rules allow the request on: `Some(None)` every name, `Some(Some(names))`
/// only those, `None` none.
fn allowed_names(rules: &[Rule], request: &Request<'_>) -> Option<Option<Vec<String>>> {
    let mut names: Vec<String> = Vec::new();
    let mut any = false;
    for r in rules {
        let group = r.api_groups.iter().any(|g| g == "*" || g == request.group);
        let verb = r
            .verbs
            .iter()
            .any(|v| v == "*" || request.verbs.contains(&v.as_str()));
        if !(group && verb && r.resources.iter().any(|res| covers(res, request.resource))) {
            continue;
        }
        if r.resource_names.is_empty() {
            return Some(None);
        }
        any = true;
        names.extend(r.resource_names.iter().cloned());
    }
    any.then_some(Some(names))
}

/// Whether a rule's resource entry covers `wanted` (`pods`, `pods/exec`).
fn covers(entry: &str, wanted: &str) -> bool {
    if entry == "*" || entry == wanted {
        return true;
    }
    match (entry.split_once('/'), wanted.split_once('/')) {
        (Some((resource, "*")), Some((w, _))) => resource == w,
        (Some(("*", sub)), Some((_, w))) => sub == w,
        _ => false,
    }
}

/// The groups a username is in whatever its identity provider says: every authenticated
/// identity is in `system:authenticated`, a service account in `system:serviceaccounts`
/// and its namespace's group.
pub fn implied_groups(username: &str) -> Vec<String> {
    if username == "system:anonymous" {
        return vec!["system:unauthenticated".into()];
    }
    let mut groups = vec!["system:authenticated".to_string()];
    if let Some(rest) = username.strip_prefix("system:serviceaccount:")
        && let Some((namespace, _)) = rest.split_once(':')
    {
        groups.push("system:serviceaccounts".into());
        groups.push(format!("system:serviceaccounts:{namespace}"));
    }
    groups
}

/// Whether a binding's subject is `username` or one of its `groups`.
pub fn binds(subject: &Subject, username: &str, groups: &[String]) -> bool {
    match subject.kind.as_str() {
        "Group" => groups.contains(&subject.name),
        _ => subject.username().as_deref() == Some(username),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects() -> Vec<RbacObject> {
        [
            json!({"kind": "ClusterRole", "metadata": {"name": "exec-all"},
                "rules": [{"apiGroups": [""], "resources": ["pods/exec", "pods/attach"], "verbs": ["create"]}]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "oncall"},
                "roleRef": {"kind": "ClusterRole", "name": "exec-all"},
                "subjects": [{"kind": "Group", "name": "oncall"}, {"kind": "User", "name": "alice"}]}),
            json!({"kind": "Role", "metadata": {"name": "one-pod", "namespace": "shop"},
                "rules": [{"apiGroups": ["*"], "resources": ["pods/*"], "verbs": ["*"], "resourceNames": ["web-0"]},
                          {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "ci", "namespace": "shop"},
                "roleRef": {"kind": "Role", "name": "one-pod"},
                "subjects": [{"kind": "ServiceAccount", "name": "deployer"}]}),
            // A binding to a role that does not exist grants nothing.
            json!({"kind": "RoleBinding", "metadata": {"name": "dangling", "namespace": "shop"},
                "roleRef": {"kind": "Role", "name": "gone"}, "subjects": [{"kind": "User", "name": "bob"}]}),
            // A cluster role bound in one namespace grants there only.
            json!({"kind": "RoleBinding", "metadata": {"name": "ops", "namespace": "ops"},
                "roleRef": {"kind": "ClusterRole", "name": "exec-all"}, "subjects": [{"kind": "User", "name": "carol"}]}),
        ]
        .iter()
        .map(|v| RbacObject::of(None, v).unwrap())
        .collect()
    }

    fn exec(namespace: &str) -> Request<'_> {
        Request {
            group: "",
            resource: "pods/exec",
            verbs: &["create"],
            namespace,
        }
    }

    #[test]
    fn bindings_grant_what_their_roles_allow_where_they_apply() {
        let rbac = Rbac::new(objects());
        assert_eq!(rbac.len(), 6);
        let who = |ns: &str, pod: &str| -> Vec<String> {
            let mut v: Vec<String> = rbac
                .grants(&exec(ns))
                .into_iter()
                .filter(|g| g.covers(pod))
                .map(|g| format!("{}:{}", g.subject.kind, g.subject.name))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            who("shop", "web-0"),
            [
                "Group:oncall",
                "Group:system:masters",
                "ServiceAccount:deployer",
                "User:alice"
            ]
        );
        assert_eq!(
            who("shop", "web-1"),
            ["Group:oncall", "Group:system:masters", "User:alice"]
        );
        assert_eq!(
            who("ops", "x"),
            [
                "Group:oncall",
                "Group:system:masters",
                "User:alice",
                "User:carol"
            ]
        );
        let via = rbac.can(
            "system:serviceaccount:shop:deployer",
            &[],
            &exec("shop"),
            "web-0",
        );
        assert_eq!(via, ["RoleBinding shop/ci → Role shop/one-pod"]);
        assert!(
            rbac.can("bob", &implied_groups("bob"), &exec("shop"), "web-0")
                .is_empty()
        );
        let groups = vec!["oncall".to_string()];
        assert_eq!(
            rbac.can("dave", &groups, &exec("kube-system"), "etcd"),
            ["ClusterRoleBinding oncall → ClusterRole exec-all"]
        );
        let secrets = Request {
            group: "",
            resource: "secrets",
            verbs: &["get", "list", "watch"],
            namespace: "shop",
        };
        assert_eq!(
            rbac.can(
                "system:serviceaccount:shop:deployer",
                &[],
                &secrets,
                "db-password"
            )
            .len(),
            1
        );
    }

    #[test]
    fn resources_match_as_the_api_server_matches_them() {
        assert!(covers("*", "pods/exec"));
        assert!(covers("pods/*", "pods/exec"));
        assert!(covers("*/exec", "pods/exec"));
        assert!(
            !covers("pods", "pods/exec"),
            "a resource does not grant its subresources"
        );
        assert!(!covers("pods/*", "pods"));
        assert!(!covers("deployments/*", "pods/exec"));
    }

    #[test]
    fn malformed_objects_are_refused_and_big_ones_cut() {
        let bad = [
            json!({"kind": "Role", "metadata": {"name": "no-namespace"}}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "b"},
                "roleRef": {"kind": "Role", "name": "r"}}),
            json!({"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "n"},
                "roleRef": {"kind": "Secret", "name": "r"}}),
            json!({"kind": "Pod", "metadata": {"name": "p"}}),
            json!({"kind": "ClusterRole", "metadata": {"name": "x".repeat(300)}}),
        ];
        for v in bad {
            assert_eq!(RbacObject::of(None, &v), None, "{v}");
        }
        let rules: Vec<Value> = (0..2000)
            .map(|i| json!({"apiGroups": [""], "resources": [format!("r{i}")], "verbs": ["get"]}))
            .collect();
        let big = json!({"kind": "ClusterRole", "metadata": {"name": "big"}, "rules": rules});
        let Body::Role { rules } = RbacObject::of(None, &big).unwrap().body else {
            panic!("a role")
        };
        assert_eq!(rules.len(), MAX_RULES);
        // The kind of an audited write comes from its resource when the object has none.
        let patched = json!({"metadata": {"name": "r", "namespace": "n"}, "rules": []});
        assert_eq!(
            RbacObject::of(RbacKind::of_resource("roles"), &patched)
                .unwrap()
                .label(),
            "Role n/r"
        );
    }

    #[test]
    fn identities_are_in_their_implied_groups() {
        assert_eq!(
            implied_groups("system:anonymous"),
            ["system:unauthenticated"]
        );
        assert_eq!(
            implied_groups("system:serviceaccount:shop:ci"),
            [
                "system:authenticated",
                "system:serviceaccounts",
                "system:serviceaccounts:shop"
            ]
        );
        let sa = Subject {
            kind: "ServiceAccount".into(),
            name: "ci".into(),
            namespace: "shop".into(),
        };
        assert!(binds(&sa, "system:serviceaccount:shop:ci", &[]));
        assert!(!binds(&sa, "system:serviceaccount:other:ci", &[]));
    }
}
