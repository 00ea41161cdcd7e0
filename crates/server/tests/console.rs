//! The web console over HTTP, without a browser (the browser tests are `console/tests/`):
//! signing in and out, the session cookie's flags, CSRF and cross-site refusals, roles
//! (a viewer gets no write controls and cannot change anything), tenancy, the security
//! headers of every page, and pages that show what the API answers (the findings list and its
//! filters, the CSV export, a finding, its group, an entity's profile, the graph's data).

mod common;

use std::collections::BTreeSet;

use common::{BACKENDS, TestServer, story_batches};
use osprey_server::Options;
use reqwest::{Method, StatusCode, header};
use serde_json::Value;

/// A browser without one: no redirects followed, cookies kept by hand.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    headers: header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }

    /// The value of the first `name="{name}" value="…"` input.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker).unwrap_or_else(|| {
            panic!(
                "no {name} field in {}",
                &self.body[..self.body.len().min(400)]
            )
        }) + marker.len();
        let end = self.body[start..].find('"').unwrap();
        self.body[start..start + end].to_string()
    }

    /// Every value of an attribute, in page order.
    fn attributes(&self, attr: &str) -> Vec<String> {
        let marker = format!("{attr}=\"");
        self.body
            .match_indices(&marker)
            .map(|(i, _)| {
                let rest = &self.body[i + marker.len()..];
                unescape(&rest[..rest.find('"').unwrap()])
            })
            .collect()
    }
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut r = self.client.request(method, format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.header(header::COOKIE, format!("osprey_session={c}"));
        }
        if let Some(f) = form {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(f.iter())
                .finish();
            r = r
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            if let Some(rest) = set.strip_prefix("osprey_session=") {
                let value = rest.split(';').next().unwrap();
                self.cookie = (!value.is_empty()).then(|| value.to_string());
            }
        }
        let body = resp.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form)).await
    }

    async fn sign_in(&mut self, token: &str) -> Page {
        self.post(
            "/console/sign-in",
            &[("token", token), ("next", "/console/findings?range=all")],
        )
        .await
    }
}

fn assert_security_headers(p: &Page, what: &str) {
    let csp = p.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "{what}: {csp} lacks {part}");
    }
    assert_eq!(
        p.headers[header::X_CONTENT_TYPE_OPTIONS],
        "nosniff",
        "{what}"
    );
    assert_eq!(p.headers[header::X_FRAME_OPTIONS], "DENY", "{what}");
    assert_eq!(p.headers[header::CACHE_CONTROL], "no-store", "{what}");
    // No inline script or style anywhere: everything the page runs is a file of the server.
    assert!(
        !p.body.contains("<script>") && !p.body.contains(" style="),
        "{what}"
    );
}

