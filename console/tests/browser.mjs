// The console in a real browser (Debian's chromium, driven by playwright-core) against
// `osprey serve --demo`, as an analyst would use it:
//   sign in with the demo tenant's viewer token → the findings of the story → filter High →
//   a finding → its group → the attacker address's profile → its graph, expanded by a click →
//   the CSV export, compared with the API's → no archive button for a viewer → sign out;
//   then the organization's admin archives a finding and restores it.
// Every step writes a screenshot to the output directory. The test fails on a request to
// another origin, an HTML page without the security headers, or any error in the browser's
// console (a content-security-policy violation is one).
//
//   node browser.mjs BASE_URL DATA_DIR OUT_DIR
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const [base, data, out] = process.argv.slice(2);
if (!base || !data || !out) {
  console.error("usage: node browser.mjs BASE_URL DATA_DIR OUT_DIR");
  process.exit(2);
}
fs.mkdirSync(out, { recursive: true });
const origin = new URL(base).origin;
const viewerToken = fs.readFileSync(path.join(data, "demo-token"), "utf8").trim();
const adminToken = fs.readFileSync(path.join(data, "admin-token"), "utf8").trim();

const problems = [];
let shot = 0;
let step = "start";

function check(condition, message) {
  if (!condition) throw new Error(`${step}: ${message}`);
}

async function api(pathAndQuery, token) {
  const response = await fetch(`${base}${pathAndQuery}`, { headers: { Authorization: `Bearer ${token}` } });
  check(response.ok, `API ${pathAndQuery}: HTTP ${response.status}`);
  return response;
}

