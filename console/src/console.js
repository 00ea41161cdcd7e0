// Osprey console: the little the pages do in the browser (no inline scripts: the content
// security policy allows none). Every handler is delegated from the document, so it keeps
// working after htmx swaps a page in.
"use strict";

// "Select all" checks or clears every row's box of its table.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (box.matches && box.matches("input[data-select-all]")) {
    const table = box.closest("table");
    for (const row of table.querySelectorAll("tbody input[type=checkbox][name=id]")) {
      row.checked = box.checked;
    }
    return;
  }
  // A filter form applies a changed choice at once.
  if (box.matches && box.matches("form[data-autosubmit] select")) {
    box.form.requestSubmit();
  }
});

// The graph view: cytoscape.js, loaded on the first page that has a graph (the script is one
// of the server's own assets, so the content security policy allows it).
const GRAPH_TYPES = ["cluster", "namespace", "node", "pod", "subject", "ip", "user-agent",
  "image", "vulnerability", "package", "finding"];
const SEVERITIES = ["critical", "high", "medium", "low"];

function loadCytoscape(then) {
  if (window.cytoscape) { then(); return; }
  let tag = document.querySelector("script[data-cytoscape]");
  if (!tag) {
    tag = document.createElement("script");
    tag.src = "/console/assets/cytoscape.min.js";
    tag.dataset.cytoscape = "1";
    document.head.appendChild(tag);
  }
  tag.addEventListener("load", then, { once: true });
}

function graphStyle() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  return [
    { selector: "node", style: {
      "background-color": v("--t-other"), "label": "data(label)", "color": v("--text"),
      "font-size": 10, "text-valign": "bottom", "text-margin-y": 3, "width": 20, "height": 20,
      "border-width": 0, "text-wrap": "ellipsis", "text-max-width": 140 } },
    ...GRAPH_TYPES.map((t) => ({ selector: `node[type = "${t}"]`,
      style: { "background-color": v(`--t-${t}`) } })),
    ...SEVERITIES.map((s) => ({ selector: `node[severity = "${s}"]`,
      style: { "border-width": 4, "border-color": v(`--${s}`) } })),
    { selector: "node:selected", style: { "overlay-color": v("--focus"), "overlay-opacity": 0.35, "overlay-padding": 6 } },
    { selector: "node[type = \"finding\"]", style: { "label": "", "width": 14, "height": 14, "shape": "round-rectangle" } },
    { selector: "node[type = \"finding\"]:selected", style: { "label": "data(label)" } },
    { selector: "node.center", style: { "width": 30, "height": 30, "font-weight": "bold" } },
    { selector: "edge", style: {
      "width": 1.2, "line-color": v("--line"), "target-arrow-shape": "triangle",
      "target-arrow-color": v("--line"), "curve-style": "bezier", "arrow-scale": 0.7 } },
  ];
}

function text(tag, content, className) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (className) el.className = className;
  return el;
}

