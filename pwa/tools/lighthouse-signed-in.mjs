// Usage (from the directory where lighthouse was installed, see docs/PERFORMANCE.md):
//   cp pwa/tools/lighthouse-signed-in.mjs /tmp/lh/ && cd /tmp/lh &&
//   CHROME_PATH=/usr/bin/chromium node lighthouse-signed-in.mjs http://127.0.0.1:8765 mobile|desktop
// Lighthouse on the signed-in cabinet: log in with puppeteer-core in Debian's chromium, then
// audit the same browser without resetting storage (the refresh token lives in IndexedDB).
import puppeteer from "puppeteer-core";
import lighthouse from "lighthouse";
import desktopConfig from "lighthouse/core/config/desktop-config.js";
import fs from "node:fs";
const base = process.argv[2] || "http://127.0.0.1:8765";
const preset = process.argv[3] || "mobile";
const browser = await puppeteer.launch({
  executablePath: process.env.CHROME_PATH || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu"],
});
const page = await browser.newPage();
await page.goto(base + "/");
await page.waitForSelector("[data-testid=login]");
await page.type("[data-testid=login]", "governor");
await page.type("[data-testid=password]", "demo");
await page.click("[data-testid=login-submit]");
await page.waitForSelector("[data-offline-ready]", { timeout: 90000 });
const flags = { port: new URL(browser.wsEndpoint()).port, output: "json", onlyCategories: ["performance", "accessibility", "best-practices"], disableStorageReset: true, logLevel: "error" };
const result = await lighthouse(base + "/#/", flags, preset === "desktop" ? desktopConfig : undefined, page);
fs.writeFileSync(`lighthouse-signed-in-${preset}.json`, result.report);
console.log(preset, Object.fromEntries(Object.entries(result.lhr.categories).map(([k, v]) => [k, Math.round(v.score * 100)])));
await browser.close();
