// Checks runner serve's build page in a real browser (Debian's chromium, driven by
// playwright-core): the running step's live log grows, the timeline has a bar per step, the
// branch is shown as text and nothing from the build runs as script (any dialog fails the
// check, as do uncaught errors and Content-Security-Policy violations).
//
// Usage: node build_page.js BASE_URL BUILD_ID RUNNING_STEP SCREENSHOT [TOKEN]
//   With TOKEN it also types the token, presses Rerun and expects a 2xx answer.
// Exits 0 when every check passed, 1 with a message otherwise.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const {chromium} = require('playwright-core');

async function check(base, buildId, stepId, screenshot, token) {
  const segment = (s) => encodeURIComponent(s).replace(
      /[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  const pageUrl = new URL('/builds/' + segment(buildId), base).href;
  const answer = await fetch(pageUrl + '.json');
  if (!answer.ok) throw new Error(`${pageUrl}.json: ${answer.status} ${answer.statusText}`);
  const report = await answer.json();
  const steps = report.steps || [];

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'runner-browser-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
    headless: true,
  });
  const problems = [];
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on('dialog', (dialog) => {
      problems.push(`a ${dialog.type()} dialog opened: ${dialog.message()}`);
      dialog.dismiss().catch(() => {});
    });
    page.on('pageerror', (error) => problems.push(`script error: ${error.message}`));
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) problems.push(message.text());
    });
    const response = await page.goto(pageUrl);
    if (!response.ok()) throw new Error(`${pageUrl}: ${response.status()}`);

    // The live log: at least two different non-empty lengths of its text.
    await page.waitForFunction((step) => {
      const li = [...document.querySelectorAll('#steps > li.step')]
          .find((element) => element.dataset.step === step);
      const pre = li && li.querySelector('pre.log-text');
      if (!pre) return false;
      window.runnerLogLengths = window.runnerLogLengths || new Set();
      if (pre.textContent.length > 0) window.runnerLogLengths.add(pre.textContent.length);
      return window.runnerLogLengths.size >= 2;
    }, stepId, {polling: 100, timeout: 30000}).catch(() => {
      throw new Error(`the live log of step ${stepId} did not grow`);
    });

    const seen = await page.evaluate(() => ({
      steps: [...document.querySelectorAll('#steps > li.step')].map((li) => ({
        id: li.dataset.step,
        bar: !!li.querySelector('svg.bar rect'),
        width: Number(li.querySelector('svg.bar rect')?.getAttribute('width')),
      })),
      branch: document.querySelector('.facts [data-f="branch"]').textContent,
      scripts: document.querySelectorAll('script').length,
      injected: document.querySelectorAll('main img, main script, pre.log-text :not(span)').length,
    }));
    const ids = steps.map((s) => s.id);
    if (JSON.stringify(seen.steps.map((s) => s.id)) !== JSON.stringify(ids)) {
      problems.push(`timeline steps ${JSON.stringify(seen.steps.map((s) => s.id))}, ` +
                    `expected ${JSON.stringify(ids)}`);
    }
    for (const step of seen.steps) if (!step.bar) problems.push(`step ${step.id} has no bar`);
    const running = seen.steps.find((s) => s.id === stepId);
    if (!running || !(running.width > 0)) problems.push(`the running step's bar has no width`);
    if (seen.branch !== report.build.branch) {
      problems.push(`branch shown as ${JSON.stringify(seen.branch)}, ` +
                    `expected ${JSON.stringify(report.build.branch)}`);
    }
    if (seen.scripts !== 2) problems.push(`${seen.scripts} script elements, expected 2`);
    if (seen.injected !== 0) problems.push(`${seen.injected} elements injected from the data`);

    if (token) {
      await page.fill('#token', token);
      await page.click('[data-action="rerun"]');
      await page.waitForFunction(() => /rerun: \d{3}/.test(
          document.getElementById('action-result').textContent), null, {timeout: 10000});
      const result = await page.textContent('#action-result');
      if (!/rerun: 2\d\d/.test(result)) problems.push(`rerun answered: ${result}`);
    }
    await page.screenshot({path: screenshot, fullPage: true});
  } finally {
    await context.close();
    fs.rmSync(profile, {recursive: true, force: true});
  }
  if (problems.length > 0) throw new Error(problems.join('\n'));
}

if (require.main === module) {
  const [base, buildId, stepId, screenshot, token] = process.argv.slice(2);
  if (!base || !buildId || !stepId || !screenshot) {
    console.error('usage: node build_page.js BASE_URL BUILD_ID RUNNING_STEP SCREENSHOT [TOKEN]');
    process.exit(2);
  }
  check(base, buildId, stepId, screenshot, token).then(() => {
    console.log(`build page ${buildId}: live log of ${stepId} grew, timeline and escaping right`);
    process.exit(0);
  }, (error) => {
    console.error(`build page check failed: ${error.message}`);
    process.exit(1);
  });
}
