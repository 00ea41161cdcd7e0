//! Lists a page holds whole (the groups of a scope, a profile's related entities, packages,
//! vulnerabilities and findings, the administrative log) sorted and paged on the server. The
//! page's URL names each list's sort column, direction and page (`{list}_sort`,
//! `{list}_order`, `{list}_page`), so a link reproduces what is shown, and every link of a
//! list leads back to the list (`#{list}`).

use std::cmp::Ordering;

use super::view::Query;

/// A column a list sorts by.
pub struct Column<T> {
    /// Its name in the URL.
    pub key: &'static str,
    /// Its header.
    pub label: &'static str,
    /// Ascending order.
    pub cmp: fn(&T, &T) -> Ordering,
}

impl<T> Column<T> {
    pub fn new(key: &'static str, label: &'static str, cmp: fn(&T, &T) -> Ordering) -> Column<T> {
        Column { key, label, cmp }
    }
}

/// A sortable column's header: the link that sorts by it (or turns its direction).
pub struct SortLink {
    pub key: &'static str,
    pub label: &'static str,
    pub href: String,
    /// `▲`, `▼` or nothing.
    pub mark: &'static str,
    /// `aria-sort`.
    pub aria: &'static str,
}

impl SortLink {
    /// The header of `key`, sorting by `current` in `order` (`asc` or `desc`) now.
    pub fn new(
        key: &'static str,
        label: &'static str,
        (current, order): (&str, &str),
        href: impl FnOnce(&str) -> String,
    ) -> SortLink {
        let on = current == key;
        let next = if on && order == "desc" { "asc" } else { "desc" };
        SortLink {
            key,
            label,
            href: href(next),
            mark: match (on, order) {
                (false, _) => "",
                (true, "asc") => "▲",
                (true, _) => "▼",
            },
            aria: match (on, order) {
                (false, _) => "none",
                (true, "asc") => "ascending",
                (true, _) => "descending",
            },
        }
    }
}

/// Where a list's pages are.
pub struct Pager {
    /// `51–100 of 532`.
    pub shown: String,
    pub previous: Option<String>,
    pub next: Option<String>,
}

/// One page of a list, in the order asked for.
pub struct Table<T> {
    pub rows: Vec<T>,
    pub total: usize,
    pub sorts: Vec<SortLink>,
    pub pager: Pager,
}

impl<T> Table<T> {
    /// The header of the column `key`.
    pub fn sort(&self, key: &str) -> Option<&SortLink> {
        self.sorts.iter().find(|s| s.key == key)
    }

    /// Whether the list has more than one page.
    pub fn paged(&self) -> bool {
        self.pager.previous.is_some() || self.pager.next.is_some()
    }

    /// The same page with other rows (those of this page's, read or made).
    pub fn with_rows<U>(self, rows: Vec<U>) -> Table<U> {
        Table {
            rows,
            total: self.total,
            sorts: self.sorts,
            pager: self.pager,
        }
    }

    /// The page's rows made into others.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Table<U> {
        Table {
            rows: self.rows.into_iter().map(f).collect(),
            total: self.total,
            sorts: self.sorts,
            pager: self.pager,
        }
    }
}

/// A list of a page: its name in the URL, the page's path and query, rows per page and the
/// order it opens in (a column's key and `asc`/`desc`; no key: the order given).
pub struct List<'a> {
    pub name: &'static str,
    pub path: &'a str,
    pub query: &'a Query,
    pub size: usize,
    pub default: (&'static str, &'static str),
}