function watch(page) {
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.protocol !== "data:" && url.origin !== origin) {
      problems.push(`${step}: a request to another origin: ${request.url()}`);
    }
  });
  page.on("response", async (response) => {
    const type = response.headers()["content-type"] || "";
    if (!type.startsWith("text/html")) return;
    const h = response.headers();
    const csp = h["content-security-policy"] || "";
    if (!csp.includes("frame-ancestors 'none'") || csp.includes("unsafe-inline") || !csp.includes("script-src 'self'")) {
      problems.push(`${step}: ${response.url()}: content-security-policy ${JSON.stringify(csp)}`);
    }
    if (h["x-content-type-options"] !== "nosniff") {
      problems.push(`${step}: ${response.url()}: no X-Content-Type-Options: nosniff`);
    }
  });
  page.on("console", (message) => {
    // The sign-in with a wrong token answers 401 on purpose; the browser logs that.
    const expected = step === "sign in" && message.text().includes("status of 401");
    if (message.type() === "error" && !expected) problems.push(`${step}: browser console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`${step}: page error: ${error.message}`));
}

async function capture(page, name, options = {}) {
  shot += 1;
  const file = path.join(out, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, ...options });
}

async function signIn(page, token) {
  await page.goto(`${base}/`);
  check(page.url().includes("/console/sign-in"), `not sent to sign-in: ${page.url()}`);
  await page.fill("input[name=token]", token);
  await Promise.all([page.waitForURL(/\/console\/summary/), page.click("button[type=submit]")]);
}

const browser = await chromium.launch({
  executablePath: process.env.OSPREY_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  watch(page);

  step = "sign in";
  await page.goto(`${base}/`);
  await capture(page, "sign-in");
  await page.fill("input[name=token]", "osp_wrong");
  await page.click("button[type=submit]");
  check(await page.locator(".error").isVisible(), "an unknown token gets no error message");
  await signIn(page, viewerToken);

  step = "summary";
  // The summary opens on the last 7 days.
  const since = new Date(Date.now() - 7 * 86400e3).toISOString();
  const stats = await api(`/v1/findings/statistics?state=active&group_by=severity&since=${since}`, viewerToken).then((r) => r.json());
  const high = stats.groups.find((g) => g.key === "high");
  check(high && high.count > 0, "the demo has High findings");
  check((await page.locator("[data-severity=High] strong").innerText()).trim() === String(high.count),
    "the summary's High count is not the API's");
  check(await page.locator("[data-cluster]").count() === 1, "the demo's cluster is not listed");
  check(await page.locator("[data-group-id]").count() > 0, "no High group on the summary");
  await capture(page, "summary", { fullPage: true });

  step = "keyboard";
  // The first Tab stop skips to the content, then the brand and the navigation, in order.
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.matches("a.skip")), "the first Tab stop is not the skip link");
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.matches("a.brand")), "the brand is not the second stop");
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.getAttribute("href") === "/console/summary"),
    "the navigation does not follow");
  await page.focus("a.skip");
  await page.keyboard.press("Enter");
  check(await page.evaluate(() => location.hash === "#main"), "the skip link does not lead to the content");
  await Promise.all([page.waitForURL(/\/console\/findings$/), page.click("header nav a[href='/console/findings']")]);

  step = "findings";
  const listed = await api("/v1/findings?state=active&limit=1000", viewerToken).then((r) => r.json());
  const rows = await page.locator("tr[data-finding-id]").evaluateAll((trs) => trs.map((tr) => tr.dataset.findingId));
  check(listed.findings.length > 10, `the demo has ${listed.findings.length} findings`);
  check(JSON.stringify(rows) === JSON.stringify(listed.findings.map((f) => f.id)),
    `the page lists ${rows.length} findings, the API ${listed.findings.length}`);
  await capture(page, "findings");

  step = "filter High";
  await Promise.all([page.waitForURL(/severity=high/), page.selectOption("select[name=severity]", "high")]);
  await page.waitForSelector("tr[data-finding-id]");
  const highList = await api("/v1/findings?state=active&severity_min=7&severity_max=8.999&limit=1000", viewerToken).then((r) => r.json());
  const highRows = await page.locator("tr[data-finding-id]").evaluateAll((trs) => trs.map((tr) => tr.dataset.findingId));
  check(highRows.length === highList.findings.length && highRows.length > 0,
    `High: ${highRows.length} rows, the API ${highList.findings.length}`);
  check(await page.locator("tr[data-finding-id] .sev:not(.sev-high)").count() === 0, "a row that is not High");
  await capture(page, "findings-high");

  step = "CSV export";
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("[data-test=export]")]);
  const csv = fs.readFileSync(await download.path(), "utf8");
  const apiCsv = await api("/v1/findings/export?format=csv&state=active&severity_min=7&severity_max=8.999", viewerToken).then((r) => r.text());
  check(csv === apiCsv, "the CSV differs from the API's export");
  check(csv.trim().split("\n").length === highList.findings.length + 1, "one CSV row per finding");
  fs.writeFileSync(path.join(out, "findings-high.csv"), csv);

  step = "viewer has no write control";
  check(await page.locator("[data-test=archive]").count() === 0, "a viewer sees an archive button");
  check(await page.locator("input[name=id]").count() === 0, "a viewer sees selection boxes");

  step = "a finding";
  const story = highList.findings.find((f) => f.type.startsWith("PrivilegeEscalation") || f.type.startsWith("Execution")) || highList.findings[0];
  await Promise.all([page.waitForURL(/\/console\/findings\/[0-9a-f]/), page.click(`tr[data-finding-id="${story.id}"] a`)]);
  check((await page.locator("h1").innerText()).includes(story.title), "the finding's title");
  check(await page.locator("a[data-entity]").count() > 0, "no entity link");
  check(await page.locator("[data-test=archive]").count() === 0, "a viewer sees an archive button on a finding");
  check(await page.locator("details.event[data-audit-id]").count() >= story.evidence.audit_ids.length,
    "the finding's audit events are not shown");
  await page.locator("details.event summary").first().click();
  await capture(page, "finding", { fullPage: true });

  step = "its group";
  await Promise.all([page.waitForURL(/\/console\/groups\/group-/), page.click("[data-test=group-link]")]);
  check(await page.locator(`tr[data-finding-id="${story.id}"]`).count() === 1, "the group lists the finding");
  await page.waitForSelector("#graph[data-ready]");
  await capture(page, "group", { fullPage: true });

  step = "the attacker's address";
  const groupId = page.url().split("/console/groups/")[1];
  const group = await api(`/v1/finding-groups/${groupId}`, viewerToken).then((r) => r.json());
  const ips = group.entities.filter((e) => e.type === "ip").map((e) => e.id);
  check(ips.length > 0, "the group names no address");
  // The address most of the group's findings name.
  const counts = new Map();
  for (const id of group.finding_ids) {
    const f = await api(`/v1/findings/${id}`, viewerToken).then((r) => r.json());
    for (const ip of f.action?.source_ips || []) counts.set(`ip/${ip}`, (counts.get(`ip/${ip}`) || 0) + 1);
  }
  const attacker = ips.sort((a, b) => (counts.get(b) || 0) - (counts.get(a) || 0))[0];
  await Promise.all([page.waitForURL(/\/console\/entities\/ip\//),
    page.click(`main section a[data-entity="${attacker}"]`)]);
  check((await page.locator("h1").innerText()).trim() === attacker.slice(3), "the profile's title");
  check(await page.locator("tr[data-finding-id]").count() > 0, "the address's findings");
  check(await page.locator("svg.bars rect").count() > 0, "no API-call bars");
  await capture(page, "ip-profile", { fullPage: true });

  step = "graph";
  await Promise.all([page.waitForURL(/\/console\/graph\/ip\//), page.click("[data-test=graph-link]")]);
  await page.waitForSelector("#graph[data-ready]");
  const before = Number(await page.locator("#graph").getAttribute("data-nodes"));
  check(before > 1, `the address's graph has ${before} nodes`);
  await capture(page, "graph");
  const expandable = page.locator("#graph-list button[data-expand^='subject/']").first();
  check(await expandable.count() === 1, "no subject to expand");
  // By keyboard: focus the list's Expand button and press Enter.
  await expandable.focus();
  await page.keyboard.press("Enter");
  await page.waitForFunction((n) => Number(document.querySelector("#graph").dataset.nodes) > n, before);
  const after = Number(await page.locator("#graph").getAttribute("data-nodes"));
  check(after > before, `expanding added nothing (${before} → ${after})`);
  check((await page.locator("#graph-status").innerText()).startsWith("Added"), "no status after expanding");
  await capture(page, "graph-expanded");

  step = "narrow window";
  await page.setViewportSize({ width: 420, height: 860 });
  await page.goto(`${base}/console/findings`);
  await capture(page, "findings-narrow");
  await page.setViewportSize({ width: 1280, height: 800 });

  step = "sign out";
  await Promise.all([page.waitForURL(/\/console\/sign-in/), page.click("[data-test=sign-out]")]);
  await page.goto(`${base}/console/findings`);
  check(page.url().includes("/console/sign-in"), `after signing out: ${page.url()}`);
  await capture(page, "signed-out");

  step = "an admin archives and restores";
  const dark = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "dark" });
  const admin = await dark.newPage();
  watch(admin);
  await signIn(admin, adminToken);
  await capture(admin, "summary-dark", { fullPage: true });
  await admin.goto(`${base}/console/findings`);
  const target = highList.findings[0].id;
  await admin.check(`tr[data-finding-id="${target}"] input[name=id]`);
  await capture(admin, "admin-dark");
  await Promise.all([admin.waitForURL(/notice=/), admin.click("[data-test=archive]")]);
  check((await admin.locator(".notice").innerText()).includes("1 finding archived"), "no notice");
  check(await admin.locator(`tr[data-finding-id="${target}"]`).count() === 0, "an archived finding is still listed as active");
  const archived = await api(`/v1/findings/${target}`, adminToken).then((r) => r.json());
  check(archived.state === "archived", `the API says ${archived.state}`);
  await admin.goto(`${base}/console/findings?state=archived`);
  await admin.check(`tr[data-finding-id="${target}"] input[name=id]`);
  await Promise.all([admin.waitForURL(/notice=/), admin.click("button[value=unarchive]")]);
  const restored = await api(`/v1/findings/${target}`, adminToken).then((r) => r.json());
  check(restored.state === "active", `restored: the API says ${restored.state}`);

  step = "settings";
  await Promise.all([admin.waitForURL(/\/console\/settings$/), admin.click("header nav a[href='/console/settings']")]);
  await admin.click("#clusters ~ details summary");
  await admin.fill("#clusters ~ details input[name=name]", "edge-1");
  await Promise.all([admin.waitForLoadState("load"), admin.click("#clusters ~ details button[type=submit]")]);
  await admin.waitForSelector("[data-test=kubeconfig]");
  const kubeconfig = await admin.locator("[data-test=kubeconfig]").innerText();
  check(/server: http:\/\/127\.0\.0\.1:\d+\/v1\/clusters\/[0-9a-f]+\/audit/.test(kubeconfig), `kubeconfig: ${kubeconfig}`);
  await capture(admin, "settings-cluster", { fullPage: true });
  await dark.close();
} catch (error) {
  failed = true;
  console.error(`console browser test failed: ${error.message}`);
} finally {
  await browser.close();
}
if (problems.length) {
  for (const p of problems) console.error(`console browser test: ${p}`);
  failed = true;
}
if (failed) process.exit(1);
console.log(`console browser test: passed; ${shot} screenshots in ${out}`);
