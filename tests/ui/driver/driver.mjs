// One headless Debian chromium for a test module, driven by JSON lines on stdin:
//   {"id": 1, "op": "goto", "args": {"url": "..."}}  ->  {"id": 1, "ok": true, "value": ...}
// Console errors and uncaught page errors are collected; the Python side fails a test on any.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const userDataDir = process.argv[2];
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.RIPOSTE_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 900 },
});
const page = context.pages()[0] || await context.newPage();
let problems = [];
page.on("console", (message) => {
  if (message.type() === "error") problems.push(`console error on ${page.url()}: ${message.text()}`);
});
page.on("pageerror", (error) => problems.push(`page error on ${page.url()}: ${error}`));

const ops = {
  async goto({ url }) {
    const response = await page.goto(url, { waitUntil: "load" });
    return { status: response ? response.status() : null, url: page.url() };
  },
  async click({ selector }) {
    await Promise.all([page.waitForLoadState("load"), page.click(selector)]);
    return { url: page.url() };
  },
  async submit({ selector }) {
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
    return { url: page.url() };
  },
  async fill({ selector, value }) { await page.fill(selector, value); return null; },
  async press({ key }) { await page.keyboard.press(key); return null; },
  async text({ selector }) { return await page.innerText(selector); },
  async count({ selector }) { return await page.locator(selector).count(); },
  async attribute({ selector, name }) { return await page.getAttribute(selector, name); },
  async waitForText({ selector, text, timeout }) {
    await page.waitForFunction(([s, t]) => {
      const element = document.querySelector(s);
      return element && element.innerText.includes(t);
    }, [selector, text], { timeout: timeout || 20000 });
    return null;
  },
  async focused() {
    return await page.evaluate(() => {
      const e = document.activeElement;
      const style = e ? getComputedStyle(e) : null;
      return e ? { tag: e.tagName.toLowerCase(), id: e.id, text: (e.innerText || "").trim().slice(0, 80),
                   href: e.getAttribute("href"), outline: style.outlineStyle, left: e.getBoundingClientRect().left }
               : null;
    });
  },
  async url() { return page.url(); },
  async screenshot({ path }) { await page.screenshot({ path, fullPage: true }); return path; },
  async problems() { const found = problems; problems = []; return found; },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const { id, op, args } = JSON.parse(line);
  let answer;
  try {
    answer = { id, ok: true, value: await ops[op](args || {}) };
  } catch (error) {
    answer = { id, ok: false, error: String(error && error.stack || error) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await context.close();