function startGraph(el) {
  if (el.dataset.started) return;
  el.dataset.started = "1";
  const status = document.getElementById("graph-status");
  const list = document.getElementById("graph-list");
  const selected = document.getElementById("graph-selected");
  const count = document.getElementById("graph-count");
  const source = new URL(el.dataset.src, location.href);
  // cytoscape.js adds a <style> element unless one with this id exists: the content security
  // policy allows no inline style, and console.css holds its one rule.
  if (!document.getElementById("__________cytoscape_stylesheet")) {
    const marker = document.createElement("meta");
    marker.id = "__________cytoscape_stylesheet";
    document.head.appendChild(marker);
  }
  const cy = window.cytoscape({ container: el, style: graphStyle(), minZoom: 0.2, maxZoom: 1.6 });
  const expanded = new Set();

  const say = (message) => { if (status) status.textContent = message; };

  const relist = () => {
    if (!list) return;
    list.replaceChildren();
    const nodes = cy.nodes().sort((a, b) => a.data("type").localeCompare(b.data("type"))
      || a.data("label").localeCompare(b.data("label")));
    nodes.forEach((n) => {
      const li = document.createElement("li");
      const key = text("span", "", `key t-${n.data("type")}`);
      key.title = n.data("type");
      const link = text("a", n.data("label"));
      link.href = n.data("href");
      link.dataset.entity = n.id();
      li.append(key, link);
      if (!expanded.has(n.id()) && n.data("type") !== "finding") {
        const button = text("button", "Expand");
        button.type = "button";
        button.dataset.expand = n.id();
        button.setAttribute("aria-label", `Add the neighbours of ${n.data("label")}`);
        li.append(button);
      }
      list.append(li);
    });
    if (count) count.textContent = String(cy.nodes().length);
  };

  const show = (n) => {
    if (!selected) return;
    selected.replaceChildren();
    selected.append(text("p", `${n.data("type")}${n.data("severity") ? " · worst finding " + n.data("severity") : ""}`, "muted small"));
    const link = text("a", n.data("label"));
    link.href = n.data("href");
    link.dataset.entity = n.id();
    link.dataset.test = "selected-profile";
    selected.append(link);
  };

  const add = (data, around) => {
    const before = cy.nodes().length;
    cy.batch(() => {
      for (const n of data.nodes) {
        if (cy.getElementById(n.id).empty()) cy.add({ group: "nodes", data: n });
      }
      for (const e of data.edges) {
        if (cy.getElementById(e.id).empty() && !cy.getElementById(e.source).empty()
          && !cy.getElementById(e.target).empty()) {
          cy.add({ group: "edges", data: e });
        }
      }
    });
    const added = cy.nodes().length - before;
    const layout = around && before > 0
      ? cy.layout({ name: "concentric", animate: false, fit: true,
          concentric: (n) => (n.id() === around ? 10 : n.degree()), levelWidth: () => 2 })
      : cy.layout({ name: "cose", animate: false, fit: true, nodeRepulsion: () => 9000,
          idealEdgeLength: () => 70, randomize: false });
    layout.run();
    relist();
    el.dataset.nodes = String(cy.nodes().length);
    return added;
  };

  const fetchGraph = async (url) => {
    const response = await fetch(url, { credentials: "same-origin",
      headers: { "Accept": "application/json" } });
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    return response.json();
  };

  const expand = async (id) => {
    if (expanded.has(id)) return;
    expanded.add(id);
    const url = new URL("/console/graph.json", location.href);
    for (const k of ["range", "since", "until"]) {
      const value = source.searchParams.get(k);
      if (value) url.searchParams.set(k, value);
    }
    url.searchParams.set("entity", id);
    url.searchParams.set("depth", "1");
    say("Loading…");
    try {
      const added = add(await fetchGraph(url), id);
      say(added ? `Added ${added} entities around ${cy.getElementById(id).data("label")}.`
        : "No new neighbours in this scope.");
    } catch (error) {
      expanded.delete(id);
      say(`Expanding failed: ${error.message}`);
    }
  };

  cy.on("tap", "node", (event) => {
    const n = event.target;
    show(n);
    if (n.data("type") !== "finding") expand(n.id());
  });
  if (list) {
    list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-expand]");
      if (button) {
        const n = cy.getElementById(button.dataset.expand);
        n.select();
        show(n);
        expand(button.dataset.expand);
      }
    });
  }

  say("Loading…");
  fetchGraph(source).then((data) => {
    add(data, null);
    const center = el.dataset.center;
    if (center) {
      expanded.add(center);
      cy.getElementById(center).addClass("center");
      relist();
    }
    say(data.truncated ? "Some entities have more neighbours than are drawn." : "");
    el.dataset.ready = "1";
  }).catch((error) => say(`Loading the graph failed: ${error.message}`));
}

function startGraphs() {
  const graphs = document.querySelectorAll("[data-src].graph");
  if (graphs.length) loadCytoscape(() => graphs.forEach(startGraph));
}

document.addEventListener("DOMContentLoaded", startGraphs);
document.addEventListener("htmx:afterSettle", startGraphs);