/// The ids of an API list of findings.
fn ids(v: &Value) -> BTreeSet<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_signs_in_shows_what_the_api_answers_and_guards_changes() {
    for backend in BACKENDS {
        let s = TestServer::start(backend, Options::default()).await;
        let (_, member_admin) = s.member("shop").await;
        let analyst = s.token("shop", "analyst").await;
        let viewer = s.token("shop", "viewer").await;
        let (cluster, ingest) = s.cluster(&member_admin, "prod").await;
        s.ingest(&cluster, &ingest, story_batches(25)).await;
        let mut b = Browser::new(&s.base);

        // Not signed in: every page sends to the sign-in page, which brings back.
        let p = b.get("/console/findings?severity=high").await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
        assert_eq!(
            p.location(),
            "/console/sign-in?next=%2Fconsole%2Ffindings%3Fseverity%3Dhigh"
        );
        assert_eq!(b.get("/").await.location(), "/console/summary");
        let p = b.get("/console/sign-in").await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(p.body.contains("name=\"token\""));
        assert_security_headers(&p, "sign-in");

        // Refused sign-ins: unknown, ingest-only, and from another site.
        let p = b.sign_in("osp_not-a-token").await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
        assert!(p.body.contains("Unknown or revoked token.") && b.cookie.is_none());
        let p = b.sign_in(&ingest).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        assert!(b.cookie.is_none());
        let cross = b
            .client
            .post(format!("{}/console/sign-in", s.base))
            .header(header::ORIGIN, "https://evil.example")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("token={analyst}"))
            .send()
            .await
            .unwrap();
        assert_eq!(cross.status(), StatusCode::FORBIDDEN);
        assert!(cross.headers().get(header::SET_COOKIE).is_none());

        // The analyst signs in: an HttpOnly, SameSite=Strict cookie that does not hold the
        // token (Secure only over HTTPS, which this server is not).
        let p = b.sign_in(&analyst).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        assert_eq!(p.location(), "/console/findings?range=all");
        let set = p.headers[header::SET_COOKIE].to_str().unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        assert!(!set.contains("Secure"), "{set}");
        let cookie = b.cookie.clone().unwrap();
        assert!(!cookie.contains(&analyst) && !cookie.contains("osp_"));

        // The findings page lists exactly what the API lists, in the API's order.
        let (_, api) = s
            .get("/v1/findings?state=active&limit=1000", &analyst)
            .await;
        let p = b.get("/console/findings?range=all&limit=200").await;
        assert_eq!(p.status, StatusCode::OK);
        assert_security_headers(&p, "findings");
        let listed = p.attributes("data-finding-id");
        assert_eq!(
            listed,
            api["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        );
        assert!(
            listed.len() >= 10,
            "the story raises findings: {}",
            listed.len()
        );
        assert!(
            p.body
                .contains(&format!("data-test=\"total\">{}<", listed.len()))
        );
        assert!(
            p.body.contains("data-test=\"archive\""),
            "an analyst can archive"
        );

        // The summary counts what the API counts, and lists the cluster.
        let (_, stats) = s
            .get(
                "/v1/findings/statistics?state=active&group_by=severity",
                &analyst,
            )
            .await;
        let p = b.get("/console/summary?range=all").await;
        assert_eq!(p.status, StatusCode::OK);
        assert_security_headers(&p, "summary");
        for g in stats["groups"].as_array().unwrap() {
            let key = g["key"].as_str().unwrap();
            if key == "info" || key == "untriaged" {
                continue;
            }
            let label = format!("{}{}", key[..1].to_uppercase(), &key[1..]);
            let card = format!(
                "data-severity=\"{label}\"><span class=\"sev sev-{key}\">{label}</span><strong>{}</strong>",
                g["count"]
            );
            assert!(p.body.contains(&card), "{card}");
        }
        assert!(
            p.body
                .contains(&format!("data-cluster=\"cluster/{cluster}\""))
        );
        assert!(p.body.contains(">prod</a>"), "the cluster by its name");
        assert!(
            p.attributes("data-group-id")
                .iter()
                .any(|g| g.starts_with("group-")),
            "the story's group is High"
        );

        // Filtered by severity High: the API's High band.
        let (_, high) = s
            .get(
                "/v1/findings?state=active&severity_min=7&severity_max=8.999&limit=1000",
                &analyst,
            )
            .await;
        let p = b
            .get("/console/findings?range=all&severity=high&limit=200")
            .await;
        let shown: BTreeSet<String> = p.attributes("data-finding-id").into_iter().collect();
        assert_eq!(shown, ids(&high));
        assert!(!shown.is_empty());
        // A bad filter is a page naming it.
        let p = b.get("/console/findings?severity=severe").await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert!(
            p.body.contains("severity &#34;severe&#34;")
                || p.body.contains("severity &quot;severe&quot;"),
            "{}",
            p.body
        );

        // The CSV export of the filtered list is the API's.
        let p = b
            .get("/console/findings/export.csv?range=all&severity=high")
            .await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(
            p.headers[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        let api_csv = b
            .client
            .get(format!(
                "{}/v1/findings/export?format=csv&state=active&severity_min=7&severity_max=8.999",
                s.base
            ))
            .bearer_auth(&analyst)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(p.body, api_csv);
        assert_eq!(
            p.body.lines().count(),
            shown.len() + 1,
            "a header and a row each"
        );

        // A finding: its entities link to their profiles, and it links to its group.
        let first = shown.iter().next().unwrap().clone();
        let p = b.get(&format!("/console/findings/{first}")).await;
        assert_eq!(p.status, StatusCode::OK);
        assert_security_headers(&p, "finding");
        let entities = p.attributes("data-entity");
        assert!(!entities.is_empty());
        for e in &entities {
            osprey_graph::EntityId::parse(e).unwrap_or_else(|err| panic!("{e}: {err}"));
        }
        // Its audit events, read back from the kept batches.
        let (_, api_first) = s.get(&format!("/v1/findings/{first}"), &analyst).await;
        let audit_ids = api_first["evidence"]["audit_ids"].as_array().unwrap();
        assert!(!audit_ids.is_empty());
        for id in audit_ids {
            let id = id.as_str().unwrap();
            assert!(p.body.contains(&format!("data-audit-id=\"{id}\"")), "{id}");
            assert!(
                p.body
                    .contains(&format!("&#34;auditID&#34;: &#34;{id}&#34;")),
                "{id}"
            );
        }
        let group = p
            .attributes("href")
            .into_iter()
            .find(|h| h.starts_with("/console/groups/group-"))
            .expect("a story finding belongs to a group");
        let (st, api_group) = s
            .get(
                &format!("/v1/finding-groups/{}", &group["/console/groups/".len()..]),
                &analyst,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let g = b.get(&group).await;
        assert_eq!(g.status, StatusCode::OK);
        let members: BTreeSet<String> = g.attributes("data-finding-id").into_iter().collect();
        let api_members: BTreeSet<String> = api_group["finding_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(members, api_members);
        assert!(members.contains(&first));

        // The attacker address's profile, opened from the group over the story's hours.
        let ip_link = g
            .attributes("href")
            .into_iter()
            .find(|h| h.starts_with("/console/entities/ip/"))
            .expect("the group names an address");
        assert!(ip_link.contains("?since="), "{ip_link}");
        let ip = b.get(&ip_link).await;
        assert_eq!(ip.status, StatusCode::OK);
        assert_security_headers(&ip, "profile");
        let path = ip_link["/console/entities/".len()..]
            .split('?')
            .next()
            .unwrap();
        let query = ip_link.split_once('?').unwrap().1;
        let q: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let (since, until) = (&q[0].1, &q[1].1);
        let (st, profile) = s
            .get(
                &format!("/v1/entities/{path}?start={since}&end={until}"),
                &analyst,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{profile}");
        let total = profile["api_calls"]["total"].as_u64().unwrap();
        assert!(total > 0);
        assert!(
            ip.body
                .contains(&format!("API calls <span class=\"count\">{total}</span>"))
        );
        for f in profile["findings"].as_array().unwrap() {
            assert!(
                ip.body
                    .contains(&format!("data-finding-id=\"{}\"", f.as_str().unwrap()))
            );
        }
        // Its graph: the address and what it relates to.
        let graph = b
            .get(&format!(
                "/console/graph.json?entity={path}&depth=2&{query}"
            ))
            .await;
        assert_eq!(graph.status, StatusCode::OK, "{}", graph.body);
        let data: Value = serde_json::from_str(&graph.body).unwrap();
        let nodes: BTreeSet<&str> = data["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap())
            .collect();
        assert!(nodes.contains(path));
        for r in profile["related"].as_array().unwrap() {
            assert!(nodes.contains(r["id"].as_str().unwrap()), "{r}");
        }
        for e in data["edges"].as_array().unwrap() {
            assert!(nodes.contains(e["source"].as_str().unwrap()));
            assert!(nodes.contains(e["target"].as_str().unwrap()));
        }
        assert!(
            data["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["severity"] == "high"),
            "nodes outlined by severity"
        );

        // The cluster's related entities, page after page and sorted on the server, are the
        // API's.
        let (st, cp) = s
            .get(
                &format!(
                    "/v1/entities/cluster/{cluster}?start={since}&end={until}&related_limit=1000"
                ),
                &analyst,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{cp}");
        let api_related: BTreeSet<String> = cp["related"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .filter(|id| !id.starts_with("package/") && !id.starts_with("vulnerability/"))
            .collect();
        assert!(!api_related.is_empty());
        let mut seen = BTreeSet::new();
        let mut pages = 0;
        let mut next = Some(format!(
            "/console/entities/cluster/{cluster}?{query}&related_sort=count&related_order=desc"
        ));
        while let Some(link) = next.take() {
            let p = b.get(&link).await;
            assert_eq!(p.status, StatusCode::OK, "{link}: {}", p.body);
            let part = section(&p, "related");
            let counts: Vec<u64> = part
                .match_indices("<td class=\"num\">")
                .map(|(i, m)| {
                    let rest = &part[i + m.len()..];
                    rest[..rest.find('<').unwrap()].parse().unwrap()
                })
                .collect();
            assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
            for e in attributes_in(part, "data-entity") {
                assert!(seen.insert(e.clone()), "{e} on two pages");
            }
            next = next_link(part);
            pages += 1;
            assert!(pages <= 100);
        }
        assert_eq!(seen, api_related);
        assert_eq!(pages, api_related.len().div_ceil(50));
        let p = b
            .get(&format!(
                "/console/entities/cluster/{cluster}?related_sort=colour"
            ))
            .await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert!(
            p.body.contains("related_sort &#34;colour&#34;"),
            "{}",
            p.body
        );

        // Groups sort on the server; a finding's and a group's pages have a scope, which
        // opens on the hours around them and carries into their entity links.
        let (_, api_groups) = s
            .get("/v1/finding-groups?since=1970-01-01T00:00:00Z", &analyst)
            .await;
        let mut by_size: Vec<(usize, String)> = api_groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["finding_ids"].as_array().unwrap().len(),
                    g["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        by_size.sort_by_key(|g| g.0);
        let p = b
            .get("/console/groups?range=all&groups_sort=findings&groups_order=asc")
            .await;
        assert_eq!(p.status, StatusCode::OK);
        assert_eq!(
            p.attributes("data-group-id"),
            by_size.into_iter().map(|g| g.1).collect::<Vec<_>>()
        );
        let p = b.get(&format!("/console/findings/{first}")).await;
        assert!(p.body.contains("aria-label=\"Scope time\""));
        assert!(
            p.attributes("href")
                .iter()
                .filter(|h| h.starts_with("/console/entities/"))
                .all(|h| h.contains("?since=") && h.contains("&until=")),
            "entity links open on the finding's hours"
        );
        let p = b.get(&format!("/console/findings/{first}?range=30d")).await;
        let links: Vec<String> = p
            .attributes("href")
            .into_iter()
            .filter(|h| h.starts_with("/console/entities/"))
            .collect();
        assert!(
            !links.is_empty() && links.iter().all(|h| h.ends_with("?range=30d")),
            "{links:?}"
        );
        let p = b.get(&format!("{group}?range=all")).await;
        assert!(p.body.contains("aria-label=\"Scope time\""));
        let graph_src = p.attributes("data-src");
        assert!(
            graph_src[0].starts_with("/console/graph.json?group=")
                && graph_src[0].ends_with("&range=all"),
            "the group's graph in the scope: {graph_src:?}"
        );

        // Changes need the session's CSRF token.
        let list = b.get("/console/findings?range=all").await;
        let csrf = list.field("csrf");
        let p = b
            .post(
                "/console/findings/bulk",
                &[("id", &first), ("action", "archive")],
            )
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        let p = b
            .post(
                "/console/findings/bulk",
                &[("id", &first), ("action", "archive"), ("csrf", "00ff")],
            )
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        let (_, f) = s.get(&format!("/v1/findings/{first}"), &analyst).await;
        assert_eq!(f["state"], "active", "nothing changed");
        let p = b
            .post(
                "/console/findings/bulk",
                &[
                    ("csrf", &csrf),
                    ("id", &first),
                    ("action", "archive"),
                    ("back", "/console/findings?range=all"),
                ],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        assert!(
            p.location()
                .starts_with("/console/findings?range=all&notice=1+finding+archived")
        );
        let (_, f) = s.get(&format!("/v1/findings/{first}"), &analyst).await;
        assert_eq!(f["state"], "archived");
        // A note and a workflow change from the finding's page.
        let p = b
            .post(
                &format!("/console/findings/{first}"),
                &[
                    ("csrf", &csrf),
                    ("action", "note"),
                    ("note", "checked with the team <b>"),
                ],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
        let page = b.get(&format!("/console/findings/{first}")).await;
        assert!(
            page.body.contains("checked with the team &#60;b&#62;"),
            "notes are escaped: {}",
            &page.body[page.body.find("History and").unwrap_or(0)..]
        );
        let p = b
            .post(
                &format!("/console/findings/{first}"),
                &[
                    ("csrf", &csrf),
                    ("action", "workflow"),
                    ("workflow", "resolved"),
                ],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
        let (_, f) = s.get(&format!("/v1/findings/{first}"), &analyst).await;
        assert_eq!(f["workflow"], "resolved");
        // A back address outside the list is not followed.
        let p = b
            .post(
                "/console/findings/bulk",
                &[
                    ("csrf", &csrf),
                    ("id", &first),
                    ("action", "unarchive"),
                    ("back", "https://evil.example/"),
                ],
            )
            .await;
        assert!(
            p.location().starts_with("/console/findings?notice="),
            "{}",
            p.location()
        );

        // A viewer sees no write control and cannot change anything.
        let mut v = Browser::new(&s.base);
        assert_eq!(v.sign_in(&viewer).await.status, StatusCode::SEE_OTHER);
        let p = v.get("/console/findings?range=all").await;
        assert!(!p.body.contains("data-test=\"archive\"") && !p.body.contains("name=\"id\""));
        let page = v.get(&format!("/console/findings/{first}")).await;
        assert!(!page.body.contains("value=\"archive\"") && !page.body.contains("name=\"note\""));
        let vcsrf = p.field("csrf");
        let refused = v
            .post(
                "/console/findings/bulk",
                &[("csrf", &vcsrf), ("id", &first), ("action", "archive")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        // One session's CSRF token is not another's.
        let crossed = v
            .post(
                "/console/findings/bulk",
                &[("csrf", &csrf), ("id", &first), ("action", "archive")],
            )
            .await;
        assert_eq!(crossed.status, StatusCode::FORBIDDEN);

        // Another tenant's finding is absent, as in the API.
        let (_, other_admin) = s.member("other").await;
        let mut o = Browser::new(&s.base);
        o.sign_in(&other_admin).await;
        assert_eq!(
            o.get(&format!("/console/findings/{first}")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(o.get(&group).await.status, StatusCode::NOT_FOUND);
        let p = o.get("/console/findings?range=all").await;
        assert!(p.attributes("data-finding-id").is_empty());

        // A tampered cookie is no session.
        let mut t = Browser::new(&s.base);
        let last = if cookie.ends_with('0') { '1' } else { '0' };
        t.cookie = Some(format!("{}{last}", &cookie[..cookie.len() - 1]));
        assert_eq!(
            t.get("/console/findings").await.status,
            StatusCode::SEE_OTHER
        );

        // Revoking the token ends its sessions.
        let (_, tokens) = s.get("/v1/tokens", &member_admin).await;
        let viewer_id = tokens["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "shop-viewer")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (st, _) = s
            .call(
                Method::DELETE,
                &format!("/v1/tokens/{viewer_id}"),
                Some(&member_admin),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(
            v.get("/console/findings").await.status,
            StatusCode::SEE_OTHER
        );

        // Signing out needs the token too, clears the cookie and goes to the sign-in page.
        let p = b.post("/console/sign-out", &[]).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        let p = b.post("/console/sign-out", &[("csrf", &csrf)]).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
        assert_eq!(p.location(), "/console/sign-in");
        assert!(
            p.headers[header::SET_COOKIE]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        assert!(b.cookie.is_none());
        assert_eq!(
            b.get("/console/findings").await.status,
            StatusCode::SEE_OTHER
        );
        s.stop().await;
    }
}

/// The text between `<pre class="secret" data-test="{what}">` and `</pre>`.
fn shown_once(p: &Page, what: &str) -> String {
    let marker = format!("data-test=\"{what}\">");
    let start = p
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {what}: {}", p.body))
        + marker.len();
    let end = p.body[start..].find("</pre>").unwrap();
    unescape(&p.body[start..start + end])
}

/// Text as it was before HTML escaping.
fn unescape(text: &str) -> String {
    text.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
}

/// The part of a page from the element with `id="{id}"` to the end of its section.
fn section<'a>(p: &'a Page, id: &str) -> &'a str {
    let start = p
        .body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let end = p.body[start..].find("</section>").unwrap();
    &p.body[start..start + end]
}

/// The link of a list's next page (`rel="next"`), without its fragment.
fn next_link(part: &str) -> Option<String> {
    let at = part.find("\" rel=\"next\"")?;
    let start = part[..at].rfind("href=\"")? + "href=\"".len();
    Some(unescape(&part[start..at]).split('#').next()?.to_string())
}

/// Every value of an attribute in a part of a page.
fn attributes_in(part: &str, attr: &str) -> Vec<String> {
    Page {
        status: StatusCode::OK,
        headers: header::HeaderMap::new(),
        body: part.to_string(),
    }
    .attributes(attr)
}

#[tokio::test(flavor = "multi_thread")]
async fn administrators_manage_settings_through_the_apis_checks() {
    let s = TestServer::start(osprey_store::Backend::Sqlite, Options::default()).await;
    let (_, member_admin) = s.member("shop").await;
    let analyst = s.token("shop", "analyst").await;
    let mut b = Browser::new(&s.base);
    b.sign_in(&member_admin).await;
    let p = b.get("/console/settings").await;
    assert_eq!(p.status, StatusCode::OK);
    assert_security_headers(&p, "settings");
    let csrf = p.field("csrf");

    // A cluster: its ingest token and the API server's webhook kubeconfig, shown once, work.
    let p = b
        .post(
            "/console/settings",
            &[
                ("csrf", &csrf),
                ("action", "cluster.create"),
                ("name", "edge-1"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let ingest = shown_once(&p, "secret");
    let kubeconfig = shown_once(&p, "kubeconfig");
    let (_, clusters) = s.get("/v1/clusters", &member_admin).await;
    let id = clusters["clusters"][0]["id"].as_str().unwrap().to_string();
    let url = format!("{}/v1/clusters/{id}/audit", s.base);
    assert!(
        kubeconfig.contains(&format!("server: {url}")),
        "{kubeconfig}"
    );
    assert!(kubeconfig.contains(&format!("token: {ingest}")));
    let (st, v, _) = s
        .post_raw(
            &format!("/v1/clusters/{id}/audit"),
            &ingest,
            story_batches(1000).remove(0),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Shown once: the list does not hold it.
    let p = b.get("/console/settings").await;
    assert!(!p.body.contains(&ingest));
    assert!(p.body.contains("edge-1"));
    // The administrative log of the scope names the change and who made it.
    let log = section(&p, "log");
    assert!(
        log.contains("<td class=\"mono small\">cluster.create</td>"),
        "{log}"
    );
    assert!(!attributes_in(log, "data-log-seq").is_empty());
    let p = b.get("/console/settings?since=2999-01-01T00:00").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(section(&p, "log").contains("No change in this scope."));

    // A token: created, usable, then revoked from the page.
    let p = b
        .post(
            "/console/settings",
            &[
                ("csrf", &csrf),
                ("action", "token.create"),
                ("name", "ci"),
                ("role", "viewer"),
            ],
        )
        .await;
    let token = shown_once(&p, "secret");
    let (st, _) = s.get("/v1/findings", &token).await;
    assert_eq!(st, StatusCode::OK);
    let (_, tokens) = s.get("/v1/tokens", &member_admin).await;
    let ci = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = b
        .post(
            "/console/settings",
            &[("csrf", &csrf), ("action", "token.revoke"), ("id", &ci)],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(
        s.get("/v1/findings", &token).await.0,
        StatusCode::UNAUTHORIZED
    );

    // An IP list and a suppression rule go through the API's validation.
    let p = b
        .post(
            "/console/settings",
            &[
                ("csrf", &csrf),
                ("action", "ip-list.put"),
                ("name", "office"),
                ("kind", "trusted"),
                ("entries", "# egress\n203.0.113.0/24\n198.51.100.7\n"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let (_, lists) = s.get("/v1/ip-lists", &member_admin).await;
    assert_eq!(lists["ip_lists"][0]["entries"], 2);
    let p = b
        .post(
            "/console/settings",
            &[
                ("csrf", &csrf),
                ("action", "ip-list.put"),
                ("name", "bad"),
                ("kind", "trusted"),
                ("entries", "not-an-address\n"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.body.contains("not-an-address"), "{}", p.body);
    let p = b
        .post(
            "/console/settings",
            &[
                ("csrf", &csrf),
                ("action", "rule.create"),
                ("name", "r1"),
                ("condition", "user.name = "),
            ],
        )
        .await;
    assert_eq!(
        p.status,
        StatusCode::BAD_REQUEST,
        "a rule that does not compile"
    );
    let p = b
        .post(
            "/console/settings",
            &[
                ("csrf", &csrf),
                ("action", "rule.create"),
                ("name", "ci-deployer"),
                (
                    "condition",
                    "user.name = \"system:serviceaccount:ci:deployer\"",
                ),
                ("reason", "the deploy job"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let (_, rules) = s.get("/v1/suppression-rules", &member_admin).await;
    let rule = rules["suppression_rules"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = b.get("/console/settings").await;
    assert!(p.body.contains("ci-deployer") && p.body.contains("the deploy job"));
    let p = b
        .post(
            "/console/settings",
            &[("csrf", &csrf), ("action", "rule.delete"), ("id", &rule)],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let (_, rules) = s.get("/v1/suppression-rules", &member_admin).await;
    assert!(rules["suppression_rules"].as_array().unwrap().is_empty());

    // Analysts have no settings, and no Settings link.
    let mut a = Browser::new(&s.base);
    a.sign_in(&analyst).await;
    assert_eq!(
        a.get("/console/settings").await.status,
        StatusCode::FORBIDDEN
    );
    let p = a.get("/console/findings").await;
    assert!(!p.body.contains("href=\"/console/settings\""));
    let acsrf = p.field("csrf");
    let p = a
        .post(
            "/console/settings",
            &[
                ("csrf", &acsrf),
                ("action", "cluster.create"),
                ("name", "sneaky"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // And a change without the session's token changes nothing.
    let p = b
        .post(
            "/console/settings",
            &[("action", "cluster.create"), ("name", "nocsrf")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let (_, clusters) = s.get("/v1/clusters", &member_admin).await;
    assert_eq!(clusters["clusters"].as_array().unwrap().len(), 1);
    s.stop().await;
}