impl List<'_> {
    fn param(&self, what: &str) -> String {
        format!("{}_{what}", self.name)
    }

    fn href(&self, changes: &[(&str, &str)]) -> String {
        let changes: Vec<(String, &str)> =
            changes.iter().map(|(k, v)| (self.param(k), *v)).collect();
        let changes: Vec<(&str, &str)> = changes.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        format!("{}?{}#{}", self.path, self.query.with(&changes), self.name)
    }

    /// One page of `rows`, sorted as the URL asks; an unknown column, direction or page is an
    /// error naming the parameter.
    pub fn page<T>(&self, mut rows: Vec<T>, columns: &[Column<T>]) -> Result<Table<T>, String> {
        let sort = self
            .query
            .get(&self.param("sort"))
            .unwrap_or(self.default.0);
        let order = self
            .query
            .get(&self.param("order"))
            .unwrap_or(self.default.1);
        if order != "asc" && order != "desc" {
            return Err(format!(
                "{} {order:?}: expected asc or desc",
                self.param("order")
            ));
        }
        let column = columns.iter().find(|c| c.key == sort);
        match column {
            Some(c) if order == "asc" => rows.sort_by(c.cmp),
            Some(c) => rows.sort_by(|a, b| (c.cmp)(b, a)),
            None if sort == self.default.0 => {}
            None => {
                return Err(format!(
                    "{} {sort:?}: expected one of {}",
                    self.param("sort"),
                    columns.iter().map(|c| c.key).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        let page = match self.query.get(&self.param("page")) {
            None => 1,
            Some(p) => p.parse::<usize>().ok().filter(|p| *p >= 1).ok_or_else(|| {
                format!(
                    "{} {p:?}: expected a page number from 1",
                    self.param("page")
                )
            })?,
        };
        let total = rows.len();
        let size = self.size.max(1);
        let start = (page - 1).saturating_mul(size).min(total);
        let end = start.saturating_add(size).min(total);
        let rows: Vec<T> = rows.into_iter().skip(start).take(end - start).collect();
        let number = |n: usize| n.to_string();
        let pager = Pager {
            shown: if total == 0 || start == end {
                format!("none of {total}")
            } else {
                format!("{}–{end} of {total}", start + 1)
            },
            previous: (page > 1).then(|| {
                let to = page.min(total.div_ceil(size) + 1) - 1;
                self.href(&[("page", &number(to.max(1)))])
            }),
            next: (end < total).then(|| self.href(&[("page", &number(page + 1))])),
        };
        let sorts = columns
            .iter()
            .map(|c| {
                SortLink::new(c.key, c.label, (sort, order), |next| {
                    self.href(&[("sort", c.key), ("order", next), ("page", "")])
                })
            })
            .collect();
        Ok(Table {
            rows,
            total,
            sorts,
            pager,
        })
    }
}

/// Whether a URL parameter is a list's page (a scope change starts every list again).
pub fn is_paging(name: &str) -> bool {
    name == "page_token" || name.ends_with("_page")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<Column<(u32, &'static str)>> {
        vec![
            Column::new("n", "Number", |a, b| a.0.cmp(&b.0)),
            Column::new("name", "Name", |a, b| a.1.cmp(b.1)),
        ]
    }

    fn rows() -> Vec<(u32, &'static str)> {
        vec![(3, "c"), (1, "a"), (2, "b"), (5, "e"), (4, "d")]
    }

    fn list<'a>(q: &'a Query) -> List<'a> {
        List {
            name: "things",
            path: "/console/x",
            query: q,
            size: 2,
            default: ("n", "desc"),
        }
    }

    #[test]
    fn sorts_and_pages_as_the_url_asks() {
        let q = Query::parse(Some("range=24h"));
        let t = list(&q).page(rows(), &columns()).unwrap();
        assert_eq!(t.rows, [(5, "e"), (4, "d")]);
        assert_eq!(t.pager.shown, "1–2 of 5");
        assert_eq!(t.pager.previous, None);
        let next = t.pager.next.clone().unwrap();
        assert_eq!(next, "/console/x?range=24h&things_page=2#things");
        let sort = t.sort("name").unwrap();
        assert_eq!((sort.mark, sort.aria), ("", "none"));
        assert!(sort.href.contains("things_sort=name&things_order=desc"));
        let on = t.sort("n").unwrap();
        assert_eq!((on.mark, on.aria), ("▼", "descending"));
        assert!(on.href.contains("things_order=asc"), "{}", on.href);

        let q = Query::parse(Some("things_sort=name&things_order=asc&things_page=3"));
        let t = list(&q).page(rows(), &columns()).unwrap();
        assert_eq!(t.rows, [(5, "e")]);
        assert_eq!(t.pager.shown, "5–5 of 5");
        assert_eq!(t.pager.next, None);
        assert!(t.pager.previous.unwrap().contains("things_page=2"));
    }

    #[test]
    fn a_page_past_the_end_is_empty_and_leads_back() {
        let q = Query::parse(Some("things_page=9"));
        let t = list(&q).page(rows(), &columns()).unwrap();
        assert!(t.rows.is_empty());
        assert_eq!(t.pager.shown, "none of 5");
        assert!(t.pager.previous.unwrap().contains("things_page=3"));
    }

    #[test]
    fn bad_parameters_name_themselves() {
        for (query, starts) in [
            (
                "things_sort=colour",
                "things_sort \"colour\": expected one of n, name",
            ),
            (
                "things_order=up",
                "things_order \"up\": expected asc or desc",
            ),
            ("things_page=0", "things_page \"0\": expected a page number"),
            ("things_page=x", "things_page \"x\""),
        ] {
            let q = Query::parse(Some(query));
            let e = list(&q).page(rows(), &columns()).err().unwrap();
            assert!(e.starts_with(starts), "{query}: {e}");
        }
    }

    #[test]
    fn without_a_default_column_the_given_order_stays() {
        let q = Query::default();
        let l = List {
            default: ("", "desc"),
            ..list(&q)
        };
        let t = l.page(rows(), &[]).unwrap();
        assert_eq!(t.rows, [(3, "c"), (1, "a")]);
        assert!(is_paging("related_page") && is_paging("page_token") && !is_paging("range"));
    }
}
